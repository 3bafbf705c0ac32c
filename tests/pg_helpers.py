"""A throwaway PostgreSQL cluster on loopback for the tests and the benchmark (no tests here).

``initdb`` and ``pg_ctl`` come from Debian's packages (``/usr/lib/postgresql/<major>/bin``,
not on PATH on a fresh machine). When running as root, the cluster runs as the unprivileged
``postgres`` user the package creates (``runuser``); its folder is made theirs. It listens on
127.0.0.1 only, with its unix socket in its own folder, and password authentication
(scram-sha-256) over TCP, so the tests exercise the password path for real.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from conftest import free_port

PASSWORD = "s3cr:et\\pw-voyagr"  # a colon and a backslash: the passfile escaping is exercised
USER = "postgres"


def server_bin(name: str) -> str | None:
    """``name`` from the highest /usr/lib/postgresql/<major>/bin, or PATH."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return found[-1] if found else shutil.which(name)


@dataclass
class Cluster:
    port: int
    folder: str
    bin_dir: str

    def url(self, db: str = "postgres", *, password: bool = True) -> str:
        auth = f"{USER}:{_quote(PASSWORD)}" if password else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def sql(self, query: str, db: str = "postgres") -> str:
        """Run ``query`` with psql as the superuser; stdout (rows, ``|``-separated)."""
        env = {**os.environ, "PGPASSWORD": PASSWORD, "PGCONNECT_TIMEOUT": "10"}
        done = subprocess.run(
            [
                os.path.join(self.bin_dir, "psql"),
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                query,
                f"--dbname={self.url(db, password=False)}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr}")
        return done.stdout


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def cluster() -> Iterator[Cluster]:
    """initdb + pg_ctl start on a free loopback port; stopped and removed afterwards."""
    initdb = server_bin("initdb")
    if initdb is None:
        raise FileNotFoundError("initdb")
    bin_dir = os.path.dirname(initdb)
    folder = tempfile.mkdtemp(prefix="voyagr-pg-")
    if os.geteuid() == 0:
        account = pwd.getpwnam(USER)
        os.chown(folder, account.pw_uid, account.pw_gid)
    pwfile = os.path.join(folder, "pw")
    with open(pwfile, "w") as handle:
        handle.write(PASSWORD + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    data = os.path.join(folder, "data")
    port = free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        _as_postgres(
            [
                initdb,
                "-D",
                data,
                "-U",
                USER,
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ]
        ),
        **run,  # type: ignore[arg-type]
    )
    options = f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=50"
    pg_ctl = os.path.join(bin_dir, "pg_ctl")
    log = os.path.join(folder, "log")
    subprocess.run(
        _as_postgres([pg_ctl, "-D", data, "-l", log, "-o", options, "-w", "start"]),
        **run,  # type: ignore[arg-type]
    )
    try:
        yield Cluster(port, folder, bin_dir)
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)
