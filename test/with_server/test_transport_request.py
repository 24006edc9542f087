"""knoxpy's lean request head puts on the wire exactly what urllib3's own path puts there.

A small loopback server records the bytes of each request it receives; the same request
goes once through knoxpy's connection class and once through urllib3's plain one.
"""
from __future__ import annotations

import socket
import threading
from typing import Iterator, List, Optional

import pytest
import urllib3.connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knoxpy._transport import _LeanHTTPConnection


class Recorder:
    """Answers every request with an empty 200 and keeps its raw bytes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: List[bytes] = []
        self.packets: List[int] = []  # recv() calls that made up each request
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        data, recvs = b"", 0
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    got = conn.recv(65536)
                    if not got:
                        return
                    data, recvs = data + got, recvs + 1
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    got = conn.recv(65536)
                    if not got:
                        return
                    rest, recvs = rest + got, recvs + 1
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                self.packets.append(recvs)
                data, recvs = rest[length:], 0
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.close()


def _wire(rec: Recorder, cls: type, method: str, headers: dict, body: Optional[bytes]) -> bytes:
    conn = cls("127.0.0.1", rec.port)
    try:
        conn.request(method, "/bkt/key", body=body, headers=headers)
        res = conn.getresponse()
        assert res.status == 200
        res.read()
    finally:
        conn.close()
    return rec.requests[-1]


NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~",
               min_size=1, max_size=16).filter(
    lambda n: n.lower() not in ("content-length", "transfer-encoding", "host"))
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                       blacklist_characters="\x7f"), max_size=30)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "PUT", "HEAD", "DELETE", "POST"]),
       headers=st.dictionaries(NAME, VALUE, max_size=8),
       body=st.one_of(st.none(), st.binary(max_size=2048)))
def test_any_request_goes_out_byte_for_byte_as_urllib3_sends_it(
        recorder: Recorder, method: str, headers: dict, body: Optional[bytes]) -> None:
    headers = {"Host": "bkt.localhost", **headers}
    ours = _wire(recorder, _LeanHTTPConnection, method, headers, body)
    theirs = _wire(recorder, urllib3.connection.HTTPConnection, method, headers, body)
    assert ours == theirs


def test_a_small_body_travels_with_its_head(recorder: Recorder) -> None:
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
        recorder: Recorder, headers: dict) -> None:
    before = len(recorder.requests)
    for cls in (_LeanHTTPConnection, urllib3.connection.HTTPConnection):
        conn = cls("127.0.0.1", recorder.port)
        with pytest.raises(ValueError):
            conn.request("PUT", "/bkt/key", body=b"x", headers={"Host": "h", **headers})
        conn.close()
    assert len(recorder.requests) == before
