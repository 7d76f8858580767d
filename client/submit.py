"""``python -m rs_ltxv submit PROMPT.json --server URL``: queue an API-format prompt on a running ComfyUI, follow
its progress and download its outputs.

Progress comes from the websocket (``/ws?clientId=…``); when the websocket cannot be opened or drops, the command
falls back to polling ``/history/{id}``. Whatever the websocket said, the result (success, the failing node and its
exception, an interruption) and the output files are read from the history entry.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ClientError
from .history import format_error, local_path, outcome, output_files
from .http import Comfy, format_node_errors, ws_url
from .prompt import apply_overrides, describe_node, load_prompt
from .ws import WebSocket, WebSocketError

POLL_S = 2.0  # history poll interval when the websocket is silent or absent


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``submit`` command's arguments to ``p``."""
    p.add_argument("prompt", help="API-format prompt JSON (ComfyUI: Workflow → Export (API)); a UI-format workflow "
                                  "is converted when all its nodes are known here, otherwise refused")
    p.add_argument("--server", default="http://127.0.0.1:8188", help="ComfyUI address (default %(default)s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.input=value",
                   help="change an input before queueing; NODE is a node id, title or class_type "
                        "(e.g. --set 7.seed=3 --set Prompt.text='a cat'); repeatable")
    p.add_argument("--output", "-o", default="outputs", help="folder for the downloaded files (default %(default)s)")
    p.add_argument("--timeout", type=float, default=0,
                   help="give up (and interrupt the prompt) after this many seconds; 0 = wait for ever")
    p.add_argument("--no-download", action="store_true", help="only list the output files")
    p.add_argument("--no-websocket", action="store_true", help="poll /history instead of following /ws")


class Follower:
    """Prints what ComfyUI's websocket messages say about one prompt."""

    def __init__(self, prompt: dict, prompt_id: str, out: TextIO):
        self.prompt, self.prompt_id, self.out = prompt, prompt_id, out
        self.finished = False

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def handle(self, message: Any) -> None:
        """Print one websocket message (``status``, ``execution_start``, ``executing``, ``progress``, ``executed`` …)
        that concerns this prompt; a final message sets :attr:`finished`. Anything else is ignored."""
        if not isinstance(message, dict):
            return
        kind, data = message.get("type"), message.get("data") or {}
        if data.get("prompt_id") not in (None, self.prompt_id):
            return
        if kind == "status":
            remaining = data.get("status", {}).get("exec_info", {}).get("queue_remaining")
            if remaining is not None and not self.finished:
                self._say(f"queue: {remaining} remaining")
        elif kind == "execution_start":
            self._say("started")
        elif kind == "execution_cached" and data.get("nodes"):
            self._say("cached: " + ", ".join(describe_node(self.prompt, n) for n in data["nodes"]))
        elif kind == "executing":
            node = data.get("node")
            if node is None:
                if data.get("prompt_id") == self.prompt_id:
                    self.finished = True
            else:
                self._say(f"node {describe_node(self.prompt, data.get('display_node') or node)}")
        elif kind == "progress":
            self._say(f"  node {data.get('node')}: step {data.get('value')}/{data.get('max')}")
        elif kind == "executed":
            files = [f["filename"] for v in (data.get("output") or {}).values() if isinstance(v, list)
                     for f in v if isinstance(f, dict) and "filename" in f]
            if files:
                self._say(f"  node {data.get('node')} wrote {', '.join(files)}")
        elif kind in ("execution_success", "execution_error", "execution_interrupted"):
            self.finished = True


def _open_ws(comfy: Comfy, client_id: str, err: TextIO) -> WebSocket | None:
    try:
        return WebSocket(ws_url(comfy.server, client_id), timeout=comfy.timeout)
    except (OSError, WebSocketError) as exc:
        print(f"(no websocket: {exc}; polling /history instead)", file=err, flush=True)
        return None


def wait_for_history(comfy: Comfy, prompt_id: str, ws: WebSocket | None, follower: Follower,
                     deadline: float | None, err: TextIO) -> dict:
    """Follow the websocket (if any) until the prompt finishes, then return its history entry; a lost websocket
    falls back to polling ``/history``.

    Raises:
        TimeoutError: ``deadline`` (a ``time.monotonic()`` value) passed.
        ClientError: the server cannot be reached (see :meth:`~.http.Comfy.history`).
    """
    last_poll = time.monotonic()  # the websocket speaks first; the history is asked on silence or every 10 s
    while True:
        now = time.monotonic()
        if deadline is not None and now > deadline:
            raise TimeoutError
        if follower.finished or ws is None or now - last_poll >= POLL_S * 5:
            entry = comfy.history(prompt_id)
            last_poll = time.monotonic()
            if entry is not None:
                return entry
            if follower.finished or ws is None:
                time.sleep(0.25 if follower.finished else POLL_S)
                continue
        try:
            follower.handle(ws.recv_json(timeout=POLL_S))
        except TimeoutError:
            last_poll = 0.0  # silence: ask the history now
        except (OSError, WebSocketError, ValueError) as exc:
            print(f"(websocket lost: {exc}; polling /history instead)", file=err, flush=True)
            ws.close()
            ws = None


