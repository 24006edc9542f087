"""Input checks that keep bad input from becoming bad requests: pure, no I/O.

- header names must be HTTP tokens and values free of control characters, so no
  caller-supplied string can inject a header or split a request (CR/LF);
- keys must be free of control characters for the same reason;
- a key written under a local directory must stay inside it.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping

from .errors import ValidationError

__all__ = ["check_headers", "check_key", "local_path_for_key"]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab is allowed in values
_KEY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _show(ch: str) -> str:
    return repr(ch)[1:-1]


def check_headers(headers: Mapping[str, Any]) -> None:
    """Refuse header names that are not tokens and values with control characters."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValidationError(f"invalid header name {name!r}: must be an HTTP token")
        m = _CONTROL.search(str(value))
        if m:
            raise ValidationError(
                f"invalid value for header {name!r}: contains control character "
                f"'{_show(m.group())}' (header injection is refused)"
            )


def check_key(key: str) -> None:
    """Refuse keys with control characters (CR, LF, NUL...)."""
    m = _KEY_CONTROL.search(key)
    if m:
        raise ValidationError(
            f"invalid key {key!r}: contains control character '{_show(m.group())}'"
        )


def local_path_for_key(root: str, key: str) -> str:
    """Where ``key`` goes under the directory ``root``; refuses keys that would escape it.

    >>> local_path_for_key('/tmp/out', 'photos/2024/a.jpg')
    '/tmp/out/photos/2024/a.jpg'
    """
    check_key(key)
    parts = key.replace("\\", "/").split("/")
    if key.startswith(("/", "\\")) or _DRIVE.match(key) or ".." in parts:
        raise ValidationError(
            f"refusing key {key!r}: it would be written outside {root!r}"
        )
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, *[p for p in parts if p not in ("", ".")]))
    if path != base and not path.startswith(base + os.sep):
        raise ValidationError(f"refusing key {key!r}: it would be written outside {root!r}")
    return path
