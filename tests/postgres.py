"""A real PostgreSQL server for the tests: initdb in a temporary folder, on a loopback port.

Debian's `postgresql` package (the README's test command installs it) provides the
binaries. initdb refuses to run as root, so as root (CI) the server runs as the
`postgres` user the package creates. Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from .fakes.smtp import free_port

SUPERUSER_PASSWORD = "pg-super-7c2e9b41d0"
USER = "fedfina"
PASSWORD = "pg-ledger-pass-3f8a1d6e52"


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and Path(found).resolve().parent.joinpath("initdb").exists():
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return Path(versions[-1]) if versions else None



@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def _pg_ctl(self, *args: str) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c max_connections=300")
        subprocess.run(self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                                      "-l", str(self.root / "server.log"), "-w", "-t", "60", *args),
                       check=True, capture_output=True)

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", password=SUPERUSER_PASSWORD,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name} OWNER {USER}")
        return name

    def query(self, database: str, sql: str, *args) -> list[dict]:
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.url(database), autocommit=True, row_factory=dict_row) as conn:
            return list(conn.execute(sql, args).fetchall())  # type: ignore[arg-type]


def start_postgres() -> PostgresServer:
    bindir = _bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL's server binaries are not installed: run the README's test command, "
                           "which installs Debian's postgresql package")
    root = Path(tempfile.mkdtemp(prefix="fedfina-pg-"))
    os.chmod(root, 0o755)
    server = PostgresServer(bindir, root, free_port())
    server.data.mkdir()
    (root / "pwfile").write_text(SUPERUSER_PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(server.data, "postgres")
        shutil.chown(root / "pwfile", "postgres")
    subprocess.run(server._as_owner(str(bindir / "initdb"), "-D", str(server.data), "-U", "postgres",
                                    "--auth-local=trust", "--auth-host=scram-sha-256",
                                    f"--pwfile={root / 'pwfile'}", "-E", "UTF8", "--locale=C.UTF-8"),
                   check=True, capture_output=True)
    server.start()
    server.admin(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
    return server


def stop_postgres(server: PostgresServer) -> None:
    try:
        server.stop("immediate")
    finally:
        shutil.rmtree(server.root, ignore_errors=True)
