"""Instructions per request through the default stack, counted by callgrind (deterministic).

    .venv/bin/python benchmarks/instructions.py [--src OTHER_CHECKOUT/src] [--requests 3000]

Wall-clock medians on a shared 2-vCPU machine move by a microsecond from run to run; an
instruction count does not. This runs the default stack (trusted proxy, allowed hosts,
ENFORCE_HTTPS, a limit never reached, 2,000 rotating clients, warmed; the clocks frozen and
the hash seed fixed, so that nothing depends on when it runs) under
``valgrind --tool=callgrind`` twice, with N and 2N requests, and prints the difference divided
by N: the instructions one request costs, start-up and warm-up cancelled out. ``--src``
measures another checkout with the same interpreter, to compare commits. Needs valgrind
(Debian's ``valgrind``); not collected by ``make bench``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

#: the default stack over 2,000 rotating clients and ``run(count)`` (shared with
#: compare_commits.py)
STACK = r"""
import sys
from voyagr_wsgi import compose
from voyagr_wsgi.settings import Settings
SETTINGS = Settings.from_env({
    "TRUSTED_PROXIES": "10.0.0.0/8", "ALLOWED_HOSTS": "example.com", "ENFORCE_HTTPS": "true",
    "RATE_LIMIT_REQUESTS": "1000000000", "VOYAGR_STATE_DIR": "/tmp/voyagr-instructions",
})
def bare(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "31")])
    return [b'{"ok":true,"data":[1,2,3,4,5]}\n']
stack = compose(bare, SETTINGS)
envs = [{
    "REQUEST_METHOD": "GET", "PATH_INFO": "/users/7", "SCRIPT_NAME": "", "QUERY_STRING": "",
    "SERVER_NAME": "example.com", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "example.com", "REMOTE_ADDR": "10.0.0.1",
    "HTTP_X_FORWARDED_FOR": f"198.51.{i // 250}.{i % 250 + 1}", "HTTP_X_FORWARDED_PROTO": "https",
    "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": sys.stderr,
    "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": True,
    "wsgi.run_once": False} for i in range(2000)]
def sr(status, headers, exc_info=None):
    return None
def run(count):
    for k in range(count):
        body = stack(dict(envs[k % 2000]), sr)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close:
            close()
"""

CHILD = r"""
import itertools, sys, time
n = int(sys.argv[1])
# frozen clocks, still C calls: no time slot rolls over mid-run, so two runs count the same
time.monotonic = time.perf_counter = itertools.repeat(1000.0).__next__
time.time = itertools.repeat(1_767_225_600.0).__next__
""" + STACK + """
run(2000)
run(n)
"""


def collected(src: str, n: int) -> int:
    env = {**os.environ, "PYTHONPATH": src, "PYTHONHASHSEED": "0"}  # same dict layouts each run
    done = subprocess.run(
        ["setarch", "-R", "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", CHILD, str(n)],
        capture_output=True, text=True, env=env, check=True, cwd="/tmp",
    )  # fmt: skip
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise RuntimeError(done.stderr[-2000:])
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", default=str(Path(__file__).resolve().parent.parent / "src"))
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.requests
    # the fewest of a few runs: what varies between runs (a garbage collection more or less)
    # only ever adds instructions
    per_request = min(
        (collected(args.src, 2 * n) - collected(args.src, n)) / n for _ in range(args.repeat)
    )
    print(f"{per_request:,.0f} instructions per request through the default stack ({args.src}), "
          f"fewest of {args.repeat} runs")  # fmt: skip


if __name__ == "__main__":
    main()
