"""Work done on knoxpy-io workers for the operations beyond knox (transfers, bulk).

An operation such as ``deleteAll`` or ``upload`` returns an :class:`Operation` at
once; its driver runs on a worker (:func:`start`), fans out to more workers
(:func:`fan_out`, :func:`parallel_map`), and each worker sends its requests
synchronously through a :class:`Session`, a private loop of that worker thread.
What the user sees (events, the callback, the result) is only ever *posted* to
the user's loop, so CONTRACT §2 holds: workers never call user code.
"""
from __future__ import annotations

import threading
import time
import urllib.parse
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from . import _cancel, _naming, _retry, _validate, _xml
from ._emitter import Operation
from ._js import fit, records
from ._loop import Loop, spawn
from ._streams import IncomingMessage
from .client import Client
from .errors import Cancelled, S3Error

Callback = Callable[[Optional[BaseException], Any], Any]
T = TypeVar("T")
R = TypeVar("R")


# -- synchronous requests from a worker thread ------------------------------------------
BODY_SLICE = 1024 * 1024  # bytes per send (and per 'progress' event) of a Body


class Body:
    """A buffer sent as a request body in 1 MiB slices: no copies, and sent again on retry.

    Given bytes, the request layer sends copies of 256 KiB slices. A Body is sent as
    memoryview slices instead, each with one ``sendall``, one ``'progress'`` per slice.
    ``signed``: the V4 signature covers the payload's SHA-256 (~1.4 GB/s, hashed from
    the buffer); else it says UNSIGNED-PAYLOAD, for a body that carries a checksum of
    its own (CRC32, Content-MD5) that S3 verifies.

    >>> [len(s) for s in Body(memoryview(bytes(3 * 1024 * 1024 + 5)))]
    [1048576, 1048576, 1048576, 5]
    """

    replayable = True  # iterating again sends it again (retries, redirects)

    def __init__(self, data: memoryview, signed: bool = False) -> None:
        self.data = data
        self.signed = signed

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[memoryview]:
        data = self.data
        for i in range(0, len(data), BODY_SLICE):
            yield data[i:i + BODY_SLICE]


class Session:
    """Requests sent and awaited on a worker, owned by a private loop of that thread.

    Build one on the thread that uses it. ``'retry'`` events of its requests go to
    ``on_retry`` and ``'redirect'`` events to ``on_redirect`` (which post them to the
    user's loop).
    """

    def __init__(self, on_retry: Optional[Callable[[Any], None]] = None) -> None:
        self.loop = Loop()
        self.on_retry = on_retry
        self.on_redirect: Optional[Callable[[Any], None]] = None

    def open(self, client: Client, method: str, path: str,
             headers: Optional[Dict[str, Any]] = None, body: Union[bytes, Body] = b"",
             on_progress: Optional[Callable[[Any], None]] = None) -> IncomingMessage:
        """Send and wait for the answer; its body is left to ``res.read()`` (streamed).

        ``body``: bytes, or a :class:`Body` (with its Content-Length in ``headers``). A
        non-2xx answer raises :class:`S3Error`. ``on_progress`` gets the request's
        ``'progress'`` events, on this thread.
        """
        req = client.request(method, path, dict(headers or {}), loop=self.loop)
        if self.on_retry is not None:
            req.on("retry", self.on_retry)
        if self.on_redirect is not None:
            req.on("redirect", self.on_redirect)
        if on_progress is not None:
            req.on("progress", on_progress)
        if isinstance(body, Body):
            # A Body's slices are memoryviews (urllib3 sends any buffer with sendall); a
            # signed one has V4 sign the SHA-256 of the whole buffer.
            sent = req._send_source(body, signed=body.data if body.signed else None)
        else:
            sent = req.end(body)
        res: IncomingMessage = sent.wait()
        if res.statusCode >= 300:
            raise s3_error(res, res.read_xml())
        return res

    def send(self, client: Client, method: str, path: str,
             headers: Optional[Dict[str, Any]] = None, body: bytes = b"",
             on_progress: Optional[Callable[[Any], None]] = None
             ) -> Tuple[IncomingMessage, bytes]:
        """Send, wait, read the whole (XML) body; a non-2xx answer raises :class:`S3Error`,
        a body over ``_xml.MAX_XML_BYTES`` :class:`MalformedXML`."""
        res = self.open(client, method, path, headers, body, on_progress)
        return res, res.read_xml()


def s3_error(res: IncomingMessage, body: bytes) -> S3Error:
    err = _xml.error_from(_xml.parse_error(body, res.statusCode), res.statusCode)
    if err.requestId is None:
        err.requestId = err.request_id = res.headers.get("x-amz-request-id")
    if not err.message:  # no S3 error body (a HEAD, a proxy's page): say which request
        err.message = (f"{getattr(res.req, 'method', '')} {res.url} answered HTTP "
                       f"{res.statusCode} without an S3 error body")
    return err


def with_200_retries(client: Client, session: Session, call: Callable[[], T]) -> T:
    """Retry ``call`` when S3 answered 200 with a transient ``<Error>`` (a listing page).

    The request layer retries 5xx answers, and the 200s that ``_xml.may_fail_in_200``
    (copies, completes, deletes); for other requests a 200 whose body says
    ``InternalError`` is only found once the body is parsed, so it is retried here.
    """
    backoff = getattr(client, "_backoff", None)
    attempt = 0
    while True:
        try:
            return call()
        except S3Error as err:
            transient = err.statusCode == 200 and err.code in _retry.TRANSIENT_S3_CODES
            if not transient or backoff is None or attempt >= backoff.max_retries:
                raise
            delay = backoff.delay(attempt)
            attempt += 1
            if session.on_retry is not None:
                session.on_retry({"reason": f"200 {err.code}", "delay": delay,
                                  "attempt": attempt})
            time.sleep(delay)