def submit(prompt: dict, server: str, output: str | Path = "outputs", *, download: bool = True,
           timeout: float = 0, use_ws: bool = True, out: TextIO | None = None,
           err: TextIO | None = None) -> list[Path]:
    """Queue ``prompt``, follow it, download its files into ``output``; returns the saved paths (or, with
    ``download=False``, where they would go). ``timeout`` in seconds (0: wait for ever).

    Raises:
        ClientError: exit_code 1 (:data:`~.errors.EXIT_USAGE`): the server cannot be reached or a download fails;
            2 (:data:`~.errors.EXIT_FAILED`): the prompt was refused or a node failed; 3
            (:data:`~.errors.EXIT_INTERRUPTED`): interrupted, or ``timeout`` passed.
    """
    out, err = out or sys.stdout, err or sys.stderr
    comfy = Comfy(server)
    comfy.check()
    client_id = uuid.uuid4().hex
    ws = _open_ws(comfy, client_id, err) if use_ws else None  # before queueing, so no message is missed
    try:
        queued = comfy.queue_prompt(prompt, client_id)
        prompt_id = queued["prompt_id"]
        print(f"queued {prompt_id} on {comfy.server} (number {queued.get('number')})", file=out, flush=True)
        for line in format_node_errors(queued.get("node_errors") or {}, prompt):
            print(f"warning: {line} (that output is skipped)", file=err, flush=True)
        follower = Follower(prompt, prompt_id, out)
        deadline = time.monotonic() + timeout if timeout else None
        try:
            entry = wait_for_history(comfy, prompt_id, ws, follower, deadline, err)
        except (KeyboardInterrupt, TimeoutError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else "stopped here"
            try:
                comfy.interrupt(prompt_id)
                print(f"{why}: prompt {prompt_id} interrupted on the server", file=err, flush=True)
            except ClientError as exc2:
                print(f"{why}; could not interrupt {prompt_id}: {exc2}", file=err, flush=True)
            if isinstance(exc, TimeoutError):
                raise ClientError(f"prompt {prompt_id} did not finish within {timeout:g} s", EXIT_INTERRUPTED) \
                    from None
            raise ClientError("interrupted", EXIT_INTERRUPTED) from None
    finally:
        if ws is not None:
            ws.close()
    result = outcome(entry)
    if result.status != "success":
        message = format_error(result, lambda n: describe_node(prompt, n))
        raise ClientError(message, EXIT_INTERRUPTED if result.status == "interrupted" else EXIT_FAILED)
    root = Path(output)
    paths = []
    for _node, file in output_files(entry):
        dest = local_path(root, file)
        paths.append(comfy.download(file, dest) if download else dest)
    if not paths:
        print("the prompt finished without output files", file=out, flush=True)
    return paths


def check_options(args: argparse.Namespace) -> None:
    """What ``submit`` can check before queueing anything: ``--timeout`` is 0 (no limit) or a positive number of
    seconds, and ``--output`` is a folder or can become one.

    Raises:
        ClientError: naming the option (exit code 1).
    """
    timeout = args.timeout
    if not math.isfinite(timeout) or timeout < 0:
        raise ClientError(f"--timeout {timeout}: give seconds > 0, or 0 for no limit.")
    out = Path(args.output)
    if not args.no_download and out.exists() and not out.is_dir():
        raise ClientError(f"--output {out} is a file; give a folder for the downloaded outputs.")


def run(args: argparse.Namespace) -> int:
    """The ``submit`` command: prints ``error: …`` and returns the :class:`~.errors.ClientError`'s exit code instead
    of raising; 0 on success."""
    try:
        check_options(args)
        prompt, converted = load_prompt(args.prompt)
        if converted:
            print(f"{args.prompt}: UI-format workflow converted to API format here", file=sys.stderr)
        prompt = apply_overrides(prompt, args.overrides)
        paths = submit(prompt, args.server, args.output, download=not args.no_download, timeout=args.timeout,
                       use_ws=not args.no_websocket)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    for path in paths:
        print(f"saved {path}" if not args.no_download else f"output {path}")
    return EXIT_OK
