"""``python -m asgi_ws_deny vendor DEST [--name NAME]``: copy the core into a project's tree."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from asgi_ws_deny._version import __version__
from asgi_ws_deny.vendor import VendorError, check_copy, vendor

__all__ = ("main",)

#: What ``--help`` prints above the commands: plain text, as a terminal shows it.
_DESCRIPTION = (
    "Copy the core of asgi-ws-deny (one module, standard library only) into a project's tree: "
    "python -m asgi_ws_deny vendor DEST [--name NAME]"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m asgi_ws_deny", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    summary = "write the core module (asgi_ws_deny/_deny.py) into DEST/NAME.py"
    copy = commands.add_parser("vendor", help=summary, description=summary[0].upper() + summary[1:])
    copy.add_argument(
        "dest", type=Path, help="the directory to write into (created when it does not exist)"
    )
    copy.add_argument("--name", default="_ws_deny", help="module name (default: _ws_deny)")
    copy.add_argument("--force", action="store_true", help="replace a file that is not a copy")
    copy.add_argument(
        "--check",
        action="store_true",
        help=(
            "write nothing; exit 1 if DEST/NAME.py is missing, not a copy, the copy of another "
            "version, or edited since it was written"
        ),
    )
    args = parser.parse_args(argv)

    if args.check:
        status = check_copy(args.dest, args.name)
        print(status.message(), file=sys.stdout if status.ok else sys.stderr)
        return 0 if status.ok else 1
    try:
        target = vendor(args.dest, args.name, force=args.force)
    except VendorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {target} (asgi-ws-deny {__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
