"""The PostgreSQL client programs (``pg_dump``, ``pg_restore``, ``psql``) as the backups run them.

No driver is loaded: every conversation with the server goes through the client binaries of
the ``postgresql-client`` package, started with an argument list (never a shell).

- **Where the binaries are**: ``PG_BIN_DIR`` when set (and only there); else ``PATH``; else
  the highest ``/usr/lib/postgresql/<major>/bin`` (Debian's layout, where ``initdb`` and
  friends live off ``PATH``). A missing binary is a :class:`~voyagr_wsgi.errors.BackupError`
  naming the package and the setting.
- **The password** never reaches a command line, a log line or an error: it is cut out of
  ``DATABASE_URL`` (the URL passed as ``--dbname`` has none) and handed to each child in a
  private passfile (mode 0600, ``PGPASSFILE``, removed when the child is done; ``PGPASSWORD``
  is then dropped from the child's environment since libpq would prefer it). Without a
  password in the URL the process's own ``PGPASSWORD`` / ``PGPASSFILE`` / ``~/.pgpass`` apply.
  Passfiles left by a killed process are removed after an hour (libpq reads one only when it
  connects).
  Every message from a child is passed through :meth:`PgClient.redact` before it is raised.
- **Versions**: ``pg_dump`` cannot dump a server of a newer major version (it refuses);
  :meth:`PgClient.check_versions` compares ``pg_dump --version`` with the server's
  ``SHOW server_version_num`` first and names both when the client is too old.
- Children get ``PGCONNECT_TIMEOUT`` (10 s unless set) so an unreachable server is a prompt,
  clear error, and ``-w`` (never prompt for a password).

Usage::

    client = PgClient(Secret("postgresql://app:pw@db:5432/app"), staging="/data/backups/.staging")
    client.check_versions()                    # (15, 150018) or BackupError
    with client.env() as env:
        subprocess.run([client.binary("pg_dump"), "-w", "--dbname", client.url, ...], env=env)
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import quote, unquote

from ..errors import BackupError
from ..secret import Secret
from ._fs import remove_quietly

__all__ = ["PgClient", "find_binary", "server_major"]

DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
CONNECT_TIMEOUT_S = "10"
STALE_PASSFILE_S = 3600.0
_VERSION = re.compile(r"\)\s+(\d+)(?:\.(\d+))?")


def find_binary(name: str, bin_dir: str = "") -> str:
    """Path of client program ``name`` (see the module docstring for the search order)."""
    if bin_dir:
        path = os.path.join(bin_dir, name)
        if os.access(path, os.X_OK):
            return path
        raise BackupError(f"PG_BIN_DIR={bin_dir!r} has no executable {name}")
    found = shutil.which(name)
    if found:
        return found
    versions = []
    for folder in glob.glob(DEBIAN_GLOB):
        major = os.path.basename(os.path.dirname(folder))
        path = os.path.join(folder, name)
        if major.isdigit() and os.access(path, os.X_OK):
            versions.append((int(major), path))
    if versions:
        return max(versions)[1]
    raise BackupError(
        f"{name} not found on PATH nor in {DEBIAN_GLOB}: install the PostgreSQL client "
        "(Debian: apt-get install postgresql-client) or set PG_BIN_DIR"
    )


def server_major(version_num: int) -> int:
    """``server_version_num`` -> major version (150018 -> 15; 90624 -> 906, i.e. 9.6)."""
    return version_num // 10000 if version_num >= 100000 else version_num // 100


def _split_url(url: str) -> tuple[str, str | None]:
    """``(url without its password, the password or None)``."""
    scheme, _, rest = url.partition("://")
    authority, sep, tail = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    if not at:
        return url, None
    user, colon, password = userinfo.partition(":")
    clean = f"{scheme}://{user}@{hosts}{sep}{tail}"
    return clean, unquote(password) if colon else None


class PgClient:
    def __init__(self, url: Secret, *, staging: str, bin_dir: str = "") -> None:
        self.url, password = _split_url(url.reveal())  # no password in self.url
        self._password = Secret(password) if password else None
        self.staging = staging  # the passfiles are made here (the backup folder's, 0700)
        self.bin_dir = bin_dir

    def __repr__(self) -> str:
        return f"PgClient({self.url!r})"

    def binary(self, name: str) -> str:
        return find_binary(name, self.bin_dir)

    def url_for(self, dbname: str) -> str:
        """The URL (no password) of another database on the same server."""
        scheme, _, rest = self.url.partition("://")
        authority, _, tail = rest.partition("/")
        query = tail.partition("?")[2]
        return f"{scheme}://{authority}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")

    def redact(self, text: str) -> str:
        """``text`` with the password (raw and percent-encoded) replaced by ``***``."""
        if self._password is not None:
            for form in {self._password.reveal(), quote(self._password.reveal(), safe="")}:
                if form:
                    text = text.replace(form, "***")
        return text.strip()

    @contextmanager
    def env(self, **extra: str) -> Iterator[dict[str, str]]:
        """The environment for a child: the password in a private passfile, if the URL had one."""
        env = dict(os.environ)
        env.setdefault("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_S)
        env.setdefault("PGAPPNAME", "voyagr-backup")
        env.update(extra)
        if self._password is None:
            yield env
            return
        os.makedirs(self.staging, mode=0o700, exist_ok=True)
        self._remove_stale_passfiles()
        path = os.path.join(self.staging, f".pgpass-{secrets.token_hex(8)}")
        escaped = self._password.reveal().replace("\\", "\\\\").replace(":", "\\:")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(f"*:*:*:*:{escaped}\n")
            env.pop("PGPASSWORD", None)  # libpq would prefer it over the passfile
            env["PGPASSFILE"] = path
            yield env
        finally:
            remove_quietly(path)

    def _remove_stale_passfiles(self) -> None:
        """Passfiles of a process killed mid-run (libpq reads one when it connects, so an
        hour-old one is no longer needed by anyone)."""
        limit = time.time() - STALE_PASSFILE_S
        for path in glob.glob(os.path.join(glob.escape(self.staging), ".pgpass-*")):
            try:
                if os.stat(path).st_mtime < limit:
                    os.unlink(path)
            except FileNotFoundError:
                pass

    def run(self, argv: Sequence[str], *, what: str, timeout_s: float = 120.0) -> str:
        """Run a short client command; its stdout, or BackupError with its (redacted) stderr."""
        with self.env() as env:
            try:
                done = subprocess.run(
                    list(argv), env=env, capture_output=True, timeout=timeout_s, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise BackupError(f"{what}: no answer within {timeout_s:.0f} s") from exc
            except OSError as exc:
                raise BackupError(f"{what}: cannot run {argv[0]}: {exc}") from exc
        if done.returncode != 0:
            stderr = self.redact(done.stderr.decode("utf-8", "replace"))
            raise BackupError(f"{what} failed (exit {done.returncode}): {stderr}")
        return done.stdout.decode("utf-8", "replace")

    def psql(self, sql: str, *, url: str | None = None, what: str = "psql") -> str:
        """Run ``sql`` with ``psql -XAt`` (stop at the first error); the rows as text."""
        argv = [self.binary("psql"), "-X", "-A", "-t", "-w", "-q", "-v", "ON_ERROR_STOP=1"]
        return self.run([*argv, "-c", sql, f"--dbname={url or self.url}"], what=what)

    def server_version_num(self) -> int:
        out = self.psql("SHOW server_version_num", what=f"connecting to {self.url}").strip()
        if not out.isdigit():
            raise BackupError(f"unexpected server_version_num {out[:40]!r} from {self.url}")
        return int(out)

    def client_major(self, name: str = "pg_dump") -> int:
        path = self.binary(name)
        out = self.run([path, "--version"], what=f"{path} --version")
        match = _VERSION.search(out)
        if match is None:
            raise BackupError(f"{path} --version printed {out.strip()[:80]!r}: no version")
        major = int(match.group(1))
        return major * 100 + int(match.group(2) or 0) if major < 10 else major

    def check_versions(self) -> tuple[int, int]:
        """``(pg_dump major, server_version_num)``; BackupError when pg_dump is too old."""
        client = self.client_major("pg_dump")
        server_num = self.server_version_num()
        server = server_major(server_num)
        if client < server:
            raise BackupError(
                f"pg_dump {_major_text(client)} ({self.binary('pg_dump')}) cannot dump the "
                f"PostgreSQL {_major_text(server)} server at {self.url}: the client's major "
                f"version must be at least the server's. Install postgresql-client-"
                f"{_major_text(server)} or point PG_BIN_DIR at its bin folder; nothing was kept"
            )
        return client, server_num


def _major_text(major: int) -> str:
    return f"{major // 100}.{major % 100}" if major >= 900 else str(major)
