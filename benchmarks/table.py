"""Render the benchmark summary table (Markdown, so it can be pasted into README.md)."""

from __future__ import annotations

import platform
import sys
from typing import Any


def _us(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.2f}"


def render(results: Any) -> str:
    lines = [
        f"CPython {platform.python_version()} on {platform.machine()}, "
        f"{sys.platform}; medians of the rounds; overhead = median - the bare app's median "
        "on the same pool, timed just before and after the row",
        "",
        "| group | what | median us/req | overhead us | peer | ratio to peer | note |",
        "| --- | --- | ---: | ---: | --- | ---: | --- |",
    ]
    memory: list[Any] = []
    for row in sorted(results.rows.values(), key=lambda r: r.group):
        if row.unit not in ("ns/req", "ns/decision"):
            memory.append(row)
            continue
        if row.unit == "ns/decision":
            over = row.median_ns
        else:
            over = results.overhead(row)
        ratio = "-"
        peer = results.rows.get(row.peer or "")
        if peer is not None:
            peer_over = peer.median_ns if peer.unit == "ns/decision" else results.overhead(peer)
            if over is not None and peer_over:
                ratio = f"{over / peer_over:.2f}x"
        lines.append(
            f"| {row.group} | {row.name} | {_us(row.median_ns)} | "
            f"{_us(over) if row.baseline or row.unit == 'ns/decision' else '-'} | "
            f"{row.peer or '-'} | {ratio} | {row.note} |"
        )
    if memory:
        lines += ["", "| memory | value | unit | note |", "| --- | ---: | --- | --- |"]
        for row in memory:
            lines.append(f"| {row.name} | {row.median_ns:,.1f} | {row.unit} | {row.note} |")
    return "\n".join(lines)
