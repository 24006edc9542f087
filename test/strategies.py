"""Hypothesis strategies shared by the tests of the wire: header names and values."""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# RFC 9110 token characters: what a header name may be made of
TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~"


def header_names(*excluded: str, max_size: int = 16) -> Any:
    """Header names (tokens), none of ``excluded`` (lower-case) whatever its case."""
    names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=max_size)
    return names.filter(lambda n: n.lower() not in excluded) if excluded else names


def header_values(max_size: int = 30) -> Any:
    """Latin-1 header values with no control characters (blanks included)."""
    return st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                          blacklist_characters="\x7f"), max_size=max_size)
