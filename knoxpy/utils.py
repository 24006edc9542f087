"""knox's utils: ``merge`` and ``base64``, with knox's semantics."""
from __future__ import annotations

import base64 as _b64
import re
from typing import Any, Dict, Mapping

__all__ = ["base64", "merge"]

_URL_SAFE = str.maketrans("-_", "+/")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def merge(a: Dict[str, Any], b: Mapping[str, Any]) -> Dict[str, Any]:
    """Copy ``b``'s keys into ``a`` and return ``a`` (knox's ``utils.merge``).

    >>> merge({'a': 1}, {'b': 2})
    {'a': 1, 'b': 2}
    """
    for key in list(b.keys()):
        a[key] = b[key]
    return a


class _Base64:
    """knox's ``utils.base64``: UTF-8 strings in and out."""

    @staticmethod
    def encode(s: str) -> str:
        """Encode a string's UTF-8 bytes, as Node's ``new Buffer(str).toString('base64')``.

        >>> base64.encode('knox')
        'a25veA=='
        """
        return _b64.b64encode(s.encode("utf-8")).decode("ascii")

    @staticmethod
    def decode(s: str) -> str:
        """Decode as Node's ``Buffer(s, 'base64')`` does: leniently, never raising.

        Both alphabets (``+/`` and ``-_``) are read, other characters are skipped,
        the first ``=`` ends the data and a lone last character carries no byte.

        >>> base64.decode('a25veA==')
        'knox'
        """
        data = _NOT_BASE64.sub("", s.split("=", 1)[0].translate(_URL_SAFE))
        if len(data) % 4 == 1:
            data = data[:-1]
        return _b64.b64decode(data + "=" * (-len(data) % 4)).decode("utf-8", "replace")


base64 = _Base64()
