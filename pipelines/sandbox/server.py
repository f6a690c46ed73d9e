"""Run the sandbox: in the foreground (`campaigns sandbox`) or in a thread (embedded, tests)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager

import uvicorn

from pipelines.sandbox.app import Sandbox, SandboxConfig


class _DroppedResponseFilter(logging.Filter):
    """The reset fault returns without a response on purpose; uvicorn need not say so."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without starting response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DroppedResponseFilter())


def _server(sandbox: Sandbox, host: str, port: int) -> uvicorn.Server:
    # h11 lets the reset fault reach the transport; no access log: tests and cron stay quiet.
    config = uvicorn.Config(sandbox.app, host=host, port=port, http="h11", log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(config: SandboxConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until interrupted."""
    _server(Sandbox(config), host, port).run()


class RunningSandbox:
    """A sandbox serving on loopback in a background thread."""

    def __init__(self, sandbox: Sandbox, server: uvicorn.Server, thread: threading.Thread, port: int):
        self.sandbox = sandbox
        self.server = server
        self.thread = thread
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sandbox.store.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_in_thread(config: SandboxConfig, port: int | None = None) -> RunningSandbox:
    """Start a sandbox on 127.0.0.1 (a free port unless given) and wait until it answers."""
    sandbox = Sandbox(config)
    port = port or free_port()
    server = _server(sandbox, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, name="campaigns-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the embedded sandbox could not start on 127.0.0.1:{port}")
        time.sleep(0.01)
    return RunningSandbox(sandbox, server, thread, port)


@contextmanager
def running(config: SandboxConfig, port: int | None = None):
    """`with running(config) as sandbox:` → sandbox.url is live until the block ends."""
    handle = start_in_thread(config, port)
    try:
        yield handle
    finally:
        handle.stop()
