"""knoxpy's lean response-head parser reads exactly what http.client's email parser reads."""
from __future__ import annotations

import http.client
import io
from typing import List, Optional

import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from strategies import header_names, header_values

from knoxpy._transport import (
    _head_lines,
    _LeanMessage,
    _read_head,
    _small_answer,
    _small_head,
    node_headers,
    parse_head,
)

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


# -- the small-answer head (knoxpy._transport._small_head) against http.client's parse ------
class _Bytes:
    """What http.client's response reads an answer from: ``makefile`` over fixed bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def _http_client(answer: bytes, method: str) -> http.client.HTTPResponse:
    res = http.client.HTTPResponse(_Bytes(answer), method=method)  # type: ignore[arg-type]
    res.begin()
    return res


# Pieces that put a head off the lean path: blanks, a colon, bare CR and LF, a fold, Latin-1
_HOSTILE = st.sampled_from(["", "", "", " ", "\t", ":", "\r", "\n", "\r\n ", "\xe9", "\x00"])


def _small_head_as_http_client(answer: bytes, method: str) -> None:
    """``_small_head`` refuses the answer, or reads it exactly as http.client does."""
    head = _small_head(answer, method)
    if head is None:
        return
    ours, will_close = _small_answer(answer[:head[1]], head)
    theirs = _http_client(answer, method)
    assert (ours.status, ours.reason, ours.version) == (theirs.status, theirs.reason,
                                                       theirs.version)
    assert _head_lines(head[5]) == theirs.msg.items()
    assert list(ours.headers.items()) == list(urllib3.HTTPHeaderDict(theirs.msg.items()).items())
    joined: dict = {}
    for name, value in theirs.msg.items():  # Node's res.headers: repeated values joined
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    assert node_headers(ours) == joined
    assert will_close == theirs.will_close
    assert ours.read() == theirs.read()


@given(st.sampled_from([200, 204, 206, 304, 404, 500]),
       st.sampled_from(["OK", "", "Not Found", " Spaced "]),
       st.lists(st.tuples(TOKEN, VALUE), max_size=12),
       st.sampled_from(["GET", "HEAD", "PUT"]),
       st.binary(max_size=64))
def test_a_plain_small_answer_takes_the_lean_path_and_reads_as_http_client(
        status: int, reason: str, headers: list, method: str, body: bytes) -> None:
    headers = [(n, v) for n, v in headers
               if n.lower() not in ("content-length", "transfer-encoding")]
    headers.append(("Content-Length", str(len(body))))
    answer = (f"HTTP/1.1 {status} {reason}\r\n".encode()
              + b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in headers)
              + b"\r\n" + body)
    if status in (204, 304) or method == "HEAD":
        answer = answer[:len(answer) - len(body)]
    assert _small_head(answer, method) is not None
    _small_head_as_http_client(answer, method)


@given(st.lists(st.tuples(st.tuples(_HOSTILE, TOKEN, _HOSTILE),
                          st.tuples(_HOSTILE, VALUE, _HOSTILE), _HOSTILE), max_size=8),
       st.sampled_from(["GET", "HEAD"]))
def test_any_small_answer_head_is_refused_or_read_as_http_client(lines: list, method: str
                                                                 ) -> None:
    head = b"".join(f"{''.join(name)}:{''.join(value)}{tail}\r\n".encode("latin-1")
                    for name, value, tail in lines)
    answer = b"HTTP/1.1 200 OK\r\n" + head + b"Content-Length: 2\r\n\r\nok"
    _small_head_as_http_client(answer, method)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nFolded: one\r\n two\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nName : spaced\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n:no name\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nA: b\rc: d\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nA: b\nc: d\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nA: b\r\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nN\xe9: v\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\n\r\n",                               # no length: read to the end
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * 101 + b"Content-Length: 0\r\n\r\n",
])
def test_unusual_answer_heads_are_left_to_http_client(answer: bytes) -> None:
    assert _small_head(answer, "GET") is None


def test_repeated_names_and_blanks_read_as_http_client() -> None:
    answer = (b"HTTP/1.1 200 OK\r\nx-amz-meta-a: 1\r\nX-Amz-Meta-A:\t 2 \r\nEmpty:\r\n"
              b"Content-Length: 2\r\n\r\nok")
    head = _small_head(answer, "GET")
    assert head is not None
    assert node_headers(_small_answer(answer, head)[0]) == {
        "x-amz-meta-a": "1, 2 ", "empty": "", "content-length": "2"}
    _small_head_as_http_client(answer, "GET")


@pytest.mark.parametrize("connection, minor, closes", [
    (None, "1", False), (None, "0", True), ("close", "1", True), ("keep-alive", "0", False),
    ("Keep-Alive, Upgrade", "1", False), ("upgrade,CLOSE", "1", True)])
def test_the_connection_header_says_whether_the_server_closes(
        connection: Optional[str], minor: str, closes: bool) -> None:
    said = b"" if connection is None else f"Connection: {connection}\r\n".encode()
    answer = f"HTTP/1.{minor} 200 OK\r\n".encode() + said + b"Content-Length: 0\r\n\r\n"
    head = _small_head(answer, "GET")
    assert head is not None
    assert _small_answer(answer, head)[1] is closes
    _small_head_as_http_client(answer, "GET")
