"""Run `campaigns` commands for the tests in forked children of an interpreter that has already imported the heavy
third-party libraries, so each command costs a fork instead of ~1 s of imports.

A child is a real process: its own pid, the test's arguments, environment, working directory and pipes as stdin,
stdout and stderr; it runs the same entry point as `python -m pipelines` (`pipelines.cli.entry`), imports the
project's own modules itself, can be SIGKILLed by a failpoint or a timeout, and ends as the script does
(non-daemon threads joined, atexit handlers run, no teardown of every module). What differs from a fresh interpreter is only that pandas, pyarrow,
SQLAlchemy, DuckDB, httpx, uvicorn and the like are already in memory — which is why the tests that are about a
fresh process (start-up, what an import loads, the notebook API's side effects) start one themselves.

Protocol, one request per connection on a UNIX socket: the client sends a JSON object (args, env, cwd) with three
file descriptors (stdin, stdout, stderr); the server forks a waiter, which forks the command and sends back one line
with the command's pid, then one with its exit code (as subprocess reports it: -N when killed by signal N).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys

PRELOAD = ("numpy", "pandas", "pyarrow", "pyarrow.compute", "pyarrow.csv", "pyarrow.parquet", "sqlalchemy", "sqlmodel",
           "pydantic", "duckdb", "psycopg", "httpx", "uvicorn", "starlette.applications", "phonenumbers", "click", "rich.console",
           "openpyxl", "alembic.command", "alembic.config", "alembic.runtime.migration", "alembic.operations")  # fmt: skip


def serve(path: str) -> dict:
    """Accept requests until killed; returns only in a command's own process, with its request."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # waiters are reaped by the kernel
    print("ready", flush=True)
    while True:
        connection, _ = listener.accept()
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        if os.fork() != 0:
            connection.close()
            for fd in fds:
                os.close(fd)
            continue
        # the waiter
        listener.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        command = os.fork()
        if command == 0:
            connection.close()
            request = json.loads(message)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            return request
        for fd in fds:
            os.close(fd)
        try:
            connection.sendall(f"{command}\n".encode())
            _, status = os.waitpid(command, 0)
            connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
        finally:
            os._exit(0)


def run_command(request: dict) -> None:
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["campaigns", *request["args"]]
    sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
    from pipelines.cli import entry

    entry()  # ends the process as the `campaigns` script does (pipelines.runtime.leave)


if __name__ == "__main__":
    run_command(serve(sys.argv[1]))
