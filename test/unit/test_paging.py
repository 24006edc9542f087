"""knoxpy._paging.PageGuard: the pure guard of every paginated loop (issue 11 item 10)."""
from __future__ import annotations

import pytest

from knoxpy import MalformedXML
from knoxpy._paging import MAX_EMPTY_PAGES, PageGuard


def test_a_token_seen_before_is_refused_however_long_the_cycle() -> None:
    guard = PageGuard("listing of bucket 'b'")
    for token in "ABC":
        guard.advance(("continuation-token", token), 1)
    with pytest.raises(MalformedXML, match="repeated continuation token 'B' after 4 pages"):
        guard.advance(("continuation-token", "B"), 1)


def test_markers_must_move_strictly_forward() -> None:
    guard = PageGuard("listing")
    guard.advance(("start-after", "m/a"), 1)
    guard.advance(("start-after", "m/b"), 1)
    for back in ("m/b", "m/a"):
        with pytest.raises(MalformedXML, match=f"start-after {back!r} is not after 'm/b'"):
            guard.advance(("start-after", back), 1)
    parts = PageGuard("ListParts", marker=0)
    with pytest.raises(MalformedXML, match="part-number-marker 0 is not after 0 after 1 page$"):
        parts.advance(("part-number-marker", 0), 0)


def test_empty_truncated_pages_are_allowed_only_so_many_in_a_row() -> None:
    guard = PageGuard("listing")
    n = 0
    for _ in range(3):  # a page with entries starts the count again
        for _ in range(MAX_EMPTY_PAGES):
            n += 1
            guard.advance(("continuation-token", str(n)), 0)
        n += 1
        guard.advance(("continuation-token", str(n)), 1)
    for _ in range(MAX_EMPTY_PAGES):
        n += 1
        guard.advance(("continuation-token", str(n)), 0)
    with pytest.raises(MalformedXML, match=f"{MAX_EMPTY_PAGES + 1} empty truncated pages"):
        guard.advance(("continuation-token", "last"), 0)
