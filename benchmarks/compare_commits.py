"""The default stack's wall-clock cost per request at two commits, measured in one run.

    .venv/bin/python benchmarks/compare_commits.py 54f7787 [HEAD] [--pairs 8]

Each commit is checked out into a temporary git worktree; then fresh interpreters, one per
commit in turn (A B, B A, A B...), each time the default stack (``instructions.STACK``:
trusted proxy, allowed hosts, ENFORCE_HTTPS, a limit never reached, 2,000 rotating clients)
over 15 rounds of 10,000 requests, keeping the median round. Alternating spreads whatever else
the machine does over both commits; the table gives each commit's median and best over the
pairs, and the median of the paired differences. Not collected by ``make bench``: it needs git
and two checkouts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from instructions import STACK  # this folder is sys.path[0] when run as a script

CHILD = STACK + r"""
import json, statistics, time
def one_round(count=10000):
    t0 = time.perf_counter()
    run(count)
    return (time.perf_counter() - t0) / count * 1e6
one_round()
rounds = [one_round() for _ in range(15)]
print(json.dumps(statistics.median(rounds)))
"""


def measure(src: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True, cwd="/tmp",
    )  # fmt: skip
    return float(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?", default="HEAD")
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="voyagr-compare-") as tmp:
        trees = {}
        for label in (args.before, args.after):
            tree = Path(tmp) / label.replace("/", "_")
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "-q",
                            str(tree), label], check=True)  # fmt: skip
            trees[label] = tree
        try:
            runs: dict[str, list[float]] = {label: [] for label in trees}
            for i in range(args.pairs):
                order = list(trees) if i % 2 == 0 else list(reversed(trees))
                for label in order:
                    runs[label].append(measure(trees[label] / "src"))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force",
                                str(tree)], check=True)  # fmt: skip
    before, after = runs[args.before], runs[args.after]
    print(f"| commit | median of {args.pairs} runs (us/request) | best run |")
    print("| --- | ---: | ---: |")
    for label, values in runs.items():
        print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} |")
    diffs = [a - b for a, b in zip(after, before, strict=True)]
    each = ", ".join(f"{d:+.2f}" for d in diffs)
    print(f"\npaired difference ({args.after} - {args.before}): median "
          f"{statistics.median(diffs):+.2f} us, runs {each}")  # fmt: skip


if __name__ == "__main__":
    main()
