"""A throw-away PostgreSQL cluster for the tests: Debian's server binaries (`make test` installs the `postgresql`
package when they are missing), one cluster per test process, on a Unix socket in a temporary folder, one fresh
database per test.

As root (CI), the server runs as the `postgres` user the package creates: PostgreSQL refuses to run as root. The
cluster trades durability for speed (fsync off): the tests kill clients, never the machine.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

USER = "campaigns"


def _binaries() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("the PostgreSQL tests need a PostgreSQL server: `make test` installs Debian's postgresql "
                           "package (as root), or install it yourself")  # fmt: skip
    return Path(candidates[-1]).parent


class Cluster:
    """One running cluster; `url(database)` is an SQLAlchemy URL for a database in it."""

    def __init__(self) -> None:
        self.bin = _binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="campaigns-pg-"))
        self.data, self.socket = self.folder / "data", self.folder / "socket"
        self._template = ""
        self.socket.mkdir()
        as_root = os.geteuid() == 0
        if as_root:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.socket, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8")
        options = f"-k {self.socket} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c synchronous_commit=off " \
                  "-c max_connections=200"  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start")
        atexit.register(self.stop)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@/{database}?host={self.socket}"

    def create_database(self, *, empty: bool = False) -> str:
        """A fresh database, its ledger schema at the newest revision (a copy of a template migrated once: a test's
        commands then start as on a ledger in use), or `empty`; its URL."""
        if not empty and not self._template:
            self._template = self._new_database()
            from pipelines.ledger import Ledger

            Ledger(self.url(self._template)).close()
        return self.url(self._new_database(None if empty else self._template))

    def _new_database(self, template: str | None = None) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=str(self.socket), user=USER, dbname="postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


_cluster: Cluster | None = None


def cluster() -> Cluster:
    """This test process's cluster, started on first use."""
    global _cluster
    if _cluster is None:
        _cluster = Cluster()
    return _cluster
