"""Small answers read whole (knoxpy._transport.SmallResponse) read exactly as urllib3 reads them.

A loopback server (test/servers/scripted.py) answers every request with the bytes a test gives; each answer
is read once through knoxpy's own pools (the small-answer path where it applies) and once
through a plain urllib3 PoolManager given as the agent (urllib3's own path), and the two
must agree on status, reason, headers and body, and on what happens to the connection.
Each test runs over plain HTTP and over TLS (the server behind a test CA's certificate);
either way an answer is read ahead (one recv) and what is not small and whole is handed on.
"""
from __future__ import annotations

import select
import socket
import threading
from typing import Any, Iterator, List, Optional

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers.scripted import Scripted
from servers.tls import TestCA, TLSScripted
from strategies import header_names, header_values

from knoxpy._transport import SmallResponse, Transport, node_headers, release


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(str(tmp_path_factory.mktemp("ca")))


@pytest.fixture(scope="module", params=["http", "https"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _server(scheme: str, ca: TestCA) -> Scripted:
    return TLSScripted(ca) if scheme == "https" else Scripted()


def _transports(scheme: str, ca: TestCA, **kw: Any) -> List[Transport]:
    """knoxpy's own pools, and a plain urllib3 PoolManager as the agent."""
    if scheme == "http":
        return [Transport(**kw), Transport(agent=urllib3.PoolManager(), **kw)]
    return [Transport(ca=(ca.pem, "ca"), **kw),
            Transport(agent=urllib3.PoolManager(ca_certs=ca.pem), **kw)]


@pytest.fixture(scope="module")
def scripted(scheme: str, ca: TestCA) -> Iterator[Scripted]:
    with _server(scheme, ca) as srv:
        srv.scheme = scheme  # type: ignore[attr-defined]
        srv.transports = _transports(scheme, ca)  # type: ignore[attr-defined]
        yield srv


def _both(srv: Scripted, method: str = "GET") -> List[tuple]:
    out = []
    for transport in srv.transports:  # type: ignore[attr-defined]
        raw = transport.send(method, srv.scheme, "127.0.0.1", srv.port,  # type: ignore[attr-defined]
                             "/bkt/k", {"Host": f"127.0.0.1:{srv.port}"})
        body = raw.read(decode_content=False)
        out.append((type(raw), raw.status, raw.reason, node_headers(raw),
                    list(raw.headers.items()), body))
        release(raw)
    return out


NAME = header_names("content-length", "transfer-encoding", "connection")
VALUE = header_values()


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.sampled_from([200, 204, 206, 301, 403, 404, 500, 503]),
       reason=st.sampled_from(["OK", "Not Found", "", "Some Reason Here"]),
       headers=st.lists(st.tuples(NAME, VALUE), max_size=10),
       body=st.binary(max_size=3000))
def test_any_small_answer_reads_as_urllib3_reads_it(scripted: Scripted, status: int,
                                                   reason: str, headers: list,
                                                   body: bytes) -> None:
    if status == 204:
        body = b""
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    head += f"Content-Length: {len(body)}\r\n\r\n"
    scripted.answer = head.encode("latin-1") + body
    ours, theirs = _both(scripted)
    assert ours[0] is SmallResponse
    assert ours[1:] == theirs[1:]


def test_blanks_around_values_read_as_urllib3_reads_them(scripted: Scripted) -> None:
    scripted.answer = (b"HTTP/1.1 200 OK\r\nX-A:   two  spaces  \r\nX-B:\t\ttab\t\r\nX-C:\r\n"
                       b"x-a: again\r\nContent-Length: 0\r\n\r\n")
    ours, theirs = _both(scripted)
    assert ours[0] is SmallResponse and ours[1:] == theirs[1:]
    assert ours[3]["x-a"] == "two  spaces  , again"


@pytest.mark.parametrize("answer,method", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "GET"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"z" * 70000, "GET"),
    (b"HTTP/1.1 200 OK\r\nFolded: one\r\n two\r\nContent-Length: 2\r\n\r\nhi", "GET"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "GET"),
    # a bare CR, then a bare LF: as many of each as of lines, but no line of its own
    (b"HTTP/1.1 200 OK\r\nA: b\rc:\nD: e\r\nContent-Length: 2\r\n\r\nhi", "GET"),
])
def test_other_answers_are_left_to_http_client(scripted: Scripted, answer: bytes,
                                               method: str) -> None:
    scripted.answer = answer
    ours, theirs = _both(scripted, method)
    assert ours[0] is not SmallResponse
    assert ours[1:] == theirs[1:]


