"""`.env.production` lists every variable the library reads, and is built from docs/env/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GETTERS = "str|bool|int|float|list|choice|networks|secret|raw|has"
READ = re.compile(rf'env\.(?:{GETTERS})\(\s*"([A-Z0-9_]+)"')


def template_names() -> set[str]:
    text = (ROOT / ".env.production").read_text()
    return set(re.findall(r"^([A-Z0-9_]+)=", text, flags=re.M))


def test_every_variable_read_is_documented() -> None:
    read: set[str] = set()
    for path in (ROOT / "src" / "voyagr_wsgi").rglob("*.py"):
        read |= set(READ.findall(path.read_text()))
    assert len(read) > 40
    assert read - template_names() == set()


def test_template_is_the_concatenation_of_the_fragments() -> None:
    parts = sorted((ROOT / "docs" / "env").glob("*.env"))
    expected = "".join(p.read_text() for p in parts)
    assert (ROOT / ".env.production").read_text() == expected, "run `make env-template`"


def test_every_variable_is_under_a_comment() -> None:
    """Each variable, or a block of related ones (a warn/fail pair), has a comment above it."""
    lines = (ROOT / ".env.production").read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z0-9_]+=", line):
            j = i - 1
            while j >= 0 and re.match(r"^[A-Z0-9_]+=", lines[j]):
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), line


def test_no_variable_is_listed_twice() -> None:
    text = (ROOT / ".env.production").read_text()
    names = re.findall(r"^([A-Z0-9_]+)=", text, flags=re.M)
    assert len(names) == len(set(names))
