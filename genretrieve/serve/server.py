"""Binding and running: the socket is bound before the models load, so a busy port or a bad host
fails in a second with a clear message instead of after the load; uvicorn then serves on it."""
from __future__ import annotations

import ipaddress
import socket
from contextlib import contextmanager

from ..errors import GenretrieveError, UsageError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_host(host: str, allow_remote: bool) -> bool:
    """True when the host is reachable from other machines (allowed only with allow_remote)."""
    if is_loopback(host):
        return False
    if not allow_remote:
        raise UsageError(f"--host {host} would expose the server beyond this machine, and it has no authentication; "
                         "add --allow-remote if that is what you want")
    return True


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it a
    # keep-alive response waits ~40 ms (Nagle's algorithm meets the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise GenretrieveError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app, sock: socket.socket, log_level: str = "warning"):
    """A uvicorn Server for app on the bound socket; `.run(sockets=[sock])` blocks until stopped."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                         timeout_graceful_shutdown=5))


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0):
    """Run app on a background thread (tests, notebooks); yields its base URL, stops it on exit."""
    import threading
    import time

    sock = bind(host, port)
    server = make_server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise GenretrieveError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
