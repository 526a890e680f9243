"""Copy the core into another project's tree, as ``typing_extensions`` is copied or pinned.

The copy is `asgi_ws_deny/_deny.py` byte for byte, under a header that names the version, the
licence and the source, and says how to refresh it. The core imports only the standard library
and nothing else from this package, so the copy works under any package name.

Two copies are two modules: their exception classes are distinct, so code that may meet errors
from another copy catches ``ValueError`` and ``RuntimeError`` rather than the classes themselves.
"""

from __future__ import annotations

import keyword
import sys
from pathlib import Path

from asgi_ws_deny._version import __version__

__all__ = ("CORE_PATH", "LICENCE", "VendorError", "vendor", "vendored_source")

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


class VendorError(Exception):
    """The copy cannot be written: a bad module name, or a file that is not a vendored copy."""


def vendored_source() -> str:
    """The text of the copy: the header, then the core module unchanged."""
    licence = "".join(f"# {line}".rstrip() + "\n" for line in LICENCE.splitlines())
    header = (
        f"{_MARK} {__version__}: a copy of asgi_ws_deny/_deny.py, unchanged below the line.\n"
        "# Refresh it with `python -m asgi_ws_deny vendor DEST --name NAME`; do not edit it.\n"
        "# Its exception classes are not those of the installed package or of another copy:\n"
        "# code that may meet both catches ValueError and RuntimeError.\n"
        "# SPDX-License-Identifier: BSD-3-Clause\n"
        "#\n"
        f"{licence}"
        f"# {'-' * 96}\n"
    )
    return header + CORE_PATH.read_text(encoding="utf-8")


def vendor(dest: str | Path, name: str = "_ws_deny", *, force: bool = False) -> Path:
    """Write the copy to ``dest/name.py`` and return its path.

    An existing file is replaced only when it is a vendored copy (of any version), or with
    ``force``.
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        raise VendorError(f"--name must be a Python module name, got {name!r}")
    if name in sys.stdlib_module_names:
        # A top-level copy named json or re would shadow the module the core imports.
        raise VendorError(
            f"--name {name!r} is a standard-library module, which the copy would shadow"
        )
    directory = Path(dest)
    if not directory.is_dir():
        raise VendorError(f"{directory} is not a directory")
    target = directory / f"{name}.py"
    if target.exists() and not force:
        with target.open(encoding="utf-8", errors="replace") as existing:
            if not existing.readline().startswith(_MARK):
                raise VendorError(f"{target} exists and is not a vendored copy; use --force")
    target.write_text(vendored_source(), encoding="utf-8")
    return target
