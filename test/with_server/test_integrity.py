"""Timeouts and integrity for knox's own calls (issue 5, items 2 and 3).

Nothing hangs: connect and read timeouts are on by default, and a stall fails with
``ETIMEDOUT``. Nothing is stored or delivered wrong: ``putBuffer`` carries a
Content-MD5 that the server checks, and a body that stops early is an error.
(``upload``/``download`` check more: see test_transfer.py.)
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any, List

import pytest
from conftest import fault_client
from servers.s3shaped import S3Server

import knoxpy
from knoxpy.errors import RequestError

make = fault_client


def test_timeouts_are_on_by_default() -> None:
    c = knoxpy.createClient(key="AKID", secret="s", bucket="bkt")
    assert (c._transport.timeout.connect_timeout, c._transport.timeout.read_timeout) == (10, 60)
    c = knoxpy.createClient(key="AKID", secret="s", bucket="bkt", timeout=(2, 5))
    assert (c._transport.timeout.connect_timeout, c._transport.timeout.read_timeout) == (2, 5)


def test_a_server_that_stalls_before_answering_times_out(srv: S3Server) -> None:
    c = make(srv, timeout=(2, 0.3), maxRetries=0)
    c.putBuffer(b"x", "/k").wait(10).resume()
    srv.inject("stall_before_headers", seconds=60, match="GET /bkt/k")  # stop() ends it
    with pytest.raises(RequestError) as err:
        c.get("/k").end().wait(10)
    assert err.value.code == "ETIMEDOUT"


def test_a_stall_is_retried_when_retries_are_on(srv: S3Server) -> None:
    c = make(srv, timeout=(2, 0.3))
    c.putBuffer(b"hello", "/k").wait(10).resume()
    srv.inject("stall_before_headers", seconds=60, match="GET /bkt/k")  # stop() ends it
    retries: List[Any] = []
    res = c.get("/k").on("retry", retries.append).end().wait(10)
    assert (res.statusCode, res.read()) == (200, b"hello")
    assert retries and "ETIMEDOUT" in retries[0]["reason"]


def test_a_body_that_stalls_midway_fails_with_etimedout(srv: S3Server) -> None:
    c = make(srv, timeout=(2, 0.3))
    data = b"z" * 500_000
    c.putBuffer(data, "/big").wait(10).resume()
    srv.inject("stall_mid_body", after=200_000, seconds=60, match="GET /bkt/big")
    events: List[Any] = []

    def on_response(res: Any) -> None:
        res.on("data", lambda chunk: None)
        res.on("end", lambda: events.append("end"))
        res.on("error", events.append)

    c.get("/big").on("response", on_response).end()
    knoxpy.run(10)
    assert len(events) == 1 and isinstance(events[0], RequestError)
    assert events[0].code == "ETIMEDOUT"


def test_put_buffer_carries_a_content_md5_the_server_checks(srv: S3Server) -> None:
    c = make(srv)
    data = b"knoxpy integrity " * 100
    assert c.putBuffer(data, "/k").wait(10).statusCode == 200
    sent = srv.requests[-1].headers["content-md5"]
    assert sent == base64.b64encode(hashlib.md5(data).digest()).decode()


def test_a_body_that_differs_from_its_content_md5_is_refused(srv: S3Server) -> None:
    """moto does not check Content-MD5; the fault server does, as S3 does."""
    c = make(srv)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    res = c.putBuffer(b"data", "/k", {"Content-MD5": wrong}).wait(10)
    assert res.statusCode == 400 and b"BadDigest" in res.read()
    assert c.headFile("/k").wait(10).statusCode == 404


def test_an_abandoned_body_gives_its_connection_back_with_a_warning(
    srv: S3Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """CONTRACT §3: a response nobody reads must not hold its socket forever."""
    import time

    from knoxpy import _streams

    monkeypatch.setattr(_streams, "IDLE_BODY_TIMEOUT", 0.3)
    c = make(srv)
    c.putBuffer(b"q" * 1_000_000, "/big").wait(10).resume()
    res = c.get("/big").end().wait(10)  # never read, never resume()d
    assert res.statusCode == 200 and len(srv._conns) == 1
    deadline = time.monotonic() + 30
    while srv._conns and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not srv._conns, "the connection was not closed"
    assert "GET http://localhost" in caplog.text and "/bkt/big" in caplog.text
    assert "not read or resume()d" in caplog.text
