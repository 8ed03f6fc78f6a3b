"""The dashboard's files: templates, its stylesheet, and htmx, vendored and checked.

htmx 2.0.11 comes from the npm package `htmx.org` (`dist/htmx.min.js`), unchanged, with its
licence (`static/LICENSE-htmx`, Zero-Clause BSD). Nothing is fetched at run time: the file ships
inside the package, and the dashboard refuses to start if it is not the one pinned here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mcp_server.errors import Misconfigured

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
HTMX = STATIC / "htmx.min.js"
HTMX_VERSION = "2.0.11"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def check_htmx(path: Path = HTMX) -> None:
    """Raise `Misconfigured` unless the vendored htmx is the pinned file."""
    try:
        found = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise Misconfigured(f"the dashboard's htmx file cannot be read: {exc.strerror}; reinstall Bulkhead") from None
    if found != HTMX_SHA256:
        raise Misconfigured(
            f"the dashboard's htmx file is not htmx {HTMX_VERSION} as shipped (SHA-256 {found[:16]}...); reinstall Bulkhead"
        )
