"""The loop thread waits for many small requests' answers at once (knoxpy._loop).

When the thread that owns a loop waits (``run()``, ``.wait()``), it takes the small requests
it created and runs their I/O itself: each is signed and sent, and then one ``poll()``
waits for all their answers, as Node's one thread does. These tests hold it to what the
contract asks of any I/O: concurrent, bounded by its timeouts, never blocking what workers
post, and carried on by workers when the loop stops running.
"""
from __future__ import annotations

import threading
import time
from typing import Any, List

import pytest
from conftest import fault_client

import knoxpy
from knoxpy import _loop
from knoxpy.errors import RequestError


def test_answers_are_awaited_together_on_the_loop_thread(srv: Any) -> None:
    c = fault_client(srv)
    c.putBuffer(b"hello", "/k").wait(10)
    srv.inject("stall_before_headers", count=8, seconds=0.4)
    seen: List[Any] = []

    def on_response(err: Any, res: Any) -> None:
        # while the first answer is delivered, the others wait in this thread's poll set
        seen.append((threading.current_thread(), len(_loop.get_loop()._waits)))
        res.resume()

    t0 = time.monotonic()
    for _ in range(8):
        c.getFile("/k", on_response)
    knoxpy.run(10)
    elapsed = time.monotonic() - t0
    assert len(seen) == 8 and all(t is threading.current_thread() for t, _ in seen)
    assert elapsed < 1.5, f"the answers were awaited one after another ({elapsed:.2f}s)"
    assert max(n for _, n in seen) >= 1, "no answer was awaited by the loop thread"


def test_a_callback_that_starts_the_next_request_keeps_them_in_flight(srv: Any) -> None:
    """Node's pattern: each answer's callback starts the next request, N at a time."""
    c = fault_client(srv)
    c.putBuffer(b"x" * 1024, "/k").wait(10)
    done: List[int] = []

    def start() -> None:
        c.getFile("/k", on_response)

    def on_response(err: Any, res: Any) -> None:
        assert err is None
        got = bytearray()
        res.on("data", got.extend)
        res.on("end", lambda: finished(bytes(got)))

    def finished(body: bytes) -> None:
        assert body == b"x" * 1024
        done.append(1)
        if len(done) <= 200 - 8:
            start()

    for _ in range(8):
        start()
    knoxpy.run(30)
    assert len(done) == 200


def test_an_answer_that_never_comes_times_out_on_time(srv: Any) -> None:
    c = fault_client(srv, timeout=(2, 0.4), maxRetries=0)
    c.putBuffer(b"hello", "/k").wait(10)
    srv.inject("stall_before_headers", count=3, seconds=3)
    errors: List[Any] = []
    t0 = time.monotonic()
    for _ in range(3):
        c.getFile("/k", lambda err, res: errors.append((err, time.monotonic() - t0)))
    knoxpy.run(10)
    assert [type(e) for e, _ in errors] == [RequestError] * 3
    assert all(e.code == "ETIMEDOUT" for e, _ in errors)
    assert all(0.35 < t < 1.5 for _, t in errors), errors


def test_the_only_request_pending_times_out_on_time_too(srv: Any) -> None:
    """Alone on its loop, a request's read waits without poll(): its timeout still holds."""
    c = fault_client(srv, timeout=(2, 0.4), maxRetries=0)
    c.putBuffer(b"hello", "/k").wait(10)
    srv.inject("stall_before_headers", count=1, seconds=3)
    t0 = time.monotonic()
    with pytest.raises(RequestError) as info:
        c.get("/k").end().wait(10)
    assert info.value.code == "ETIMEDOUT"
    assert 0.35 < time.monotonic() - t0 < 1.5


def test_what_a_worker_posts_is_delivered_while_the_loop_polls(srv: Any, tmp_path: Any) -> None:
    c = fault_client(srv)
    c.putBuffer(b"hello", "/slow").wait(10)
    srv.inject("stall_before_headers", count=1, seconds=2, match="GET /bkt/slow")
    path = tmp_path / "f.bin"
    path.write_bytes(b"y" * 300_000)  # a file: streamed by a worker, not stolen
    slow = c.get("/slow").end()
    when: List[float] = []
    t0 = time.monotonic()
    c.putFile(str(path), "/f", lambda err, res: when.append(time.monotonic() - t0))
    slow.wait(10)  # the loop polls for the slow answer while the worker uploads
    assert when and when[0] < 1.5, f"the upload's answer waited for the poll ({when})"


def test_answers_still_pending_when_run_stops_are_read_by_workers(srv: Any) -> None:
    c = fault_client(srv)
    c.putBuffer(b"hello", "/k").wait(10)
    srv.inject("stall_before_headers", count=1, seconds=0.5)
    req = c.get("/k").end()
    with pytest.raises(TimeoutError):
        knoxpy.run(0.1)  # the loop took the request and polled for it, then gave up
    assert not _loop.get_loop()._waits
    time.sleep(1.0)  # the caller is busy; a worker reads the answer meanwhile
    t0 = time.monotonic()
    res = req.wait(5)
    assert time.monotonic() - t0 < 0.3
    assert res.read() == b"hello"


def test_a_retry_of_a_stolen_request_sleeps_off_the_loop(srv: Any) -> None:
    c = fault_client(srv)
    c.putBuffer(b"hello", "/k").wait(10)
    srv.inject("status", count=1, status=503, code="SlowDown", headers={"Retry-After": "0.3"})
    ticks: List[float] = []
    req = c.get("/k").end()
    t0 = time.monotonic()

    def tick() -> None:  # the loop keeps running callbacks while the request sleeps
        ticks.append(time.monotonic() - t0)
        if len(ticks) < 5:
            _loop.call_later(0.02, lambda: req._loop.call_soon(tick))
        else:
            req._loop.unref()

    req._loop.ref()
    req._loop.call_soon(tick)
    assert req.wait(10).read() == b"hello"
    knoxpy.run(5)
    assert len(ticks) == 5 and ticks[-1] < 0.3, ticks


def test_without_poll_workers_read_the_answers_and_they_still_overlap(
        srv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where select.poll is missing (Windows), a stolen request's answer goes to a worker."""
    monkeypatch.setattr(_loop, "_POLL", None)
    c = fault_client(srv)
    c.putBuffer(b"hello", "/k").wait(10)
    srv.inject("stall_before_headers", count=8, seconds=0.4)
    got: List[Any] = []
    t0 = time.monotonic()
    for _ in range(8):
        c.getFile("/k", lambda err, res: got.append(err or res.read()))
    knoxpy.run(10)
    assert got == [b"hello"] * 8
    assert time.monotonic() - t0 < 1.5
    assert not _loop.get_loop()._waits
