"""knoxpy's lean response-head parser reads exactly what http.client's email parser reads."""
from __future__ import annotations

import http.client
import io
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import header_names, header_values

from knoxpy._transport import _LeanMessage, _read_head, parse_head

TOKEN = header_names(max_size=20)
VALUE = header_values(max_size=40)


def _both(block: bytes) -> tuple:
    ours = parse_head(_read_head(io.BytesIO(block)))
    theirs = http.client.parse_headers(io.BytesIO(block))
    return ours, theirs


def _same(block: bytes, names: List[str]) -> http.client.HTTPMessage:
    ours, theirs = _both(block)
    assert ours.items() == theirs.items()
    for name in names + ["missing", "Content-Length", "TRANSFER-ENCODING"]:
        assert ours.get(name) == theirs.get(name)
        assert ours.get_all(name) == theirs.get_all(name)
    return ours


@given(st.lists(st.tuples(TOKEN, VALUE), max_size=12), st.sampled_from([b"\r\n", b"\n"]))
def test_any_plain_head_reads_the_same(headers: list, eol: bytes) -> None:
    block = b"".join(f"{n}: {v}".encode("latin-1") + eol for n, v in headers) + eol
    _same(block, [n for n, _ in headers])


def test_an_s3_head_takes_the_lean_path() -> None:
    block = (b"x-amz-request-id: 4442587FB7D0A2F9\r\nETag: \"5d41402abc4b2a76b9719d911017c592\"\r\n"
             b"Content-Length: 1024\r\nx-amz-meta-Note:  two  spaces \r\nx-amz-meta-a: 1\r\n"
             b"X-Amz-Meta-A: 2\r\nEmpty:\r\n\r\n")
    msg = _same(block, ["etag", "x-amz-meta-a", "x-amz-meta-note", "empty"])
    assert isinstance(msg, _LeanMessage)
    assert msg.get_all("x-amz-meta-a") == ["1", "2"]


@pytest.mark.parametrize("block", [
    b"Folded: one\r\n two\r\n\r\n",          # obs-fold continuation line
    b"no colon here\r\nA: b\r\n\r\n",        # a line without a colon
    b"Name : spaced\r\n\r\n",                # whitespace before the colon
    b":no name\r\n\r\n",
    b"A: b\rc:\r\nD: e\r\n\r\n",          # a bare CR, which ends a line there
    b"A: b\r\r\nD: e\r\n\r\n",
    b"A: b\r\n",                              # the head ends at EOF, no blank line
])
def test_unusual_heads_go_to_the_email_parser(block: bytes) -> None:
    ours, theirs = _both(block)
    assert not isinstance(ours, _LeanMessage) or b"\r\n\r\n" not in block
    assert ours.items() == theirs.items()


def test_limits_are_http_clients() -> None:
    with pytest.raises(http.client.LineTooLong):
        _read_head(io.BytesIO(b"A: " + b"x" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        _read_head(io.BytesIO(b"A: b\r\n" * 101 + b"\r\n"))
