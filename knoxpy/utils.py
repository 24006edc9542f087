"""knox's utils: ``merge`` and ``base64``, with knox's semantics."""
from __future__ import annotations

import base64 as _b64
from typing import Any, Dict, Mapping

__all__ = ["base64", "merge"]


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
        """>>> base64.encode('knox')
        'a25veA=='
        """
        return _b64.b64encode(s.encode("utf-8")).decode("ascii")

    @staticmethod
    def decode(s: str) -> str:
        """>>> base64.decode('a25veA==')
        'knox'
        """
        return _b64.b64decode(s.encode("ascii") + b"===").decode("utf-8", "replace")


base64 = _Base64()
