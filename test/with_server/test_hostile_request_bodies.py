"""Bodies that break their Content-Length (issue 11, item 5): refused, never a desynced connection.

knox's README warns that ``put(k, {'Content-Length': len(s)}).end(s)`` is wrong for a
non-ASCII ``s``; before this, knoxpy sent the whole UTF-8 body anyway: the server stored the
first ``len(s)`` bytes with 200 and read the rest as the start of the next request on that
connection (``ldGET /bkt/a.txt``). Now a body longer or shorter than its Content-Length, or a
Content-Length that is not a number of bytes, is a ``ValidationError`` naming both numbers:
before anything is sent when the whole body is known, else at once, with the connection
dropped. Each test checks what the server really received, and that the next request on the
client is parsed as sent.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Iterator

import pytest
import urllib3
from conftest import fault_client, moto_options

import knoxpy
from knoxpy import ValidationError

UTF8 = "héllo wörld"  # 11 characters, 13 bytes
METHODS = {"GET", "PUT", "HEAD", "DELETE", "POST"}


def assert_clean(srv: Any) -> None:
    """Every request the server parsed is one the client sent: nothing was read as a request
    that was really the rest of a body."""
    for r in srv.requests:
        assert r.method in METHODS and r.path.startswith("/bkt"), srv.requests


def assert_next_request_is_sound(client: Any, srv: Any) -> None:
    """A clean round trip after the failure, on whatever connection the pool gives."""
    res = client.putBuffer(b"after", "/after.txt").wait()
    assert res.statusCode == 200
    assert client.get("/after.txt").end().wait().read() == b"after"
    assert_clean(srv)


def stored(srv: Any, key: str) -> bool:
    bucket = srv.buckets.get("bkt")
    return bucket is not None and key in bucket.objects


@pytest.fixture(params=["own-pool", "agent"])
def client(request: pytest.FixtureRequest, srv: Any) -> Iterator[Any]:
    """knoxpy's own pool (the lean path, small requests run on the loop thread) and a
    caller's agent (urllib3's ``urlopen``)."""
    if request.param == "agent":
        with urllib3.PoolManager() as agent:
            yield fault_client(srv, agent=agent)
    else:
        yield fault_client(srv)


# -- the whole body in hand: refused before anything is sent ---------------------------------
WHOLE = [  # (Content-Length, body, fragment of the error)
    (len(UTF8), UTF8, r"Content-Length 11 but the body is 13 bytes \(strings are sent as "
                      r"UTF-8: use len\(s.encode\(\)\)\)"),
    (3, b"hello", "Content-Length 3 but the body is 5 bytes$"),
    (9, b"hello", "Content-Length 9 but the body is 5 bytes$"),
    (5, None, "Content-Length 5 but the body is 0 bytes"),
    (-1, b"", "Content-Length must be a whole number of bytes, 0 or more, not -1"),
    ("12abc", b"x", "not '12abc'"),
    ("", b"", "not ''"),
    (True, b"x", "not True"),
    (2.5, b"xy", "not 2.5"),
    (5.0, b"hello", "not 5.0"),  # str() would send "5.0", which no server takes
]


@pytest.mark.parametrize("length, body, message", WHOLE)
def test_a_whole_body_that_breaks_its_length_is_refused_before_sending(
        client: Any, srv: Any, length: Any, body: Any, message: str) -> None:
    req = client.put("/a.txt", {"Content-Length": length})
    with pytest.raises(ValidationError, match=message):
        req.end(body).wait()
    assert [r.method for r in srv.requests] == []  # nothing went out
    assert_next_request_is_sound(client, srv)


def test_the_error_reaches_knox_callbacks_after_the_call_returns(client: Any, srv: Any) -> None:
    got: list[Any] = []
    req = client.put("/a.txt", {"Content-Length": len(UTF8)})
    req.on("error", lambda err: got.append(err))
    req.end(UTF8)
    assert got == []  # no Zalgo: the error comes on a later turn of the loop
    knoxpy.run()
    assert len(got) == 1 and isinstance(got[0], ValidationError)


def test_a_length_given_as_digits_is_taken(client: Any, srv: Any) -> None:
    assert client.put("/f.txt", {"content-length": "5"}).end(b"hello").wait().statusCode == 200
    assert srv.buckets["bkt"].objects["f.txt"].data == b"hello"


def test_the_knox_readme_mistake_against_moto(moto_port: int, bucket: str) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket, style="path"))
    with pytest.raises(ValidationError, match="use len"):
        client.put("/hostile/readme.txt", {"Content-Length": len(UTF8)}).end(UTF8).wait()
    assert client.get("/hostile/readme.txt").end().wait().statusCode == 404  # nothing stored
    data = UTF8.encode()
    req = client.put("/hostile/readme.txt", {"Content-Length": len(data)})
    assert req.end(UTF8).wait().statusCode == 200
    assert client.get("/hostile/readme.txt").end().wait().read() == data


# -- written piece by piece: the excess is never sent, a short body fails at once -------------
def test_writes_past_the_length_fail_and_the_excess_is_never_sent(client: Any, srv: Any) -> None:
    req = client.put("/w.txt", {"Content-Length": 5})
    assert req.write("abc") is True
    assert req.write("déf") is False
    with pytest.raises(ValidationError, match=r"Content-Length 5 but the body is longer: "
                                              r"7 bytes or more \(strings are sent as UTF-8"):
        req.end().wait()
    assert req.write("more") is False  # a refused request takes nothing more
    assert not stored(srv, "w.txt")
    assert all(r.body_len <= 5 for r in srv.requests)
    assert_next_request_is_sound(client, srv)


def test_a_complete_written_body_then_more_is_not_stored(client: Any, srv: Any) -> None:
    req = client.put("/c.txt", {"Content-Length": 5})
    assert req.write(b"hello") is True  # whole: held until end() or the next write
    assert req.write(b"!") is False
    with pytest.raises(ValidationError, match="Content-Length 5 but the body is longer: 6 bytes"):
        req.wait()
    assert not stored(srv, "c.txt")
    assert_next_request_is_sound(client, srv)


def test_a_short_written_body_fails_at_end_not_at_the_read_timeout(srv: Any) -> None:
    client = fault_client(srv, timeout=(10, 600))
    req = client.put("/s.txt", {"Content-Length": 10})
    req.write(b"abc")
    with pytest.raises(ValidationError, match="Content-Length 10 but the body ended after 5 bytes"):
        req.end(b"de").wait(timeout=30)  # the read timeout is 600 s: this is the only way out
    assert not stored(srv, "s.txt")
    assert_next_request_is_sound(client, srv)


def test_a_bad_length_is_refused_at_the_first_write(client: Any, srv: Any) -> None:
    req = client.put("/b.txt", {"Content-Length": "five"})
    assert req.write(b"hello") is False
    with pytest.raises(ValidationError, match="not 'five'"):
        req.end().wait()
    assert srv.requests == []


# -- putStream, putFile: the source is cut where its Content-Length says ----------------------
def chunks(*pieces: bytes) -> Callable[[], Any]:
    return lambda: iter(pieces)


STREAMS = [  # (source, Content-Length, fragment)
    (chunks(b"abc", b"defgh"), 5, "Content-Length 5 but the body is longer: 8 bytes or more"),
    (chunks(b"abcde", b"", b"f"), 5, "longer: 6 bytes or more"),  # complete, then more
    (chunks(b"abc"), 5, "Content-Length 5 but the body ended after 3 bytes"),
    (lambda: io.BytesIO(b"x" * 300_000), 262_144, "longer: 300000 bytes or more"),
    (lambda: io.BytesIO(b"x" * 10), 300_000, "ended after 10 bytes"),
    (lambda: io.BytesIO(b"x"), -5, "0 or more, not -5"),
]


@pytest.mark.parametrize("source, length, message", STREAMS)
def test_put_stream_with_a_source_of_another_length_fails(
        client: Any, srv: Any, source: Callable[[], Any], length: int, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        client.putStream(source(), "/p.bin", {"Content-Length": length}).wait()
    assert not stored(srv, "p.bin")
    assert_next_request_is_sound(client, srv)


def test_put_stream_piped_from_a_response_of_another_length_fails(client: Any, srv: Any) -> None:
    client.putBuffer(b"0123456789", "/src.bin").wait()
    res = client.get("/src.bin").end().wait()
    with pytest.raises(ValidationError, match="Content-Length 4 but the body is longer"):
        client.putStream(res, "/dst.bin", {"Content-Length": 4}).wait()
    assert not stored(srv, "dst.bin")
    assert_next_request_is_sound(client, srv)


@pytest.mark.parametrize("length, message", [(3, "longer: 100 bytes or more"),
                                             (200, "ended after 100 bytes")])
def test_put_file_with_a_wrong_content_length_fails(client: Any, srv: Any, tmp_path: Any,
                                                    length: int, message: str) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"y" * 100)
    with pytest.raises(ValidationError, match=message):
        client.putFile(str(path), "/f.bin", {"Content-Length": length}).wait()
    assert not stored(srv, "f.bin")
    assert_next_request_is_sound(client, srv)