def key_target(key: str) -> str:
    """A key as it goes in a request path: knox's encoding; a leading ``/`` stays a slash.

    Control characters are refused here, before the encoding would hide them."""
    _validate.check_key(key)
    return "/" + _naming.encode_special_characters(key)


def copy_source(bucket: str, key: str) -> str:
    """knox's ``x-amz-copy-source``: ``/bucket/encoded-key`` (control characters refused)."""
    return "/" + bucket + key_target(key)


def quote_query(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def concurrency_option(client: Client, given: Optional[int], default: int) -> int:
    return _validate.concurrency(
        given if given is not None else client.options.get("concurrency", default))


# -- running work on workers, settling on the user's loop --------------------------------
def fan_out(n: int, work: Callable[[Session, threading.Event], None],
             on_retry: Optional[Callable[[Any], None]]) -> None:
    """Run ``work(session, stop)`` on ``n`` threads (this one included) until all return.

    The first exception sets ``stop`` (so the others stop taking work) and is raised
    once every thread has finished; a Ctrl-C (knoxpy._cancel) sets it too, and then
    :class:`Cancelled` is raised. ``work`` takes its items from a shared source
    until it is exhausted, so once this thread's own ``work`` has returned, a helper
    that has not started yet would find nothing to do: it is not waited for (with
    every pool thread blocked in a nested ``fan_out``, it might never start).
    """
    stop = threading.Event()
    errors: List[BaseException] = []
    cond = threading.Condition(threading.Lock())
    running = [0]  # helpers that started and have not finished
    closed = [False]  # set once nobody waits: late helpers return at once
    since = _cancel.since()

    def one() -> None:
        try:
            with _cancel.scope(since):
                work(Session(on_retry), stop)
        except BaseException as exc:  # noqa: BLE001 - reported below, once all are done
            with cond:
                errors.append(exc)
            stop.set()

    def helper() -> None:
        with cond:
            if closed[0]:
                return
            running[0] += 1
        try:
            one()
        finally:
            with cond:
                running[0] -= 1
                cond.notify_all()

    with _cancel.watch(stop) as watched:
        for _ in range(n - 1):
            spawn(helper)
        one()
        with cond:
            while running[0]:
                cond.wait()
            closed[0] = True
    if watched.cancelled:  # what failed then failed because its connection was cut
        raise Cancelled()
    if errors:
        raise errors[0]


def parallel_map(n: int, fn: Callable[[Session, T], R], items: List[T],
                  on_retry: Optional[Callable[[Any], None]]) -> List[R]:
    """``[fn(session, item) for item in items]`` on up to ``n`` threads, in order."""
    results: List[Any] = [None] * len(items)
    source = Shared(iter(enumerate(items)))

    def work(session: Session, stop: threading.Event) -> None:
        while not stop.is_set():
            nxt = source.next()
            if nxt is None:
                return
            i, item = nxt
            results[i] = fn(session, item)

    fan_out(max(1, min(n, len(items))), work, on_retry)
    return results


class Shared:
    """An iterator shared by workers: one ``next`` at a time; None once exhausted."""

    def __init__(self, it: Iterator[Any]) -> None:
        self._it = it
        self._lock = threading.Lock()
        self._done = False

    def next(self) -> Any:
        with self._lock:
            if self._done:
                return None
            try:
                return next(self._it)
            except StopIteration:
                self._done = True
                return None

    def take(self, n: int, convert: Callable[[Any], Optional[T]]) -> List[T]:
        """Up to ``n`` converted items (``None`` conversions are skipped)."""
        out: List[T] = []
        with self._lock:
            while not self._done and len(out) < n:
                try:
                    item = next(self._it)
                except StopIteration:
                    self._done = True
                    break
                value = convert(item)
                if value is not None:
                    out.append(value)
        return out


def settle(op: Operation, fn: Optional[Callback], err: Optional[BaseException],
            result: Any) -> None:
    """On the user's loop: settle ``op``, call ``fn(err, result)``, emit ``'end'``.
    The result's dicts are :class:`~knoxpy._js.Record` s: ``res.Key`` reads as in JS."""
    if err is not None:
        op._reject(err, emit=fn is None or bool(op.listeners("error")))
        if fn is not None:
            fit(fn)(err, None)
        return
    result = records(result)
    op._resolve(result)
    if fn is not None:
        fit(fn)(None, result)
    op.emit("end", result)


def start(op: Operation, fn: Optional[Callback], body: Callable[[], Any]) -> Operation:
    """Run ``body()`` on a worker now; settle ``op`` with what it returns or raises."""
    loop = op._loop
    loop.ref()
    since = _cancel.since()  # a Ctrl-C from now on cancels it, even before it sends

    def drive() -> None:
        try:
            with _cancel.scope(since):
                result = body()
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the loop
            loop.call_soon(settle, op, fn, exc, None)
        else:
            loop.call_soon(settle, op, fn, None, result)
        finally:
            loop.unref()

    spawn(drive)
    return op


def fail_later(op: Operation, fn: Optional[Callback], err: BaseException) -> Operation:
    """Settle ``op`` with ``err`` on the loop's next turn (never inline: CONTRACT §2.1)."""
    op._loop.call_soon(settle, op, fn, err, None)
    return op


