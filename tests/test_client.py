"""The ComfyUI client's pure parts (no ComfyUI): prompt loading and overrides, URLs, ComfyUI's error bodies, history
entries, websocket frames, an unreachable server, and a whole submit against a small fake ComfyUI."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rs_ltxv.__main__ import main
from rs_ltxv.client import ClientError
from rs_ltxv.client.history import format_error, local_path, outcome, output_files
from rs_ltxv.client.http import Comfy, format_refusal, normalize_server, view_url, ws_url
from rs_ltxv.client.prompt import apply_overrides, load_prompt, parse_override, validate_prompt
from rs_ltxv.client.submit import submit
from rs_ltxv.client.ws import OP_BINARY, OP_PING, OP_TEXT, accept_key, encode_frame, parse_frame

REPO = Path(__file__).resolve().parents[1]
T2V = "LTX-2.3 text to video (RS LTXV Generate).json"
API_T2V = REPO / "example_workflows" / "api" / T2V


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- prompts ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted((REPO / "example_workflows" / "api").glob("*.json")), ids=lambda p: p.stem)
def test_every_api_example_loads(path):
    prompt, converted = load_prompt(path)
    assert not converted
    assert prompt == json.loads(path.read_text())


def test_a_saved_prompt_request_body_is_accepted(tmp_path):
    api = json.loads(API_T2V.read_text())
    (tmp_path / "body.json").write_text(json.dumps({"prompt": api, "client_id": "x"}))
    assert load_prompt(tmp_path / "body.json") == (api, False)


def test_a_ui_workflow_of_known_nodes_is_converted():
    prompt, converted = load_prompt(REPO / "example_workflows" / T2V)
    assert converted
    assert prompt == json.loads(API_T2V.read_text())


def test_a_ui_workflow_is_refused_with_the_export_hint(tmp_path):
    ui = json.loads((REPO / "example_workflows" / T2V).read_text())
    with pytest.raises(ClientError, match=r"UI-format workflow.*Export \(API\)"):
        load_prompt(REPO / "example_workflows" / T2V, convert_ui=False)
    ui["nodes"][0]["type"] = "SomeCustomNodeNobodyHas"
    (tmp_path / "ui.json").write_text(json.dumps(ui))
    with pytest.raises(ClientError, match=r"SomeCustomNodeNobodyHas are unknown here; export it in API format") as e:
        load_prompt(tmp_path / "ui.json")
    assert e.value.exit_code == 1


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "is not valid JSON"),
    ("[]", "non-empty JSON object"),
    ('{"1": {"inputs": {}}}', "node 1: no class_type"),
    ('{"1": {"class_type": "X"}}', "node 1: no inputs object"),
    ('{"1": {"class_type": "X", "inputs": {"a": ["9", 0]}}}', "input 'a' links to missing node 9"),
])
def test_bad_prompt_files_say_what_is_wrong(tmp_path, text, message):
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(ClientError, match=message):
        load_prompt(tmp_path / "p.json")


def test_missing_prompt_file():
    with pytest.raises(ClientError, match="no such prompt file"):
        load_prompt("/nonexistent/prompt.json")


def test_validate_accepts_links_and_values():
    assert validate_prompt({"1": {"class_type": "A", "inputs": {"x": 1}},
                            "2": {"class_type": "B", "inputs": {"a": ["1", 0], "b": [1, 2, 3]}}}) == []


def test_overrides_by_id_title_and_class_type():
    api = json.loads(API_T2V.read_text())
    out = apply_overrides(api, ["7.seed=3", "7.cfg=2.5", "7.upscale=true", "Prompt.text=42",
                                "RSLTXVTextEncoderLoader.text_encoder=tiny gemma", "7.stg_blocks=20, 21",
                                "Negative prompt.text=a=b"])
    gen = out["7"]["inputs"]
    assert (gen["seed"], gen["cfg"], gen["upscale"], gen["stg_blocks"]) == (3, 2.5, True, "20, 21")
    assert out["5"]["inputs"]["text"] == "42"  # text inputs stay text
    assert out["6"]["inputs"]["text"] == "a=b"  # only the first '=' splits
    assert out["2"]["inputs"]["text_encoder"] == "tiny gemma"
    assert api["7"]["inputs"]["seed"] == 42  # the original is untouched


@pytest.mark.parametrize(("override", "message"), [
    ("seed=3", "expected NODE.input=value"),
    ("7.seed", "expected NODE.input=value"),
    ("99.seed=1", "no node '99'"),
    ("RSLTXVTextEncode.text=x", "matches nodes 5, 6; use the node id"),
    ("7.sead=1", "has no input 'sead'"),
    ("7.model=1", "is connected to node 1"),
])
def test_bad_overrides_are_refused(override, message):
    with pytest.raises(ClientError, match=message):
        apply_overrides(json.loads(API_T2V.read_text()), [override])


def test_parse_override_keeps_dots_in_titles():
    assert parse_override("My.node.seed=1") == ("My.node", "seed", "1")


# --- URLs and ComfyUI's error bodies -------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), [
    ("127.0.0.1:8188", "http://127.0.0.1:8188"), ("http://host:1/", "http://host:1"),
    ("https://comfy.example/base/", "https://comfy.example/base"),
])
def test_normalize_server(given, expected):
    assert normalize_server(given) == expected


def test_normalize_server_refuses_other_schemes():
    with pytest.raises(ClientError, match="expected http"):
        normalize_server("ftp://x")


def test_view_and_ws_urls():
    f = {"filename": "rs ltxv_00001_.mp4", "subfolder": "video/a b", "type": "output"}
    assert view_url("http://h:1", f) == "http://h:1/view?filename=rs+ltxv_00001_.mp4&subfolder=video%2Fa+b&type=output"
    assert view_url("http://h:1", {"filename": "x.png"}).endswith("filename=x.png&subfolder=&type=output")
    assert ws_url("http://h:1", "abc") == "ws://h:1/ws?clientId=abc"
    assert ws_url("https://h/base", "abc") == "wss://h/base/ws?clientId=abc"


REFUSED = {  # the shape ComfyUI answers a prompt that fails validation with (HTTP 400)
    "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
              "details": "", "extra_info": {}},
    "node_errors": {"7": {"errors": [{"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1",
                                      "details": "steps", "extra_info": {"input_name": "steps"}}],
                          "dependent_outputs": ["9"], "class_type": "RSLTXVGenerate"}},
}


def test_refusal_names_each_node_and_input():
    text = format_refusal(400, json.dumps(REFUSED), json.loads(API_T2V.read_text()))
    assert text.splitlines() == ["ComfyUI refused the prompt (HTTP 400): Prompt outputs failed validation",
                                 "  node 7 (RS LTXV Generate): Value 0 smaller than min of 1 [steps]"]
    assert "HTTP 500): oops" in format_refusal(500, "oops")


# --- history entries -----------------------------------------------------------------------------------------------

def _entry(messages, status_str="success", outputs=None):
    return {"prompt": [], "outputs": outputs or {},
            "status": {"status_str": status_str, "completed": status_str == "success", "messages": messages}}


SAVE_VIDEO = {"9": {"images": [{"filename": "rs_ltxv_t2v_00001_.mp4", "subfolder": "video", "type": "output"}],
                    "animated": [True]},
              "12": {"audio": [{"filename": "a_00001_.flac", "subfolder": "", "type": "output"}]},
              "13": {"text": ["hello"]},
              "14": {"images": [{"filename": "ComfyUI_temp_x_00001_.png", "subfolder": "", "type": "temp"}]}}


def test_output_files_of_save_video_audio_and_previews():
    files = output_files(_entry([["execution_success", {}]], outputs=SAVE_VIDEO))
    assert [(n, f["filename"]) for n, f in files] == [("9", "rs_ltxv_t2v_00001_.mp4"), ("12", "a_00001_.flac"),
                                                       ("14", "ComfyUI_temp_x_00001_.png")]
    root = Path("/dl")
    assert [local_path(root, f) for _, f in files] == [Path("/dl/video/rs_ltxv_t2v_00001_.mp4"),
                                                        Path("/dl/a_00001_.flac"),
                                                        Path("/dl/temp/ComfyUI_temp_x_00001_.png")]


@pytest.mark.parametrize("file", [{"filename": "../x.mp4"}, {"filename": "x.mp4", "subfolder": "../../etc"},
                                  {"filename": "x.mp4", "subfolder": "/etc"}, {"filename": "a/b.mp4"}])
def test_files_outside_the_output_folder_are_refused(file):
    with pytest.raises(ClientError, match="outside"):
        local_path(Path("/dl"), file)


ERROR = ["execution_error", {"prompt_id": "p", "node_id": "7", "node_type": "RSLTXVGenerate", "executed": ["1"],
                             "exception_message": "stg_blocks: 'abc' is not a block number\n",
                             "exception_type": "rs_ltxv.nodes.convert.InputError",
                             "traceback": ["Traceback ..."], "current_inputs": {}, "current_outputs": []}]
INTERRUPTED = ["execution_interrupted", {"prompt_id": "p", "node_id": "7", "node_type": "RSLTXVGenerate",
                                         "executed": []}]


def test_outcomes():
    assert outcome(_entry([["execution_start", {}], ["execution_success", {}]])).status == "success"
    err = outcome(_entry([["execution_start", {}], ERROR], "error"))
    assert (err.status, err.node_id, err.node_type) == ("error", "7", "RSLTXVGenerate")
    assert format_error(err, lambda n: f"{n} (RS LTXV Generate)") == (
        "node 7 (RS LTXV Generate) failed: rs_ltxv.nodes.convert.InputError: stg_blocks: 'abc' is not a block number")
    stop = outcome(_entry([INTERRUPTED], "error"))
    assert stop.status == "interrupted"
    assert format_error(stop, str) == "interrupted at node 7"
    assert outcome(_entry([], "error")).status == "error"


# --- websocket frames ----------------------------------------------------------------------------------------------

def test_accept_key_of_rfc6455():
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("n", [0, 5, 125, 126, 65535, 65536, 70000])
def test_frames_round_trip_at_every_length_encoding(n):
    payload = bytes(i % 251 for i in range(n))
    frame = encode_frame(OP_TEXT, payload, mask=b"\x01\x02\x03\x04")
    assert frame[1] & 0x80  # client frames are masked
    assert parse_frame(frame) == (True, OP_TEXT, payload, len(frame))
    assert parse_frame(frame[:-1]) is None  # incomplete: wait for more
    assert parse_frame(frame + b"\x81") == (True, OP_TEXT, payload, len(frame))


def _server_frame(opcode, payload, fin=True):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def test_unmasked_server_frames_parse():
    assert parse_frame(_server_frame(OP_BINARY, b"\x00" * 300)) == (True, OP_BINARY, b"\x00" * 300, 304)


# --- an unreachable server -----------------------------------------------------------------------------------------

def test_unreachable_server_says_so(capsys):
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ClientError, match=rf"cannot reach ComfyUI at {url} .*is ComfyUI running at {url}\?"):
        Comfy(url, timeout=5).check()
    assert main(["submit", str(API_T2V), "--server", url]) == 1
    assert f"is ComfyUI running at {url}?" in capsys.readouterr().err


# --- a whole submit against a fake ComfyUI -------------------------------------------------------------------------

VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42 not really a video"


class FakeComfy(ThreadingHTTPServer):
    """Enough of ComfyUI's API for one prompt: /system_stats, /prompt, /ws, /history/{id}, /view, /queue,
    /interrupt. ``events`` are the websocket messages sent after the prompt is queued; ``entry`` the history."""

    daemon_threads = True

    def __init__(self, entry, events=(), refuse=None):
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.entry, self.events, self.refuse = entry, list(events), refuse
        self.queued, self.done, self.posted, self.pongs = threading.Event(), threading.Event(), [], []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeHandler(BaseHTTPRequestHandler):
    server: FakeComfy

    def log_message(self, *args):
        pass

    def _json(self, data, code=200):
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/system_stats":
            return self._json({"system": {}})
        if self.path.startswith("/ws?clientId="):
            return self._websocket()
        if self.path == "/history/pid-1":
            return self._json({"pid-1": self.server.entry} if self.server.done.is_set() else {})
        if self.path == "/view?filename=rs_ltxv_t2v_00001_.mp4&subfolder=video&type=output":
            self.send_response(200)
            self.send_header("Content-Length", str(len(VIDEO_BYTES)))
            self.end_headers()
            return self.wfile.write(VIDEO_BYTES)
        self._json({"error": self.path}, 404)

    def do_POST(self):
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.posted.append((self.path, data))
        if self.path == "/prompt":
            if self.server.refuse:
                return self._json(self.server.refuse, 400)
            self._json({"prompt_id": "pid-1", "number": 0, "node_errors": {}})
            self.server.queued.set()
            if not self.server.events:
                self.server.done.set()
            return None
        self._json({})

    def _websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        sock = self.connection
        self.server.queued.wait(10)
        for event in self.server.events:
            if event == "ping":
                sock.sendall(_server_frame(OP_PING, b"hi"))
            elif event == "binary":
                sock.sendall(_server_frame(OP_BINARY, b"\x00\x00\x00\x01" + b"\xff" * 70000))
            elif event == "done":
                self.server.done.set()
            else:
                text = json.dumps(event).encode()  # sent in two fragments
                sock.sendall(_server_frame(OP_TEXT, text[:5], fin=False) + _server_frame(0, text[5:]))
        sock.settimeout(10)
        buf = b""
        while True:  # until the client closes; keep what it sent (the pong)
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
            frame = parse_frame(buf)
            while frame:
                self.server.pongs.append(frame[1:3])
                buf = buf[frame[3]:]
                if frame[1] == 0x8:
                    return
                frame = parse_frame(buf)


def _serve(fake):
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    return fake


@pytest.fixture
def fake_server():
    servers = []
    yield lambda *a, **k: servers.append(_serve(FakeComfy(*a, **k))) or servers[-1]
    for s in servers:
        s.shutdown()
        s.server_close()


def _ws(kind, **data):
    return {"type": kind, "data": {"prompt_id": "pid-1", **data}}


EVENTS = [
    {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}},
    _ws("execution_start"), _ws("execution_cached", nodes=["1"]), _ws("executing", node="7", display_node="7"),
    "ping", _ws("progress", value=1, max=2, node="7"), "binary",
    {"type": "progress", "data": {"prompt_id": "someone-else", "value": 9, "max": 9, "node": "3"}},
    _ws("progress", value=2, max=2, node="7"), _ws("executing", node="9", display_node="9"),
    _ws("executed", node="9", output=SAVE_VIDEO["9"]), _ws("execution_success"), "done",
    _ws("executing", node=None),
]


def test_submit_follows_the_websocket_and_downloads(fake_server, tmp_path):
    fake = fake_server(_entry([["execution_success", {}]], outputs={"9": SAVE_VIDEO["9"]}), EVENTS)
    out, err = io.StringIO(), io.StringIO()
    prompt = json.loads(API_T2V.read_text())
    paths = submit(prompt, fake.url, tmp_path, out=out, err=err)
    assert paths == [tmp_path / "video" / "rs_ltxv_t2v_00001_.mp4"]
    assert paths[0].read_bytes() == VIDEO_BYTES
    lines = out.getvalue().splitlines()
    assert lines == ["queued pid-1 on " + fake.url + " (number 0)", "queue: 1 remaining", "started",
                     "cached: 1 (RS LTXV Model Loader)", "node 7 (RS LTXV Generate)", "  node 7: step 1/2",
                     "  node 7: step 2/2", "node 9 (Save Video)", "  node 9 wrote rs_ltxv_t2v_00001_.mp4"]
    assert err.getvalue() == ""
    (path, body), = fake.posted
    assert path == "/prompt"
    assert body["prompt"] == prompt
    assert len(body["client_id"]) == 32
    assert (0xA, b"hi") in fake.pongs  # the ping was answered


def test_submit_by_polling_reports_the_failing_node(fake_server, tmp_path):
    fake = fake_server(_entry([["execution_start", {}], ERROR], "error"))
    with pytest.raises(ClientError, match=r"node 7 \(RS LTXV Generate\) failed: .*InputError: stg_blocks") as e:
        submit(json.loads(API_T2V.read_text()), fake.url, tmp_path, use_ws=False, out=io.StringIO())
    assert e.value.exit_code == 2
    assert not any(tmp_path.iterdir())


def test_submit_reports_an_interruption(fake_server, tmp_path):
    fake = fake_server(_entry([INTERRUPTED], "error"),
                       [_ws("executing", node="7"), _ws("execution_interrupted", node_id="7"), "done"])
    with pytest.raises(ClientError, match="interrupted at node 7") as e:
        submit(json.loads(API_T2V.read_text()), fake.url, tmp_path, out=io.StringIO())
    assert e.value.exit_code == 3


def test_the_cli_prints_a_refusal_and_exits_2(fake_server, tmp_path, capsys):
    fake = fake_server(_entry([]), refuse=REFUSED)
    assert main(["submit", str(API_T2V), "--server", fake.url, "-o", str(tmp_path), "--set", "7.steps=0"]) == 2
    err = capsys.readouterr().err
    assert "error: ComfyUI refused the prompt (HTTP 400)" in err
    assert "node 7 (RS LTXV Generate): Value 0 smaller than min of 1 [steps]" in err
    assert fake.posted[0][1]["prompt"]["7"]["inputs"]["steps"] == 0


def test_the_cli_times_out_and_interrupts(fake_server, tmp_path, capsys):
    fake = fake_server(_entry([]), [_ws("executing", node="7")])  # never finishes
    assert main(["submit", str(API_T2V), "--server", fake.url, "-o", str(tmp_path), "--timeout", "1"]) == 3
    err = capsys.readouterr().err
    assert "did not finish within 1 s" in err
    assert "interrupted on the server" in err
    assert ("/queue", {"delete": ["pid-1"]}) in fake.posted
    assert ("/interrupt", {"prompt_id": "pid-1"}) in fake.posted
