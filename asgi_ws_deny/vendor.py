"""Copy the core into another project's tree, as ``typing_extensions`` is copied or pinned.

The copy is `asgi_ws_deny/_deny.py` byte for byte, under a header that names the version, the
licence and the source, and says how to refresh it. The core imports only the standard library
and nothing else from this package, so the copy works under any package name.

Two copies are two modules: their exception classes are distinct, so code that may meet errors
from another copy catches ``ValueError`` and ``RuntimeError`` rather than the classes themselves.

The header's first line names the version and a second line the SHA-256 of the text below it,
so that `check_copy` can tell a copy of another version (or another build of this one) from a
copy that was edited after it was written, most often by the host project's formatter.
"""

from __future__ import annotations

import hashlib
import keyword
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asgi_ws_deny._version import __version__

__all__ = (
    "CORE_PATH",
    "LICENCE",
    "CopyState",
    "CopyStatus",
    "VendorError",
    "check_copy",
    "vendor",
    "vendored_source",
)

#: The module that is copied.
CORE_PATH = Path(__file__).with_name("_deny.py")

#: The licence the copy carries (it must travel with every copy of the source).
LICENCE = """\
BSD 3-Clause License

Copyright (c) 2026, the asgi-ws-deny maintainers
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

_MARK = "# Vendored from asgi-ws-deny"
_DIGEST = "# SHA-256 of the text below the line: "
_LINE = f"# {'-' * 96}\n"


class VendorError(Exception):
    """The copy cannot be written: a bad module name, or a file that is not a vendored copy."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vendored_source() -> str:
    """The text of the copy: the header, then the core module unchanged."""
    core = CORE_PATH.read_text(encoding="utf-8")
    licence = "".join(f"# {line}".rstrip() + "\n" for line in LICENCE.splitlines())
    header = (
        f"{_MARK} {__version__}: a copy of asgi_ws_deny/_deny.py, unchanged below the line.\n"
        "# Refresh it with `python -m asgi_ws_deny vendor DEST --name NAME`; do not edit it\n"
        "# (keep formatters and linters off it: `vendor --check` fails on an edited copy).\n"
        "# Its exception classes are not those of the installed package or of another copy:\n"
        "# code that may meet both catches ValueError and RuntimeError.\n"
        f"{_DIGEST}{_digest(core)}\n"
        "# SPDX-License-Identifier: BSD-3-Clause\n"
        "#\n"
        f"{licence}"
        f"{_LINE}"
    )
    return header + core


#: What `check_copy` found: this version's copy as written, no file, a file that is no copy,
#: a copy of another version (or of another build of this version), or a copy edited since.
CopyState = Literal["current", "missing", "not-a-copy", "other-version", "edited"]


@dataclass(frozen=True)
class CopyStatus:
    """The state of a vendored copy, as `check_copy` found it."""

    path: Path
    state: CopyState
    #: The version the copy's header names; ``None`` when there is no header to read.
    version: str | None = None
    #: For an edited copy, the first line (counted from 1) that differs from what was written.
    line: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the copy is this version's, unedited."""
        return self.state == "current"

    def message(self) -> str:
        """One sentence for a person: what is wrong, and what to do about it."""
        command = f"`python -m asgi_ws_deny vendor {self.path.parent} --name {self.path.stem}`"
        refresh = f"write it again with {command}"
        if self.state == "current":
            return f"{self.path} is the copy of asgi-ws-deny {__version__}"
        if self.state == "missing":
            return f"{self.path} is missing: write it with {command}"
        if self.state == "not-a-copy":
            return (
                f"{self.path} is not a vendored copy (its first line is not the header "
                f"{_MARK!r}): replace it with {command[:-1]} --force`"
            )
        if self.state == "other-version":
            if self.version == __version__:
                return (
                    f"{self.path} is the copy of another build of asgi-ws-deny {__version__} "
                    f"(its core differs from this build's): {refresh}"
                )
            return (
                f"{self.path} is the copy of asgi-ws-deny {self.version}, "
                f"not {__version__}: {refresh}"
            )
        return (
            f"{self.path} is the copy of asgi-ws-deny {self.version} but was edited since "
            f"(first at line {self.line}), by hand or by a formatter or linter: exclude it "
            f"from those (see the vendoring docs) and {refresh}"
        )


def _header_version(first_line: str) -> str | None:
    if not first_line.startswith(_MARK + " "):
        return None
    version, colon, _ = first_line[len(_MARK) + 1 :].partition(":")
    return version if colon and version else None


def _first_difference(text: str, expected: str) -> int:
    lines = text.splitlines()
    expected_lines = expected.splitlines()
    for number, (line, wanted) in enumerate(zip(lines, expected_lines, strict=False), start=1):
        if line != wanted:
            return number
    return min(len(lines), len(expected_lines)) + 1


def check_copy(dest: str | Path, name: str = "_ws_deny") -> CopyStatus:
    """Say whether ``dest/name.py`` is this version's copy, written by `vendor` and unedited.

    Writes nothing. A copy whose header names this version but whose text differs is *edited*
    when its text no longer matches the digest in its own header, and the copy of *another
    build* of this version when it does (a development build whose core has changed since).
    """
    path = Path(dest) / f"{name}.py"
    if not path.is_file():
        return CopyStatus(path, "missing")
    # Universal newlines, as Python reads the module: a checkout with CRLF line ends is intact.
    text = path.read_text(encoding="utf-8", errors="replace")
    expected = vendored_source()
    if text == expected:
        return CopyStatus(path, "current", __version__)
    version = _header_version(text.partition("\n")[0])
    if version is None:
        return CopyStatus(path, "not-a-copy")
    if version != __version__:
        return CopyStatus(path, "other-version", version)
    header, separator, core = text.partition(_LINE)
    recorded = next(
        (line[len(_DIGEST) :] for line in header.splitlines() if line.startswith(_DIGEST)), None
    )
    if separator and recorded == _digest(core) and core != CORE_PATH.read_text(encoding="utf-8"):
        return CopyStatus(path, "other-version", version)
    return CopyStatus(path, "edited", version, _first_difference(text, expected))


def vendor(dest: str | Path, name: str = "_ws_deny", *, force: bool = False) -> Path:
    """Write the copy to ``dest/name.py`` and return its path.

    ``dest`` is created, with its parents, when it does not exist. An existing file is
    replaced only when it is a vendored copy (of any version), or with ``force``.
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        raise VendorError(f"--name must be a Python module name, got {name!r}")
    if name in sys.stdlib_module_names:
        # A top-level copy named json or re would shadow the module the core imports.
        raise VendorError(
            f"--name {name!r} is a standard-library module, which the copy would shadow"
        )
    directory = Path(dest)
    if directory.exists() and not directory.is_dir():
        raise VendorError(f"{directory} is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.py"
    if target.exists() and not force:
        with target.open(encoding="utf-8", errors="replace") as existing:
            if not existing.readline().startswith(_MARK):
                raise VendorError(f"{target} exists and is not a vendored copy; use --force")
    target.write_text(vendored_source(), encoding="utf-8")
    return target
