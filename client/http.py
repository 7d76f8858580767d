"""ComfyUI's HTTP API with urllib: /prompt, /history/{id}, /view, /interrupt, /queue, /system_stats (the routes of
ComfyUI's ``server.PromptServer``, used as in its ``script_examples/websockets_api_example.py``). Every failure is a
:class:`~.errors.ClientError`."""

from __future__ import annotations

import http.client
import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .errors import EXIT_FAILED, ClientError


def normalize_server(url: str) -> str:
    """``host:port`` or ``http://host:port/`` → ``http://host:port`` (https kept).

    Raises:
        ClientError: not an http(s) URL with a host.
    """
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientError(f"--server {url!r}: expected http://HOST:PORT")
    return url


def view_url(server: str, file: dict[str, Any]) -> str:
    """The ``/view`` URL that serves a file ref ``{"filename", "subfolder", "type"}`` of a history entry."""
    query = urllib.parse.urlencode({"filename": file["filename"], "subfolder": file.get("subfolder", ""),
                                    "type": file.get("type", "output")})
    return f"{server}/view?{query}"


def ws_url(server: str, client_id: str) -> str:
    """The ``/ws?clientId=…`` websocket URL of ``server`` (``ws://``, or ``wss://`` for https)."""
    parts = urllib.parse.urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/ws?" + urllib.parse.urlencode({"clientId": client_id})
    return f"{scheme}://{parts.netloc}{path}"


def format_node_errors(node_errors: dict[str, Any], prompt: dict | None = None) -> list[str]:
    """ComfyUI's ``node_errors`` ({id: {"errors": [{"message", "details"}], "class_type"}}) as lines."""
    lines = []
    for node_id, entry in (node_errors or {}).items():
        title = ((prompt or {}).get(str(node_id)) or {}).get("_meta", {}).get("title")
        name = title or entry.get("class_type", "?")
        for err in entry.get("errors", []):
            details = f" [{err['details']}]" if err.get("details") else ""
            lines.append(f"node {node_id} ({name}): {err.get('message', err.get('type', 'error'))}{details}")
    return lines


def format_refusal(status: int, body: str, prompt: dict | None = None) -> str:
    """The message for a prompt that /prompt refused (400 with ``error`` and ``node_errors``)."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return f"ComfyUI refused the prompt (HTTP {status}): {body.strip()[:2000]}"
    error = data.get("error", {})
    head = error.get("message", "") if isinstance(error, dict) else str(error)
    details = error.get("details", "") if isinstance(error, dict) else ""
    lines = [f"ComfyUI refused the prompt (HTTP {status}): {head}" + (f": {details}" if details else "")]
    lines += ["  " + line for line in format_node_errors(data.get("node_errors", {}), prompt)]
    return "\n".join(lines)


class Comfy:
    """One ComfyUI server. Every network failure becomes a :class:`ClientError` that names the server."""

    def __init__(self, server: str, timeout: float = 30.0):
        self.server = normalize_server(server)
        self.timeout = timeout

    def _unreachable(self, exc: BaseException) -> ClientError:
        reason = getattr(exc, "reason", exc)
        return ClientError(f"cannot reach ComfyUI at {self.server} ({reason}): is ComfyUI running at {self.server}?")

    def _open(self, path_or_url: str, data: dict | None = None):
        url = path_or_url if "://" in path_or_url else self.server + path_or_url
        body = None if data is None else json.dumps(data).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            request = urllib.request.Request(url, body, headers, method="POST" if body is not None else "GET")
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout
            raise self._unreachable(exc) from exc
        except (ValueError, http.client.HTTPException) as exc:  # "not a url", a port that is not a number
            raise ClientError(f"--server {self.server!r} is not a usable URL ({exc}); use e.g. "
                              "http://127.0.0.1:8188") from exc

    def get_json(self, path: str) -> Any:
        """GET ``path`` (or a full URL) and decode the JSON body (an empty body: None).

        Raises:
            ClientError: the server is unreachable or times out, or answers with an HTTP error.
        """
        try:
            with self._open(path) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ClientError(f"GET {path} → HTTP {exc.code}: {exc.read().decode(errors='replace')[:500]}") from exc
        except TimeoutError as exc:
            raise self._unreachable(exc) from exc

    def post_json(self, path: str, data: dict) -> Any:
        """POST ``data`` as JSON to ``path`` and decode the JSON answer (an empty body: ``{}``).

        Raises:
            ClientError: the server is unreachable, or answers with an HTTP error.
        """
        try:
            with self._open(path, data) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise ClientError(f"POST {path} → HTTP {exc.code}: {exc.read().decode(errors='replace')[:500]}") from exc
        return json.loads(body) if body.strip() else {}

    def check(self) -> dict:
        """``/system_stats``: a cheap call that tells whether the server is up.

        Raises:
            ClientError: it is not (see :meth:`get_json`).
        """
        return self.get_json("/system_stats")

    def queue_prompt(self, prompt: dict, client_id: str) -> dict:
        """POST /prompt → ``{"prompt_id", "number", "node_errors"}``.

        Raises:
            ClientError: the server is unreachable; or (``exit_code`` :data:`EXIT_FAILED`) it refused the prompt,
                with ComfyUI's reasons per node.
        """
        try:
            with self._open("/prompt", {"prompt": prompt, "client_id": client_id}) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            raise ClientError(format_refusal(exc.code, body, prompt), EXIT_FAILED) from exc

    def history(self, prompt_id: str) -> dict | None:
        """The finished prompt's history entry, or None while it is queued or running.

        Raises:
            ClientError: see :meth:`get_json`.
        """
        data = self.get_json(f"/history/{urllib.parse.quote(prompt_id)}")
        return (data or {}).get(prompt_id)

    def interrupt(self, prompt_id: str) -> None:
        """Take the prompt off the queue if it waits there, and interrupt it if it runs (only that prompt).

        Raises:
            ClientError: see :meth:`post_json`.
        """
        self.post_json("/queue", {"delete": [prompt_id]})
        self.post_json("/interrupt", {"prompt_id": prompt_id})

    def download(self, file: dict[str, Any], dest: Path) -> Path:
        """Fetch a file ref of a history entry through ``/view`` into ``dest`` (written as ``dest.part``, then
        renamed, so a failed download leaves nothing). Returns ``dest``.

        Raises:
            ClientError: HTTP error, dropped connection or a write error.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self._open(view_url(self.server, file)) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except urllib.error.HTTPError as exc:
            tmp.unlink(missing_ok=True)
            raise ClientError(f"download of {file['filename']} failed: HTTP {exc.code}") from exc
        except OSError as exc:  # the connection dropped or timed out mid-file, or the disk is full
            tmp.unlink(missing_ok=True)
            raise ClientError(f"download of {file['filename']} failed: {exc}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(dest)
        return dest
