"""The one guard every paginated listing goes through, so that no listing runs forever: pure.

A hostile or broken server can keep a listing going for ever: continuation tokens that
cycle (A, B, A...), a marker that does not move forward, or truncated pages with nothing
on them. :class:`PageGuard` follows one listing's pages and refuses each of these with
:class:`knoxpy.MalformedXML`, naming the listing and how far it got.
"""
from __future__ import annotations

from typing import Any, Optional, Set, Tuple

from ._xml import MalformedXML

__all__ = ["MAX_EMPTY_PAGES", "PageGuard"]

# S3 may answer a truncated page with no keys now and then (deleted keys, a slow shard),
# never a hundred in a row.
MAX_EMPTY_PAGES = 100


class PageGuard:
    """Checks where each page of one listing says the next one starts.

    ``advance((name, value), entries)`` after each truncated page, with the query
    parameter that asks for the next page and how many entries the page had:

    - ``continuation-token`` and ``version-marker`` (a version listing's key and version
      id markers together) are opaque: each must not have been seen before in this listing;
    - any other name is a marker (a key for ``start-after``/``marker``, a number for
      ``part-number-marker``): it must be strictly after the previous marker;
    - at most :data:`MAX_EMPTY_PAGES` truncated pages in a row may be empty.

    >>> guard = PageGuard("listing of bucket b")
    >>> guard.advance(("continuation-token", "A"), 1000)
    >>> guard.advance(("continuation-token", "B"), 1000)
    >>> guard.advance(("continuation-token", "A"), 1000)
    Traceback (most recent call last):
    ...
    knoxpy._xml.MalformedXML: listing of bucket b repeated continuation token 'A' after 3 pages
    """

    def __init__(self, what: str, marker: Optional[Any] = None) -> None:
        self.what = what  # the listing, as error messages name it
        self.pages = 0
        self._empty = 0
        self._tokens: Set[str] = set()
        self._marker = marker  # the first page's, when the listing has one

    def may_follow(self, nxt: Tuple[str, Any]) -> bool:
        """Whether the page after the one being read may be asked for before that one is
        checked: False where :meth:`advance` would refuse it whatever that page holds
        (a token seen before, a marker that goes back, the empty pages used up).

        >>> guard = PageGuard("listing")
        >>> guard.advance(("continuation-token", "A"), 0)
        >>> [guard.may_follow(("continuation-token", t)) for t in "AB"]
        [False, True]
        """
        name, value = nxt
        if self._empty >= MAX_EMPTY_PAGES:
            return False
        if name in ("continuation-token", "version-marker"):
            return value not in self._tokens
        return self._marker is None or bool(value > self._marker)

    def advance(self, nxt: Tuple[str, Any], entries: int) -> None:
        """Accept the start of the next page, or raise :class:`MalformedXML` saying why not."""
        self.pages += 1
        name, value = nxt
        after = f"after {self.pages} page{'s' if self.pages != 1 else ''}"
        if name in ("continuation-token", "version-marker"):
            if value in self._tokens:
                raise MalformedXML(f"{self.what} repeated continuation token {value!r} {after}")
            self._tokens.add(value)
        else:
            if self._marker is not None and not value > self._marker:
                raise MalformedXML(f"{self.what} did not advance: {name} {value!r} is not "
                                   f"after {self._marker!r} {after}")
            self._marker = value
        self._empty = 0 if entries else self._empty + 1
        if self._empty > MAX_EMPTY_PAGES:
            raise MalformedXML(f"{self.what} answered {self._empty} empty truncated pages in "
                               f"a row {after}")
