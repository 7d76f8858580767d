"""A minimal RFC 6455 websocket client over ``socket`` (enough for ComfyUI's ``/ws`` messages).

Client frames are masked; server frames are read from a buffer so that a receive timeout never loses a partial
frame. Pings are answered, fragmented messages are joined, binary messages (ComfyUI's previews) are returned as
bytes for the caller to ignore.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import urllib.parse
from typing import Any

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HEADER = 65536


class WebSocketError(Exception):
    """The websocket cannot be opened or was closed. Internal to the client: :mod:`.submit` falls back to polling
    ``/history`` on it, so it never reaches the user."""


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value the server must answer to ``key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final, masked client frame."""
    mask = os.urandom(4) if mask is None else mask
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_frame(buf: bytes | bytearray) -> tuple[bool, int, bytes, int] | None:
    """(fin, opcode, payload, bytes used) of the first whole frame in ``buf``, or None if it is not all there."""
    if len(buf) < 2:
        return None
    fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
    masked, n = bool(buf[1] & 0x80), buf[1] & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    mask = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        mask, pos = bytes(buf[pos:pos + 4]), pos + 4
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos:pos + n])
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return fin, opcode, payload, pos + n


class WebSocket:
    """A client connection to ``url`` (``ws://`` or ``wss://``), handshake done on construction.

    Raises:
        WebSocketError: not a websocket URL, or the server refused the upgrade.
        OSError: the connection failed or timed out (``timeout`` in seconds).
    """

    def __init__(self, url: str, timeout: float = 10.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise WebSocketError(f"not a websocket URL: {url}")
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "wss" else 80)
        self._buf = bytearray()
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            if parts.scheme == "wss":
                self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=host)
            self._handshake(parts, host, port)
        except BaseException:
            self.sock.close()
            raise

    def _handshake(self, parts: urllib.parse.SplitResult, host: str, port: int) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > MAX_HEADER:
                raise WebSocketError("handshake response too long")
            self._recv_some()
        end = self._buf.index(b"\r\n\r\n") + 4
        head, self._buf = bytes(self._buf[:end]).decode("latin-1"), self._buf[end:]
        status, *lines = head.split("\r\n")
        if len(status.split()) < 2 or status.split()[1] != "101":
            raise WebSocketError(f"websocket upgrade refused: {status}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        if headers.get("sec-websocket-accept") != accept_key(key):
            raise WebSocketError("websocket upgrade: wrong Sec-WebSocket-Accept")

    def _recv_some(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise WebSocketError("connection closed by the server")
        self._buf += data

    def recv(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next whole message as (OP_TEXT | OP_BINARY, payload). Raises ``TimeoutError`` (socket.timeout) when
        nothing whole arrived in ``timeout`` seconds (a partial frame stays buffered), WebSocketError on close."""
        self.sock.settimeout(timeout)
        parts: list[bytes] = []
        first_op = None
        while True:
            frame = parse_frame(self._buf)
            if frame is None:
                self._recv_some()
                continue
            fin, opcode, payload, used = frame
            del self._buf[:used]
            if opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_PONG:
                pass
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                try:
                    self._send(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                raise WebSocketError(f"closed by the server (code {code})")
            else:
                if opcode != OP_CONT:
                    first_op, parts = opcode, []
                parts.append(payload)
                if fin:
                    return first_op if first_op is not None else OP_BINARY, b"".join(parts)

    def recv_json(self, timeout: float | None = None) -> Any:
        """The next text message decoded as JSON; binary messages give None."""
        opcode, payload = self.recv(timeout)
        return json.loads(payload.decode("utf-8")) if opcode == OP_TEXT else None

    def _send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(encode_frame(opcode, payload))

    def close(self) -> None:
        """Send a close frame (code 1000) if the socket still allows it, then close the socket."""
        try:
            self._send(OP_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
