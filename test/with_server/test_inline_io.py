"""The loop thread waits for many small requests' answers at once (knoxpy._loop).

When the thread that owns a loop waits (``run()``, ``.wait()``), it takes the small requests
it created and runs their I/O itself: each is signed and sent, and then one ``poll()``
waits for all their answers, as Node's one thread does. These tests hold it to what the
contract asks of any I/O: concurrent, bounded by its timeouts, never blocking what workers
post, and carried on by workers when the loop stops running.

No test here reads a clock for an upper bound (the suite runs on loaded 2-core boxes): the
fault server's ``barrier`` proves requests in flight at once (it answers none until all have
arrived), its ``gate`` orders an answer after a callback, and the loop's own state shows who
awaits what. Timeouts (``HANG``) are hang guards only.
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

HANG = 30  # seconds: the fault server's barriers and gates give up after this long


class _NoTaskIsOverdue(float):
    """``KICK_SECONDS`` as the kicker reads it: it still ticks every 2 ms (``time.sleep``
    takes the float), but no waiting task is ever old enough to go to a worker. (A large
    number instead would be read into the kicker's tick too, and put it to sleep for that
    long, after the test.)"""

    def __le__(self, age: object) -> bool:  # ``age >= KICK_SECONDS`` asks this first
        return False


@pytest.fixture
def loop_takes_its_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the I/O a loop thread runs itself. A small request that its
    caller has not come to take within 2 ms goes to a worker (the kicker), which a busy box
    can make happen to any caller: put that hand-off off, as if every caller waited at once."""
    monkeypatch.setattr(_loop._POOL, "KICK_SECONDS", _NoTaskIsOverdue(_loop._Pool.KICK_SECONDS))


def _wait_until(condition: Any) -> bool:
    """Poll ``condition`` from this (busy) thread, without running its loop."""
    deadline = time.monotonic() + HANG
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_answers_are_awaited_together_on_the_loop_thread(
        srv: Any, loop_takes_its_requests: None) -> None:
    c = fault_client(srv)
    c.putBuffer(b"hello", "/k").wait(HANG)
    # Eight pooled connections first: a request that must make one connects on a worker
    # (so that handshakes overlap), and this test is about answers the loop awaits.
    srv.inject("barrier", count=8, match="HEAD /bkt/k")
    warm = [c.head("/k").end() for _ in range(8)]
    assert [r.wait(HANG).statusCode for r in warm] == [200] * 8
    # None is answered until all eight are at the server (sent together, not one after
    # another); then seven are held back and let go one per callback, so each callback
    # shows how many answers the loop thread still awaits in its poll set.
    srv.inject("barrier", count=8, match="GET /bkt/k")
    srv.inject("gate", count=7, match="GET /bkt/k", name="answers")
    seen: List[Any] = []

    def on_response(err: Any, res: Any) -> None:
        seen.append((threading.current_thread(), len(_loop.get_loop()._waits),
                     err or res.read()))
        srv.release("answers", 1)

    for _ in range(8):
        c.getFile("/k", on_response)
    knoxpy.run(2 * HANG)
    assert [body for _, _, body in seen] == [b"hello"] * 8
    assert all(t is threading.current_thread() for t, _, _ in seen)
    assert [n for _, n, _ in seen] == [7, 6, 5, 4, 3, 2, 1, 0], "not awaited by the loop thread"


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


def test_an_answer_that_never_comes_times_out_on_time(
        srv: Any, loop_takes_its_requests: None) -> None:
    """The server holds the three answers back (for ``HANG`` seconds, then answers 400):
    only each request's own read timeout, kept by the loop's poll, can end it with
    ETIMEDOUT, and not before those 0.4 s (a lower bound: a busy box is never faster)."""
    c = fault_client(srv, timeout=(2 * HANG, 0.4), maxRetries=0)
    c.putBuffer(b"hello", "/k").wait(HANG)
    srv.inject("gate", count=3, match="GET /bkt/k", name="answers")
    errors: List[Any] = []
    t0 = time.monotonic()
    for _ in range(3):
        c.getFile("/k", lambda err, res: errors.append((err or res.read(), time.monotonic() - t0)))
    knoxpy.run(2 * HANG)
    srv.release("answers")
    assert [type(e) for e, _ in errors] == [RequestError] * 3, errors
    assert all(e.code == "ETIMEDOUT" for e, _ in errors)
    assert all(t > 0.35 for _, t in errors), errors


