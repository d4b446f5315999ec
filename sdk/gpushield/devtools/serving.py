"""Serving an ASGI app on uvicorn in a background thread (the demo's gate, test servers).

The listening socket is bound first (port 0) and handed to uvicorn, so there is no window in
which another process could take the port between choosing it and listening on it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

STARTUP_TIMEOUT_S = 20.0


def free_port() -> int:
    """A port that was free a moment ago — only for servers in other processes, which cannot
    be handed a socket; in-process servers use `listening_socket`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket() -> tuple[socket.socket, str]:
    """A socket bound to a free 127.0.0.1 port, and the base URL it will serve."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serve_asgi(app: Any, sock: socket.socket, *, name: str, **config: Any) -> Iterator[None]:
    """Runs `app` on `sock` until the block exits; `config` goes to `uvicorn.Config`."""
    options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on"}
    options.update(config)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name,
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def request_body(receive: Any) -> bytes:
    """The whole body of an ASGI HTTP request (test servers and stubs; the gate itself reads
    with a cap, see runtime_local/asgi.py)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body"):
            return b"".join(chunks)
