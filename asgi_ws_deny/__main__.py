"""``python -m asgi_ws_deny vendor DEST [--name NAME]``: copy the core into a project's tree."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from asgi_ws_deny._version import __version__
from asgi_ws_deny.vendor import VendorError, vendor, vendored_source

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
    copy.add_argument("dest", type=Path, help="the directory to write into")
    copy.add_argument("--name", default="_ws_deny", help="module name (default: _ws_deny)")
    copy.add_argument("--force", action="store_true", help="replace a file that is not a copy")
    copy.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if DEST/NAME.py is missing or not this version's copy",
    )
    args = parser.parse_args(argv)

    if args.check:
        target = args.dest / f"{args.name}.py"
        if target.is_file() and target.read_text(encoding="utf-8") == vendored_source():
            print(f"{target} is the copy of asgi-ws-deny {__version__}")
            return 0
        print(f"{target} is missing or not the copy of asgi-ws-deny {__version__}", file=sys.stderr)
        return 1
    try:
        target = vendor(args.dest, args.name, force=args.force)
    except VendorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {target} (asgi-ws-deny {__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