def test_the_only_request_pending_times_out_on_time_too(
        srv: Any, loop_takes_its_requests: None) -> None:
    """Alone on its loop, a request's read waits without poll(): its timeout still holds."""
    c = fault_client(srv, timeout=(2 * HANG, 0.4), maxRetries=0)
    c.putBuffer(b"hello", "/k").wait(HANG)
    srv.inject("gate", count=1, match="GET /bkt/k", name="answer")
    t0 = time.monotonic()
    with pytest.raises(RequestError) as info:
        c.get("/k").end().wait(2 * HANG)
    assert time.monotonic() - t0 > 0.35  # its read timeout, not sooner
    srv.release("answer")
    assert info.value.code == "ETIMEDOUT"


def test_what_a_worker_posts_is_delivered_while_the_loop_polls(
        srv: Any, tmp_path: Any, loop_takes_its_requests: None) -> None:
    """The server answers the upload only once the slow GET is at the server (the loop has
    sent it and polls for it), and the slow GET only once the upload's callback has run:
    only a loop whose poll a worker's post ends gets there (else the gate answers 400)."""
    c = fault_client(srv)
    c.putBuffer(b"hello", "/slow").wait(HANG)
    srv.inject("barrier", count=2, match=lambda r: (r.method, r.key) in {("GET", "slow"),
                                                                         ("PUT", "f")})
    srv.inject("gate", count=1, match="GET /bkt/slow", name="slow")
    path = tmp_path / "f.bin"
    path.write_bytes(b"y" * 300_000)  # a file: streamed by a worker, not stolen
    slow = c.get("/slow").end()
    uploaded: List[Any] = []

    def on_upload(err: Any, res: Any) -> None:
        uploaded.append((err, res and res.statusCode, len(_loop.get_loop()._waits)))
        srv.release("slow")

    c.putFile(str(path), "/f", on_upload)
    res = slow.wait(2 * HANG)  # the loop polls for the slow answer while the worker uploads
    body = res.read()
    assert uploaded == [(None, 200, 1)], (
        f"the upload's answer was not delivered during the poll: {uploaded}, {body[:300]!r}")
    assert body == b"hello"


def test_answers_still_pending_when_run_stops_are_read_by_workers(
        srv: Any, loop_takes_its_requests: None) -> None:
    c = fault_client(srv)
    c.putBuffer(b"hello", "/k").wait(HANG)
    srv.inject("gate", count=1, match="GET /bkt/k", name="answer")
    loop = _loop.get_loop()
    req = c.get("/k").end()
    loop.ref()  # another operation pending: the loop polls rather than reading one answer
    try:
        with pytest.raises(TimeoutError):
            knoxpy.run(0.1)  # the loop took the request and polled for it, then gave up
    finally:
        loop.unref()
    assert not loop._waits
    srv.release("answer")
    # The caller is busy (it never runs its loop): a worker reads the answer and posts it.
    assert _wait_until(lambda: loop._queue), "no worker read the answer"
    assert req.wait(HANG).read() == b"hello"


def test_a_retry_of_a_stolen_request_sleeps_off_the_loop(
        srv: Any, loop_takes_its_requests: None) -> None:
    """Told to retry after 2 s, a request the loop thread runs goes to a worker to sleep: the
    loop is free at once and runs its 'retry' listener while the retry is still to be sent
    (2 s is the one margin here: the loop runs one callback while a worker sleeps 2 s)."""
    c = fault_client(srv)
    c.putBuffer(b"hello", "/k").wait(HANG)
    srv.inject("status", count=1, status=503, code="SlowDown", headers={"Retry-After": "2"},
               match="GET /bkt/k")
    during: List[Any] = []

    def on_retry(info: Any) -> None:
        gets = sum(1 for r in srv.requests if r.method == "GET")
        during.append((threading.current_thread(), len(req._loop._waits), gets))

    req = c.get("/k").on("retry", on_retry).end()
    assert req.wait(HANG).read() == b"hello"
    assert during == [(threading.current_thread(), 0, 1)], "the loop slept with the retry"


def test_without_poll_workers_read_the_answers_and_they_still_overlap(
        srv: Any, monkeypatch: pytest.MonkeyPatch, loop_takes_its_requests: None) -> None:
    """Where select.poll is missing (Windows), a stolen request's answer goes to a worker."""
    monkeypatch.setattr(_loop, "_POLL", None)
    c = fault_client(srv)
    c.putBuffer(b"hello", "/k").wait(HANG)
    srv.inject("barrier", count=8, match="GET /bkt/k")  # all eight at the server at once
    got: List[Any] = []
    for _ in range(8):
        c.getFile("/k", lambda err, res: got.append(err or res.read()))
    knoxpy.run(2 * HANG)
    assert got == [b"hello"] * 8
    assert not _loop.get_loop()._waits
