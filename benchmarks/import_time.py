"""Import cost of one layer and of the default stack, in fresh interpreters.

    .venv/bin/python benchmarks/import_time.py [--runs 15] [--src OTHER_CHECKOUT/src]

Prints the median wall time of ``from voyagr_wsgi.layers import HostCheck`` and of
``compose(app, Settings.from_env({}))`` (imports included), with the number of voyagr_wsgi
modules and of all modules loaded. ``--src`` measures another checkout (a commit to compare
against) with the same interpreter. Not collected by ``make bench`` (it starts processes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CASES = {
    "from voyagr_wsgi.layers import HostCheck": "from voyagr_wsgi.layers import HostCheck",
    "compose(app, Settings.from_env({}))": (
        "from voyagr_wsgi import Settings, compose\n"
        "compose(lambda e, s: [], Settings.from_env({}))"
    ),
}

PROBE = """
import json, sys, time
t = time.perf_counter()
exec({code!r})
elapsed = time.perf_counter() - t
mods = [m for m in sys.modules if m.startswith("voyagr_wsgi")]
print(json.dumps([elapsed, len(mods), len(sys.modules)]))
"""


def measure(code: str, runs: int, src: str | None) -> tuple[float, int, int]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    times, counts = [], (0, 0)
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(code=code)],
            capture_output=True, text=True, check=True, env=env, cwd="/tmp",
        ).stdout
        elapsed, ours, total = json.loads(out)
        times.append(elapsed)
        counts = (ours, total)
    return statistics.median(times), *counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--src", help="another checkout's src/ to measure instead")
    args = parser.parse_args()
    for name, code in CASES.items():
        median, ours, total = measure(code, args.runs, args.src)
        print(f"{name:40} {median * 1000:7.1f} ms  {ours:3} voyagr_wsgi modules  {total} in all")


if __name__ == "__main__":
    main()
