"""knoxpy's lean request head puts on the wire exactly what urllib3's own path puts there.

A loopback server (test/servers/scripted.py) records the bytes of each request; the same request
goes once through knoxpy's connection class and once through urllib3's plain one.
"""
from __future__ import annotations

import http.client
import socket
import threading
from typing import Iterator, Optional

import pytest
import urllib3.connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers.scripted import Scripted
from strategies import header_names, header_values

from knoxpy._transport import _LeanHTTPConnection, _send_all


@pytest.fixture(scope="module")
def recorder() -> Iterator[Scripted]:
    with Scripted() as rec:
        yield rec


def _wire(rec: Scripted, cls: type, method: str, headers: dict, body: Optional[bytes]) -> bytes:
    conn = cls("127.0.0.1", rec.port)
    try:
        conn.request(method, "/bkt/key", body=body, headers=headers)
        res = conn.getresponse()
        assert res.status == 200
        res.read()
    finally:
        conn.close()
    return rec.requests[-1]


NAME = header_names("content-length", "transfer-encoding", "host")
VALUE = header_values()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "PUT", "HEAD", "DELETE", "POST"]),
       headers=st.dictionaries(NAME, VALUE, max_size=8),
       body=st.one_of(st.none(), st.binary(max_size=2048)))
def test_any_request_goes_out_byte_for_byte_as_urllib3_sends_it(
        recorder: Scripted, method: str, headers: dict, body: Optional[bytes]) -> None:
    headers = {"Host": "bkt.localhost", **headers}
    ours = _wire(recorder, _LeanHTTPConnection, method, headers, body)
    theirs = _wire(recorder, urllib3.connection.HTTPConnection, method, headers, body)
    assert ours == theirs


def test_a_small_body_travels_with_its_head(recorder: Scripted) -> None:
    headers = {"Host": "bkt.localhost", "Content-Type": "text/plain"}
    _wire(recorder, _LeanHTTPConnection, "PUT", headers, b"x" * 1024)
    assert recorder.packets[-1] == 1  # one sendall: the server saw it in one read


@pytest.mark.parametrize("headers", [
    {"x-amz-meta-note": "a\r\nx-amz-acl: public-read"},
    {"Content-Type": "text/plain\nX-Evil: 1"},
    {"x-amz-meta-\r\nevil": "v"},
    {"": "no name"},
])
def test_a_header_that_would_add_a_line_is_refused_as_urllib3_refuses_it(
        recorder: Scripted, headers: dict) -> None:
    before = len(recorder.requests)
    for cls in (_LeanHTTPConnection, urllib3.connection.HTTPConnection):
        conn = cls("127.0.0.1", recorder.port)
        with pytest.raises(ValueError):
            conn.request("PUT", "/bkt/key", body=b"x", headers={"Host": "h", **headers})
        conn.close()
    assert len(recorder.requests) == before


@pytest.mark.parametrize("method,target", [
    ("GET\r\nX-Evil: 1", "/bkt/key"),
    ("G T", "/bkt/key"),
    ("GET", "/bkt/key HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /x"),
    ("GET", "/bkt/a key"),
    ("GET", "/bkt/k\u00e9y"),
])
def test_a_request_line_http_client_refuses_is_refused_the_same(
        recorder: Scripted, method: str, target: str) -> None:
    """The one-sendall request line takes only what http.client's checks pass; anything
    else goes through http.client, which refuses it (and sends nothing)."""
    before = len(recorder.requests)
    refusals = []
    for cls in (_LeanHTTPConnection, urllib3.connection.HTTPConnection):
        conn = cls("127.0.0.1", recorder.port)
        with pytest.raises((ValueError, UnicodeError, http.client.InvalidURL)) as caught:
            conn.request(method, target, headers={"Host": "h"})
        refusals.append(caught.type)
        conn.close()
    assert refusals[0] is refusals[1]
    assert len(recorder.requests) == before


def test_a_request_larger_than_the_send_buffer_goes_out_whole() -> None:
    """_send_all writes what fits at once and leaves the rest to sendall (under the
    socket's timeout): every byte arrives, in order."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ours.settimeout(30)
    data = bytes(range(256)) * 1024  # 256 KiB: far past the buffer
    got = bytearray()

    def read() -> None:
        while len(got) < len(data):
            chunk = theirs.recv(65536)
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        _send_all(ours, data)
        reader.join(30)
        assert bytes(got) == data
    finally:
        ours.close()
        theirs.close()