def test_an_answer_still_arriving_is_read_by_http_client(scripted: Scripted) -> None:
    scripted.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"q" * 2000
    scripted.pieces = 4
    try:
        ours, theirs = _both(scripted)
    finally:
        scripted.pieces = 1
    assert ours[1:] == theirs[1:] and ours[-1] == b"q" * 2000


def test_a_head_answer_has_no_body_whatever_its_length_says(scripted: Scripted) -> None:
    scripted.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nETag: \"x\"\r\n\r\n"
    ours, theirs = _both(scripted, "HEAD")
    assert ours[0] is SmallResponse and ours[1:] == theirs[1:] and ours[-1] == b""


@pytest.mark.parametrize("answer,reused", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi", True),
])
def test_the_connection_is_kept_only_when_the_server_keeps_it(answer: bytes, reused: bool,
                                                              scheme: str, ca: TestCA) -> None:
    srv = _server(scheme, ca)
    srv.answer = answer
    try:
        transport = _transports(scheme, ca)[0]
        for _ in range(3):
            raw = transport.send("GET", scheme, "127.0.0.1", srv.port, "/bkt/k",
                                 {"Host": "h"})
            assert isinstance(raw, SmallResponse) and raw.read() == b"hi"
            release(raw)
        assert srv.connections == (1 if reused else 3)
    finally:
        srv.close()


def test_an_idle_connection_the_server_closed_is_not_reused(scheme: str, ca: TestCA) -> None:
    """The pool's look at an idle connection before reuse (knoxpy._transport._dropped): one
    the server closed is opened again, and the request is sent once, on the new one."""
    srv = _server(scheme, ca)
    srv.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    srv.close_after = True
    try:
        transport = _transports(scheme, ca)[0]
        for n in (1, 2, 3):
            raw = transport.send("GET", scheme, "127.0.0.1", srv.port, "/bkt/k", {"Host": "h"})
            assert isinstance(raw, SmallResponse) and raw.read() == b"hi"
            release(raw)
            idle = transport._pool_for("127.0.0.1", srv.port, scheme).pool.queue[-1]
            assert idle is not None and idle.sock is not None  # pooled, as if kept alive
            # the server's close has arrived (no clock: wait for it, however long it takes)
            assert select.select([idle.sock], [], [], 30)[0]
            assert srv.connections == n and len(srv.requests) == n
    finally:
        srv.close()


def test_a_silent_server_times_out_on_the_small_answer_path() -> None:
    quiet = socket.create_server(("127.0.0.1", 0))
    accepted: List[Optional[socket.socket]] = []
    threading.Thread(target=lambda: accepted.append(quiet.accept()[0]), daemon=True).start()
    try:
        transport = Transport(timeout=(2, 0.3))
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            transport.send("GET", "http", "127.0.0.1", quiet.getsockname()[1], "/k",
                           {"Host": "h"})
    finally:
        quiet.close()
        for sock in accepted:
            if sock is not None:
                sock.close()


def test_a_connection_is_tracked_in_use_until_given_back_or_collected() -> None:
    # What a Ctrl-C cuts (knoxpy._transport._in_use): a taken connection is there, one
    # given back is not, and one dropped while in use leaves no entry once collected.
    import gc

    from knoxpy import _transport

    with Scripted() as srv:
        transport = Transport()
        pool = transport._pool_for("127.0.0.1", srv.port, "http")
        kept = pool._get_conn()
        dropped = pool._get_conn()
        assert {id(kept), id(dropped)} <= set(_transport._in_use)
        assert _transport._in_use[id(kept)]() is kept
        pool._put_conn(kept)
        assert id(kept) not in _transport._in_use
        key = id(dropped)
        dropped.close()
        pool._put_conn(None)  # as a failed exchange frees its place
        del dropped
        gc.collect()
        assert key not in _transport._in_use
