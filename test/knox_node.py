"""Where the real knox (Node) is, for the differential tests; they skip cleanly without it.

knox@0.9.2 is looked for, in order, at:

1. ``$KNOX_PATH`` (the package directory, ``.../node_modules/knox``), and the older
   ``$KNOX_MODULE`` / ``$KNOX_AUTH_JS`` (``.../knox/lib/auth.js``) names;
2. ``./node_modules/knox`` in the checkout, then in the current directory;
3. ``/tmp/knoxnode/node_modules/knox`` and ``/tmp/knox/node_modules/knox``.

To get one: ``npm install --prefix /tmp/knoxnode knox@0.9.2 mime@1``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, List, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _candidates() -> List[Path]:
    found: List[Path] = []
    for name in ("KNOX_PATH", "KNOX_MODULE"):
        if os.environ.get(name):
            found.append(Path(os.environ[name]))
    if os.environ.get("KNOX_AUTH_JS"):  # .../knox/lib/auth.js
        found.append(Path(os.environ["KNOX_AUTH_JS"]).parent.parent)
    found += [
        ROOT / "node_modules" / "knox",
        Path.cwd() / "node_modules" / "knox",
        Path("/tmp/knoxnode/node_modules/knox"),
        Path("/tmp/knox/node_modules/knox"),
    ]
    return found


def find_knox() -> Optional[Path]:
    """The knox package directory (holding ``lib/auth.js``), or None."""
    if shutil.which("node") is None:
        return None
    for path in _candidates():
        if (path / "lib" / "auth.js").is_file() and (path / "package.json").is_file():
            return path.resolve()
    return None


KNOX = find_knox()
KNOX_AUTH_JS = KNOX / "lib" / "auth.js" if KNOX else None
needs_knox = pytest.mark.skipif(
    KNOX is None, reason="needs node and knox@0.9.2 (set KNOX_PATH, or npm install knox@0.9.2)"
)


def run_node(script: str, *args: Any, stdin: Optional[str] = None, timeout: float = 60) -> Any:
    """Run ``script`` under Node with knox's directory as ``process.argv[1]``; parse its JSON.

    Later arguments are passed JSON-encoded as ``process.argv[2:]``.
    """
    assert KNOX is not None
    argv = ["node", "-e", script, str(KNOX)] + [json.dumps(a) for a in args]
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                          cwd=str(KNOX.parent.parent))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
