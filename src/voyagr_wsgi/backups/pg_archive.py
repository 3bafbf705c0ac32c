"""One ``pg_dump --format=custom`` archive stream, read by several ``pg_restore`` children at once.

A custom-format archive written to a pipe can be read from a pipe: ``pg_restore`` reads it
sequentially. :class:`Consumers` starts the children with the archive on their stdin and
:meth:`Consumers.feed` hands each chunk to all of them, so the dump (or a stored backup being
decompressed) is read once, never copied to disk uncompressed, whatever its size. The
children used by the PostgreSQL engine:

- ``pg_restore --file=/dev/null``: reads the *whole* archive, every data block (inflated
  when compressed). ``pg_restore --list`` reads only the header and the table of contents:
  a truncated or damaged data section passes it;
- ``pg_restore --list``: the table of contents (which tables exist);
- ``pg_restore --schema-only --no-owner --no-privileges --file=-``: the schema as SQL, hashed
  by :func:`schema_digest`;
- ``pg_restore --dbname=...``: a restore (into a scratch database, or the live one).

A child may stop reading early (``--list`` exits after the table of contents): its broken
pipe is not an error, its exit status is. Their stdout and stderr are drained by threads so no
pipe fills up. :meth:`Consumers.finish` closes the stdins and waits; any failure is a
:class:`~voyagr_wsgi.errors.BackupVerificationError` (or ``error`` given) with the child's
redacted stderr. :meth:`Consumers.kill` stops them all, e.g. before a restore reaches its
commit when the stream turned out bad.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence

from ..errors import BackupError, BackupVerificationError

__all__ = ["Consumers", "schema_digest", "tables_of"]

FINISH_TIMEOUT_S = 3600.0
_NOISE = re.compile(r"\A(--|\\restrict |\\unrestrict |SET |SELECT pg_catalog\.set_config\()")
_TABLE = re.compile(r"\A\d+; \d+ \d+ TABLE (?!DATA )(\S+) (\S+) ")  # not TABLE DATA


def schema_digest(sql: str) -> str:
    """SHA-256 of schema-only SQL without what differs between two dumps of one schema:
    comments, the random ``\\restrict`` keys, ``SET`` lines, blank lines."""
    digest = hashlib.sha256()
    for line in sql.splitlines():
        if line.strip() and _NOISE.match(line) is None:
            digest.update(line.rstrip().encode() + b"\n")
    return digest.hexdigest()


def tables_of(toc: str) -> list[str]:
    """``schema.table`` names in a ``pg_restore --list`` table of contents."""
    return [f"{m.group(1)}.{m.group(2)}" for m in map(_TABLE.match, toc.splitlines()) if m]


class _Child:
    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
        )
        self.open = True
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for thread in self.threads:
            thread.name = f"voyagr-pg-{name}"
            thread.start()

    @staticmethod
    def _drain(pipe: object, into: list[bytes]) -> None:
        read = getattr(pipe, "read")  # noqa: B009 - a BufferedReader typed as IO[bytes] | None
        while data := read(65536):
            into.append(data)

    def write(self, chunk: bytes) -> None:
        if not self.open or self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write(chunk)
        except (BrokenPipeError, ValueError):
            self.open = False  # it stopped reading; its exit status tells whether that is OK

    def reap(self) -> None:
        """After the process ended: join the drains, close the pipes."""
        for thread in self.threads:
            thread.join()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        self.open = False


class Consumers:
    """Children reading one archive stream on their stdin (see the module docstring)."""

    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        env: Mapping[str, str],
        *,
        redact: Callable[[str], str],
    ) -> None:
        self.redact = redact
        self.children: list[_Child] = []
        try:
            for name, argv in commands.items():
                self.children.append(_Child(name, argv, env))
        except OSError as exc:
            self.kill()
            raise BackupError(f"cannot start {commands[name][0]}: {exc}") from exc

    def feed(self, chunk: bytes) -> None:
        for child in self.children:
            child.write(chunk)

    def finish(
        self,
        *,
        timeout_s: float = FINISH_TIMEOUT_S,
        error: type[BackupError] = BackupVerificationError,
        what: str = "the archive",
    ) -> dict[str, str]:
        """Close the stdins and wait: each child's stdout, or ``error`` naming what failed."""
        for child in self.children:
            child.close()
        failed: list[str] = []
        outputs: dict[str, str] = {}
        for child in self.children:
            try:
                code = child.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                code = child.proc.wait()
            child.reap()
            outputs[child.name] = b"".join(child.out).decode("utf-8", "replace")
            stderr = self.redact(b"".join(child.err).decode("utf-8", "replace"))
            if code != 0:
                failed.append(f"{child.name} (exit {code}): {stderr[-2000:] or 'no message'}")
        if failed:
            raise error(f"pg_restore could not read {what}: " + "; ".join(failed))
        return outputs

    def kill(self) -> None:
        for child in self.children:
            if child.proc.poll() is None:
                child.proc.kill()
        for child in self.children:
            child.close()
            child.proc.wait()
            child.reap()
