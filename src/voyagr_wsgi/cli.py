"""The ``voyagr-wsgi`` console command.

::

    voyagr-wsgi check [--env-file FILE] [--json]   deployment warnings, like Django's check --deploy
    voyagr-wsgi backup create|list [--json]|verify ID|restore ID|prune [--dry-run] [--env-file FILE]
    voyagr-wsgi explain [PATH] [--method M] [--remote IP] [-H 'Name: value' ...] [--env-file FILE]
    voyagr-wsgi alert test [--env-file FILE]     a test notification through every channel
    voyagr-wsgi --version

``python -m voyagr_wsgi`` is the same command. Every subcommand reads the same settings as
the app (``Settings.from_env``, with ``--env-file`` over the environment), prints a clear
message and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import _cli
from ._version import __version__

__all__ = ["main"]

_COMMANDS = {
    "check": "voyagr_wsgi.check",
    "backup": "voyagr_wsgi.backups.cli",
    "explain": "voyagr_wsgi.explain",
    "alert": "voyagr_wsgi.alerts.cli",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _cli.parser("voyagr-wsgi", __doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _cli.plain(__doc__.split("::", 1)[1].strip("\n").split("\n\n")[0])
    parser.add_argument("command", choices=tuple(_COMMANDS), help="what to do")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    if args[0] == "--version":
        print(f"voyagr-wsgi {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in _COMMANDS:
        parser.print_usage(sys.stderr)
        print(f"voyagr-wsgi: unknown command {command!r}", file=sys.stderr)
        return 2
    module = importlib.import_module(_COMMANDS[command])
    return int(module.main(rest))


if __name__ == "__main__":
    raise SystemExit(main())
