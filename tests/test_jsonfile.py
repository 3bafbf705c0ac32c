from __future__ import annotations

import json
from pathlib import Path

import pytest

from voyagr_wsgi._jsonfile import write_json


def test_write_replaces_the_document_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    write_json(str(path), {"a": 1})
    write_json(str(path), {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]


def test_failed_write_removes_its_temp_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.mkdir()  # the rename onto a directory fails
    with pytest.raises(OSError):
        write_json(str(target), {"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
