"""Node's streams for S3: ``ClientRequest`` (writable) and ``IncomingMessage`` (readable).

Bytes move on worker threads; events reach user code only through the owning
loop (``knoxpy._loop``). Memory stays bounded: a writable holds at most its
high-water mark before ``write()`` returns False (and ``'drain'`` follows), and
a readable's reader stops reading ahead at its high-water mark until the loop
has delivered what it read.
"""
from __future__ import annotations

import codecs
import collections
import io
import logging
import os
import stat
import sys
import threading
import time
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    Iterator,
    Mapping,
    Optional,
    Tuple,
    TypedDict,
    Union,
    cast,
)

import urllib3

from . import _cancel, _transport, _validate, _xml
from ._emitter import Emitter, OnFirstUse, Operation
from ._js import Record
from ._loop import PROGRESS_INTERVAL, Loop, call_later, spawn, threads_refused
from ._retry import Backoff, error_code_of, transient_reason
from .errors import Cancelled, RequestError, S3Error, ValidationError

__all__ = ["ClientRequest", "IncomingMessage", "Progress", "iter_source"]

log = logging.getLogger("knoxpy")

HIGH_WATER = 1024 * 1024  # bytes buffered in a stream before it pushes back
CHUNK = 256 * 1024  # bytes per read from a file and per 'data' event
SINK_CHUNK = 1024 * 1024  # bytes per read when a body is piped into a file
IDLE_BODY_TIMEOUT = 60.0  # seconds an unread response may hold its connection

Chunk = Union[bytes, bytearray, memoryview, str]


class Progress(TypedDict):
    """The payload of a ``'progress'`` event, as knox's."""

    written: int
    total: Optional[int]
    percent: int


def to_bytes(chunk: Chunk) -> bytes:
    """Bytes for the wire: strings are sent as UTF-8, as Node does."""
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"a request body chunk must be bytes or str, not {type(chunk).__name__}")


def header_value(headers: Mapping[str, Any], name: str) -> Any:
    """A header's value by case-insensitive name, or None (knox's ``getHeader``)."""
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            return v
    return None


class FileSource:
    """A file's bytes from where it stands now; iterating again replays them (for retries)."""

    def __init__(self, f: Any, chunk_size: int = CHUNK) -> None:
        self.f = f
        self.chunk_size = chunk_size
        try:
            self.start: Optional[int] = f.tell() if f.seekable() else None
        except (AttributeError, OSError, ValueError):
            self.start = None

    @property
    def replayable(self) -> bool:
        return self.start is not None

    def __iter__(self) -> Iterator[bytes]:
        if self.start is not None:
            self.f.seek(self.start)
        read = self.f.read
        while True:
            chunk = read(self.chunk_size)
            if not chunk:
                return
            yield to_bytes(chunk)


def iter_source(source: Any, chunk_size: int = CHUNK) -> Iterable[bytes]:
    """Chunks of a file object, a bytes-like object or an iterator of bytes/str."""
    if isinstance(source, (bytes, bytearray, memoryview, str)):
        data = memoryview(to_bytes(source))
        return (bytes(data[i : i + chunk_size]) for i in range(0, len(data), chunk_size))
    if hasattr(source, "read"):
        return FileSource(source, chunk_size)
    return (to_bytes(chunk) for chunk in source if chunk)


def replayable(body: Any) -> bool:
    """Whether a body can be sent again after a failed attempt."""
    return body is None or isinstance(body, bytes) or bool(getattr(body, "replayable", False))


def _progress(written: int, total: Optional[int]) -> Progress:
    percent = int(written / total * 100) if total else (100 if total == 0 else 0)
    return cast(Progress, Record(written=written, total=total, percent=percent))


class _BodyPipe:
    """A bounded, thread-safe byte queue between ``write()`` and the sending worker."""

    def __init__(self, on_drain: Callable[[], None]) -> None:
        self._chunks: Deque[bytes] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._buffered = 0
        self._closed = False
        self._error: Optional[BaseException] = None
        self._needs_drain = False
        self._on_drain = on_drain

    def put(self, chunk: bytes) -> bool:
        with self._cond:
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            self._cond.notify()
            below = self._buffered < HIGH_WATER
            if not below:
                self._needs_drain = True
            return below

    def close(self, error: Optional[BaseException] = None) -> None:
        with self._cond:
            self._closed = True
            self._error = self._error or error
            self._cond.notify()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            with self._cond:
                while not self._chunks and not self._closed:
                    self._cond.wait()
                if self._error is not None:
                    raise self._error
                if not self._chunks:
                    return
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                drained = self._needs_drain and self._buffered < HIGH_WATER // 2
                if drained:
                    self._needs_drain = False
            if drained:
                self._on_drain()
            yield chunk


# The sender a client gives each request: runs on a worker; signs and sends.
Payload = Union[bytes, memoryview]  # a whole body in hand, whose SHA-256 V4 signs
# Signs and sends a request; the exchange returned reads its answer.
Sender = Callable[["ClientRequest", Any, Optional[Payload]], "_transport.Exchange"]
# The client's hook for an answer of 300 or more to a body that can be sent again (a
# region redirect, a refused checksum framing): True means "send again".
Resend = Callable[["ClientRequest", int, Any, bytes], bool]

SMALL_BODY = 64 * 1024  # bodies up to this size are read as soon as the headers arrive


def _small_body(raw: urllib3.BaseHTTPResponse) -> Optional[bytes]:
    """Read a body of known small length at once; None for a large or unknown one."""
    length = raw.length_remaining
    if length is None or length > SMALL_BODY:
        return None
    return raw.read(decode_content=False) if length else b""


def _retry_after(raw: Any) -> Optional[float]:
    value = raw.headers.get("retry-after") if raw is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ClientRequest(Operation):
    """A request to S3, writable like Node's ``http.ClientRequest``.

    Events: ``'response'`` (an :class:`IncomingMessage`), ``'error'``, ``'progress'``
    (``{'written', 'total', 'percent'}``), ``'drain'``, ``'finish'`` (body sent),
    ``'close'``, ``'abort'``. ``end()`` returns the request, so knox's chains read
    the same; ``wait()`` returns the response.

    >>> req = client.put('/hello.txt', {'Content-Length': 5})   # doctest: +SKIP
    >>> res = req.end('hello').wait()                           # doctest: +SKIP
    >>> res.statusCode                                          # doctest: +SKIP
    200
    """

    traced: Any = None  # knoxpy.trace's hooks for this request, when its client records
    # Whether a pooled connection waits for this request (the client's); None: not known.
    connected: Optional[Callable[[], bool]] = None
    # Where a request starts, set at class level (not per request in __init__):
    _progress_high = 0  # the most bytes counted for 'progress' (monotonic across retries)
    _progress_shown = 0  # the most bytes a 'progress' posted has reported
    _pipe: Optional[_BodyPipe] = None
    _started = False
    _ended = False
    _written = 0  # bytes given to write()
    _length: Optional[int] = None  # the Content-Length promised, read at the first write
    _wrote_text = False  # one of them came as a str (sent as UTF-8)
    _last = b""  # the chunk that completes the body, held until end()
    _refused = False  # the body broke its Content-Length: nothing more goes out
    aborted = False
    replayable = True  # whether the body can be sent again (set when sending)
    res: Optional[IncomingMessage] = None
    _signed_payload: Optional[Payload] = None
    # Frames a streamed body on its way out (the client's aws-chunked CRC32 trailer);
    # applied on every attempt, after progress is counted.
    frame: Optional[Callable[[Iterable[bytes]], Iterable[bytes]]] = None

    def __init__(
        self,
        method: str,
        path: str,
        headers: Dict[str, Any],
        url: str,
        sender: Sender,
        loop: Optional[Loop] = None,
        backoff: Optional[Backoff] = None,
        resend: Optional[Resend] = None,
    ) -> None:
        Emitter.__init__(self, loop)  # named, not super(): no super object per request
        self._backoff = backoff
        self._resend = resend
        self.method = method
        self.path = path
        # req.url follows req.path, which code may extend before end() (knox-copy appends
        # its query there): errors then name the URL that went on the wire
        self._origin: Optional[str] = url[:-len(path)] if path and url.endswith(path) else None
        self._url = url
        self._headers = headers
        self._sender = sender
        self._since = _cancel.since()  # a Ctrl-C after this cancels the request
        self.resource = path  # the resource knox's V2 signature covers

    def __repr__(self) -> str:
        return f"<ClientRequest {self.method} {self.url}>"

    @property
    def url(self) -> str:
        """The URL as it goes on the wire, ``req.path`` included."""
        return self._origin + self.path if self._origin is not None else self._url

    @url.setter
    def url(self, value: str) -> None:
        self._origin, self._url = None, value

    # -- headers ------------------------------------------------------------------
    def getHeader(self, name: str) -> Any:
        return header_value(self._headers, name)

    def setHeader(self, name: str, value: Any) -> ClientRequest:
        if self._started:
            raise RuntimeError("Cannot set headers after they are sent to the client")
        _validate.check_headers({name: value})
        self.removeHeader(name)
        self._headers[name] = value
        return self

    def removeHeader(self, name: str) -> None:
        for k in [k for k in self._headers if k.lower() == name.lower()]:
            del self._headers[k]

    def _rewrite_headers(self, remove: Iterable[str], add: Mapping[str, Any]) -> None:
        """Change the headers between two attempts (the client's own use, when a store
        refuses how the body was framed); the next attempt is signed with them."""
        for name in [*remove, *add]:
            self.removeHeader(name)
        self._headers.update(add)

    def getHeaders(self) -> Dict[str, Any]:
        return {k.lower(): v for k, v in self._headers.items()}

    get_header, set_header, remove_header = getHeader, setHeader, removeHeader

    @property
    def headers(self) -> Dict[str, Any]:
        return self._headers

    # -- the writable side ---------------------------------------------------------
    def write(self, chunk: Chunk) -> bool:
        """Queue ``chunk`` for sending; False means "wait for ``'drain'``" (Node's rule).

        Bytes past the ``Content-Length`` are never sent: the request fails with a
        :class:`ValidationError` naming both numbers, and its connection is dropped.
        """
        if self._refused:
            return False
        if self._ended:
            raise RuntimeError("write after end")
        data = to_bytes(chunk)
        self._wrote_text = self._wrote_text or isinstance(chunk, str)
        if self._pipe is None:  # the first write: headers are fixed from here on
            try:
                self._length = self._declared()
            except ValidationError as err:  # refused before anything is sent
                self._refuse(err)
                return False
            self._pipe = _BodyPipe(lambda: self._post("drain"))
            self._start(self._pipe, None)
        declared = self._length
        self._written += len(data)
        if declared is not None and self._written >= declared and data:
            if self._written > declared:
                self._refuse(_validate.body_too_long(declared, self._written, self._wrote_text))
                return False
            # The body is whole, unless more follows: its last bytes wait for end(), so
            # that a server never gets a complete body the caller then runs past.
            self._last = data
            return True
        return self._pipe.put(data) if data else True

    def end(self, data: Optional[Chunk] = None) -> ClientRequest:
        """Finish the request (sending ``data`` last) and return it, for chaining.

        A body that is not as long as its ``Content-Length`` fails the request with a
        :class:`ValidationError` (``'error'``, the callback, ``wait()``): when ``data`` is
        the whole body, before anything is sent; after ``write()`` calls, at once, with
        the connection dropped, never reused.
        """
        if self._ended:
            return self
        if self._pipe is None and not self._started:
            self._ended = True
            whole = to_bytes(data) if data is not None else b""
            try:
                declared = self._declared()
            except ValidationError as err:
                self._refuse(err)
                return self
            if declared is not None and declared != len(whole):
                self._refuse(_validate.body_length_mismatch(
                    declared, len(whole), isinstance(data, str)))
                return self
            self._start(None, whole)
            return self
        if data is not None:
            self.write(data)
        if self._refused:
            return self
        self._ended = True
        declared = self._length
        if declared is not None and self._written < declared:
            self._refuse(_validate.body_ended_early(declared, self._written))
        elif self._pipe is not None:
            if self._last:
                self._pipe.put(self._last)
            self._pipe.close()
        return self

    def _declared(self) -> Optional[int]:
        """The body's length as promised: the ``Content-Length`` (the decoded length when
        the client frames the body itself), or None."""
        name = "x-amz-decoded-content-length" if self.frame is not None else "content-length"
        value = header_value(self._headers, name)
        return None if value is None else _validate.content_length(value)

    def _refuse(self, err: ValidationError) -> None:
        """Fail for a body that breaks its length. A body already on its way: the worker
        stops sending at once, raises ``err`` and drops the connection (it reports ``err``);
        none yet: nothing is sent, and ``err`` comes on the loop's next turn."""
        self._refused = self._ended = True
        if self._pipe is not None:
            self._pipe.close(err)
        else:
            self._fail_later(err)

    def abort(self) -> None:
        """Abandon the request: nothing more is sent and no ``'response'`` follows."""
        if self.aborted or self._done:
            return
        self.aborted = True
        self._ended = True
        err = RequestError("socket hang up", "ECONNRESET", method=self.method, url=self.url)
        if self._pipe is not None:
            self._pipe.close(err)
        self._post("abort")
        self._loop.call_soon(self._reject, err, False)
        self._post("close")

    destroy = abort

    def _send_source(self, source: Iterable[Payload], signed: Optional[Payload] = None
                     ) -> ClientRequest:
        """Stream ``source`` as the body, read on the worker (file, iterator, buffer slices).

        ``signed``: the whole body, when the caller holds it, so that V4 signs its SHA-256
        (which S3 checks) instead of ``UNSIGNED-PAYLOAD``; it is still sent from ``source``.
        """
        self._ended = True
        self._signed_payload = signed
        try:
            self._declared()
        except ValidationError as err:
            self._refuse(err)
            return self
        self._start(cast(Iterable[bytes], source), None)
        return self

    def _start(self, stream: Optional[Iterable[bytes]], whole: Optional[bytes]) -> None:
        self._started = True
        if self.traced is not None:
            self.traced.queued()
        self._loop.ref()
        small = whole is not None and len(whole) <= CHUNK
        steal = (small or self._loop.runs_own_io) and self._loop.steals
        spawn(self._run, stream, whole, stealable_by=self._loop if steal else None)

    def _total(self, whole: Optional[bytes]) -> Optional[int]:
        decoded = header_value(self._headers, "x-amz-decoded-content-length")
        if decoded is not None:  # a framed body: progress counts the object's bytes
            return int(decoded)
        total = header_value(self._headers, "content-length")
        if total is not None:
            return _validate.content_length(total)
        return len(whole) if whole is not None else None

    def _counted(self, chunks: Iterable[bytes], total: Optional[int]) -> Iterator[bytes]:
        """Yield the body, posting ``'progress'``; monotonic across retries.

        A body that runs past its ``Content-Length`` raises before the excess is sent, one
        that ends short raises at its end: either way urllib3 drops the connection, so the
        server never reads the rest as a request of its own, nor waits for what is missing.
        """
        declared = self._declared()
        written = 0
        due = 0.0  # when 'progress' may be posted next (each post wakes the loop's thread)
        source = iter(chunks)
        for chunk in source:
            if self.aborted:
                raise RequestError("socket hang up", "ECONNRESET", method=self.method, url=self.url)
            if _cancel.cancelled_since(self._since):
                raise Cancelled()
            if declared is not None and written + len(chunk) >= declared and chunk:
                size = written + len(chunk)
                if size == declared:  # whole: its last bytes go only if nothing follows
                    size += len(next((more for more in source if more), b""))
                if size > declared:
                    raise _validate.body_too_long(declared, size)
            yield chunk
            written += len(chunk)
            if written > self._progress_high:
                self._progress_high = written
                now = time.monotonic()
                if now >= due:
                    due = now + PROGRESS_INTERVAL
                    self._post_progress(written, total)
        if declared is not None and written < declared:
            raise _validate.body_ended_early(declared, written)
        if self._progress_high > self._progress_shown:  # the last count is always posted
            self._post_progress(self._progress_high, total)

    def _post_progress(self, written: int, total: Optional[int],
                       whole: Optional[bytes] = None) -> None:
        self._progress_shown = written
        self._loop.call_soon(self._emit_progress, written, total, whole)

    def _emit_progress(self, written: int, total: Optional[int],
                       whole: Optional[bytes] = None) -> None:
        """``'progress'``, on the loop; its payload is built only when someone listens,
        and so is a small ``whole`` body's total (read from its headers)."""
        if self._events.get("progress"):
            self.emit("progress", _progress(
                written, self._total(whole) if whole is not None else total))

    def _body(self, stream: Optional[Iterable[bytes]], whole: Optional[bytes]) -> Any:
        """The body as urllib3 sends it: small bytes as they are, the rest counted."""
        if whole is not None and len(whole) <= CHUNK:
            if whole and len(whole) > self._progress_high:
                self._progress_high = len(whole)
                self._post_progress(len(whole), None, whole)
            # No body is None: like Node, a GET/HEAD/DELETE then carries no Content-Length
            # (urllib3 still sends "Content-Length: 0" for PUT and POST).
            return whole or None
        body = self._counted(stream if stream is not None else iter_source(whole or b""),
                             self._total(whole))
        return self.frame(body) if self.frame is not None else body

    def _run(self, stream: Optional[Iterable[bytes]], whole: Optional[bytes]
             ) -> Iterator[Union[_transport.Exchange, float]]:
        """Off the caller's stack: sign, send, retry what is transient, post what came back.

        A generator, driven by a worker or by the loop thread that stole it (see
        ``knoxpy._loop``): it yields the exchange whose answer it waits for, and the
        seconds to sleep before a retry.
        """
        can_replay = self.replayable = whole is not None or replayable(stream)
        attempt = redirects = 0
        try:
            while True:
                raw: Any = None
                err: Optional[BaseException] = None
                prefetched: Optional[bytes] = None
                failed: Optional[Tuple[int, S3Error]] = None  # a 200 whose body is an <Error>
                if _cancel.cancelled_since(self._since):  # never sent, nor sent again
                    err = Cancelled()
                    break
                if attempt == 0 and self.connected is not None and not self.connected():
                    # It connects first (a round trip, a TLS handshake): on a worker, so that
                    # a loop thread that stole many such requests does not make their
                    # connections one after another. On a worker this goes straight on.
                    yield 0.0
                try:
                    signed = whole if whole is not None else self._signed_payload
                    # sent as work of this request: its connection remembers its generation
                    exchange = _cancel.within(self._since, self._sender, self,
                                              self._body(stream, whole), signed)
                    yield exchange  # the loop thread may wait for many answers at once
                    raw = exchange.finish()
                    if raw.status == 200 and _xml.may_fail_in_200(self.method, self.path,
                                                                  self._headers):
                        # Only the whole body tells success from a padded <Error>. The
                        # padding can last minutes: read it on a worker, not a loop's thread.
                        if not isinstance(raw, _transport.SmallResponse):
                            yield 0.0
                        prefetched = _transport.read_limited(raw, _xml.MAX_XML_BYTES)
                        if prefetched is None:
                            raw = None  # its connection is closed already
                            raise _xml.too_large()
                        failed = _xml.error_in_200(prefetched)
                    else:
                        # A small body is read at once, on this worker: its connection goes
                        # straight back to the pool, error bodies can be inspected, and a
                        # body cut short is a transient failure like any other.
                        prefetched = _small_body(raw)
                except BaseException as exc:  # noqa: BLE001 - every failure goes to the loop
                    err = _failure(exc, self, self.url)
                    if raw is not None:
                        _transport.discard(raw)
                        raw = None
                if self.traced is not None:
                    self.traced.answered(raw, err, prefetched, self.method)
                if self.aborted:
                    if raw is not None:
                        _transport.discard(raw)
                    return
                if raw is not None and raw.status < 300 and failed is None:
                    break  # a success: nothing to send again, nothing to retry
                if raw is not None and raw.status >= 300:
                    if (
                        self._resend is not None and can_replay and redirects < 2
                        and self._resend(self, raw.status, raw.headers, prefetched or b"")
                    ):
                        redirects += 1
                        continue
                reason = self._transient(raw, err, prefetched, failed)
                if reason and can_replay and self._backoff and attempt < self._backoff.max_retries:
                    delay = self._backoff.delay(attempt, _retry_after(raw))
                    attempt += 1
                    if self.traced is not None:
                        self.traced.again(reason, delay)
                    if raw is not None and prefetched is None:
                        _transport.discard(raw)
                    self._post("retry", Record(reason=reason, delay=delay, attempt=attempt))
                    yield delay  # slept on a worker (a loop thread hands the task over)
                    continue
                break
            if err is not None:
                if self._pipe is not None:
                    self._pipe.close(err)
                self._loop.call_soon(self._on_error, err)
            else:
                res = IncomingMessage(raw, self, self._loop, prefetched,
                                      failed[0] if failed else None)
                res._traced = self.traced
                self._loop.call_soon(self._on_response, res)
        except BaseException as exc:  # noqa: BLE001 - a bug must still settle the request
            self._loop.call_soon(self._on_error, exc)
        finally:
            self._loop.unref()

    @staticmethod
    def _transient(raw: Any, err: Optional[BaseException], body: Optional[bytes],
                   failed: Optional[Tuple[int, S3Error]] = None) -> Optional[str]:
        if err is not None:
            return transient_reason(None, getattr(err, "code", None))
        if failed is not None:  # named by what came on the wire: '200 InternalError'
            wrong = failed[1].code
            return f"{raw.status} {wrong}" if transient_reason(failed[0], wrong) else None
        code = error_code_of(body) if body and raw.status >= 300 else None
        return transient_reason(raw.status, code)

    def _on_response(self, res: IncomingMessage) -> None:
        if self.aborted:
            res._discard()
            return
        self.res = res
        if self._events:  # a request nobody listens to (one wait()ed for) needs no emit
            self.emit("finish")
        self._resolve(res)
        if self._events:
            self.emit("response", res)
        res._delivered()

    def _on_error(self, err: BaseException) -> None:
        if self.aborted:
            return
        self._reject(err)
        self.emit("close")


def _failure(exc: BaseException, req: Any, url: str) -> BaseException:
    """What a failed send or read of ``req`` raises: :class:`Cancelled` once everything
    was cancelled after ``req`` was made (its connection was cut on purpose), else the
    transport error, mapped."""
    since = getattr(req, "_since", None)
    if isinstance(exc, Cancelled) or (since is not None and _cancel.cancelled_since(since)):
        return exc if isinstance(exc, Cancelled) else Cancelled()
    return _transport.map_error(exc, getattr(req, "method", ""), url)


class _NoReader:
    """The condition of a body with no reader: nobody to wake, and nobody may wait."""

    def notify_all(self) -> None:
        pass

    def wait(self, timeout: Optional[float] = None) -> bool:
        raise AssertionError("knoxpy: waited for the reader of a body read already")


_NO_READER = _NoReader()


class IncomingMessage(Emitter):
    """An S3 response, readable like Node's ``http.IncomingMessage``.

    ``statusCode``, ``statusMessage``, ``headers`` (lower-case names); events
    ``'data'`` (bytes, or str after ``setEncoding``), ``'end'``, ``'error'``,
    ``'close'``; ``pipe(dest)``, ``resume()``, ``pause()``. For scripts it also
    reads like a file: ``res.read()`` blocks and returns the body.

    S3 may answer ``200`` to a copy, a multipart completion or a multi-object delete and
    then send an ``<Error>``: such a response's whole body is read before it is handed
    over, and ``statusCode`` is the status S3 documents for the error's code (500 for
    ``InternalError``); ``wireStatusCode`` is always the status as sent.

    The body flows once a ``'data'`` listener is attached or ``pipe``/``resume``
    is called. Its connection goes back to the pool when the body is consumed; a
    body nobody touches for ``IDLE_BODY_TIMEOUT`` seconds is discarded with a
    warning that names the request.
    """

    _traced: Any = None  # knoxpy.trace's hooks: told when the body was read to its end
    # Where a response starts, set at class level (not per response in __init__):
    _buffered = 0
    _flowing: Optional[bool] = None
    _reading = False  # a worker is reading the body
    _eof = False  # the body has been read to its end
    _ended = False  # 'end' has been emitted (or read() reached the end)
    _failed = False  # reading failed: 'error' comes, never 'end' after a short body
    _touched = False  # someone started consuming the body
    _drop_when_read = False  # the body was refused while a reader was reading
    _cancel_idle: Optional[Callable[[], None]] = None
    _decoder: Optional[codecs.IncrementalDecoder] = None
    _sink: Any = None
    httpVersion = "1.1"
    # lower-case names (Node's); built when first read: a body read() or resume()d for its
    # status alone never needs them
    headers: OnFirstUse[Dict[str, str]] = OnFirstUse(lambda res: _transport.node_headers(res._raw))

    def __init__(self, raw: urllib3.BaseHTTPResponse, req: Any, loop: Optional[Loop] = None,
                 prefetched: Optional[bytes] = None, status: Optional[int] = None) -> None:
        Emitter.__init__(self, loop)
        self._raw = raw
        self.req = req
        # A 200 whose body is an <Error> (a copy, a completion) has the status S3
        # documents for the error's code; the status sent stays in wireStatusCode.
        self.wireStatusCode: int = raw.status
        self.statusCode: int = status if status is not None else raw.status
        self.statusMessage: str = raw.reason or ""
        self.status_code = self.statusCode
        self.url = getattr(req, "url", "")
        # The body's state is guarded by the emitter's own lock (made on first use, held
        # directly where nobody waits: no Python frames) and _cond, made below.
        self._buffer: Deque[bytes] = collections.deque()
        if prefetched is not None:
            if prefetched:
                self._buffer.append(prefetched)
                self._buffered = len(prefetched)
            self._eof = True
            # A small answer's connection went back to the pool when it was read (its
            # type asked directly: isinstance against an io ABC is a Python-level check)
            if type(raw) is not _transport.SmallResponse:
                _transport.release(raw)
        elif getattr(req, "method", "") == "HEAD" or raw.status in (204, 304) or (
            raw.length_remaining == 0
        ):
            self._eof = True  # nothing to read: the connection goes back at once
            _transport.release(raw)
        # No reader ever runs for a body read already, so nobody waits for one or wakes it.
        self._cond: Any = _NO_READER if self._eof else threading.Condition(self._lock)

    def __repr__(self) -> str:
        return f"<IncomingMessage {self.statusCode} {self.url}>"

    @property
    def rawHeaders(self) -> list[str]:
        """Node's ``res.rawHeaders``: names as sent and values, flattened."""
        return [x for kv in self._raw.headers.items() for x in kv]

    # -- Node's readable ------------------------------------------------------------
    def _data_listener_added(self) -> None:
        if self._flowing is None:
            self.resume()

    def resume(self) -> IncomingMessage:
        """Let the body flow (``'data'`` events); with no listener the data is dropped."""
        self._touch()
        self._flowing = True
        self._loop.call_soon(self._flush)
        self._ensure_reader()
        return self

    def pause(self) -> IncomingMessage:
        self._flowing = False
        return self

    def isPaused(self) -> bool:
        return self._flowing is False

    is_paused = isPaused

    def setEncoding(self, encoding: str = "utf8") -> IncomingMessage:
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        return self

    set_encoding = setEncoding

    def pipe(self, dest: Any, end: bool = True) -> Any:
        """Send the body into ``dest``: a knoxpy writable, or anything with ``write``.

        A file-like ``dest`` is written on the worker thread (a regular file not opened for
        appending, over plain HTTP on Linux: by the kernel, ``os.splice``, at its position).
        At the end, as Node ends its destination: a file on disk (or a named pipe) is
        closed, like an ``fs.WriteStream``; anything else (a socket writer such as
        ``http.server``'s ``self.wfile``, ``sys.stdout``, an in-memory buffer) is flushed
        and left open for its owner; a knoxpy writable gets ``end()``. ``end=False`` only flushes.
        """
        if isinstance(dest, Emitter) and hasattr(dest, "write"):
            writable: Any = dest

            def ondata(chunk: Any) -> None:
                if writable.write(chunk) is False:
                    self.pause()
                    writable.once("drain", lambda: self.resume())

            self.on("data", ondata)
            if end:
                self.once("end", lambda: writable.end())
        else:
            self._sink = _FileSink(dest, end)
            with self._lock:
                prefetched = list(self._buffer)
            for chunk in prefetched:  # a small body read with the headers: no reader sees it
                self._sink.write(chunk)
            self.resume()
        return dest

    def read(self, n: int = -1) -> bytes:
        """Read the body like a file (blocking): all of it, or up to ``n`` bytes."""
        self._read_like_a_file("read")
        parts = []
        size = 0
        while (n < 0 or size < n) and self._buffer:
            chunk = self._buffer.popleft()
            if n >= 0 and size + len(chunk) > n:
                self._buffer.appendleft(chunk[n - size :])
                chunk = chunk[: n - size]
            self._buffered -= len(chunk)
            parts.append(chunk)
            size += len(chunk)
        while not self._eof and (n < 0 or size < n):
            chunk = self._read_raw(_transport.RESPONSE_CHUNK if n < 0 else n - size)
            if chunk:
                parts.append(chunk)
                size += len(chunk)
        self._end_if_read()
        return b"".join(parts)

    def read_xml(self) -> bytes:
        """The whole body of an XML answer (blocking), refused over ``_xml.MAX_XML_BYTES``.

        A Content-Length over the limit is refused before any of the body is read, a
        longer body after one byte more than the limit: memory stays bounded, and the
        connection is closed, never reused.
        """
        limit = _xml.MAX_XML_BYTES
        remaining = None if self._eof else self._raw.length_remaining
        if remaining is not None and self._buffered + remaining > limit:
            self._drop()
            raise _xml.too_large(limit)
        body = self.read(limit + 1)
        if len(body) > limit:
            self._drop()
            raise _xml.too_large(limit)
        return body

    def readinto(self, b: Any) -> int:
        """Read the body into the buffer ``b`` like a file (blocking): how many bytes were
        read, 0 at the end. A buffer reused for every read saves a fresh ``bytes`` each.

        >>> buf = bytearray(256 * 1024)                  # doctest: +SKIP
        >>> while (n := res.readinto(buf)):              # doctest: +SKIP
        ...     out.write(memoryview(buf)[:n])
        """
        view = memoryview(b).cast("B")
        self._read_like_a_file("readinto")
        if self._buffer:
            chunk = self._buffer.popleft()
            n = min(len(chunk), len(view))
            view[:n] = chunk[:n]
            if n < len(chunk):
                self._buffer.appendleft(chunk[n:])
            self._buffered -= n
            return n
        n = self._read_raw_into(view) if not self._eof and len(view) else 0
        self._end_if_read()
        return n

    def _splice_into(self, fd: int, offset: int, count: int,
                     pipe: _transport.SplicePipe) -> Optional[int]:
        """Up to ``count`` body bytes moved into file ``fd`` at ``offset`` by the kernel
        (:func:`knoxpy._transport.splice_into`), read like a file; None where that cannot
        be (TLS, no length, bytes already taken off the socket): use :meth:`readinto`."""
        self._read_like_a_file("readinto")
        if self._buffer or self._eof or not count:
            return None
        n = self._splice_raw(fd, offset, count, pipe)
        self._end_if_read()
        return n

    def _splice_raw(self, fd: int, offset: Optional[int], count: int,
                    pipe: _transport.SplicePipe) -> Optional[int]:
        """One splice from the socket into ``fd`` (None: it cannot be, see above)."""
        if not _transport.can_splice(self._raw):
            return None
        return cast(int, self._from_raw(
            lambda raw, _: _transport.splice_into(raw, fd, offset, count, pipe), None))

    def _read_like_a_file(self, how: str) -> None:
        """Switch to file-like reading (not flowing), once any reader has stopped."""
        if self._flowing:
            raise RuntimeError(f"{how}() on a flowing response: its data goes to 'data' events")
        self._touch()
        self._flowing = False
        if self._cond is _NO_READER:  # a body read with its head: no reader ever runs
            return
        with self._lock:
            while self._reading:  # a reader paused mid-chunk: let it put its chunk down
                self._cond.wait()

    def _end_if_read(self) -> None:
        """``'end'`` (and ``'close'``) once read()/readinto() reached the body's end."""
        if self._eof and not self._buffer and not self._ended:
            self._ended = True
            self._loop.call_soon(self._emit_end)

    def __iter__(self) -> Iterator[bytes]:
        """Iterate the body in chunks (blocking), like reading a file."""
        while True:
            chunk = self.read(CHUNK)
            if not chunk:
                return
            yield chunk

    def destroy(self, error: Optional[BaseException] = None) -> None:
        self._discard()
        if error is not None:
            self._post("error", error)
        self._post("close")

    # -- internals ---------------------------------------------------------------
    def _touch(self) -> None:
        self._touched = True
        if self._cancel_idle is not None:
            self._cancel_idle()
            self._cancel_idle = None

    def _delivered(self) -> None:
        """Called after ``'response'``: start the clock on an untouched body."""
        if not self._touched and not self._eof:
            self._cancel_idle = call_later(IDLE_BODY_TIMEOUT, self._abandoned)

    def _abandoned(self) -> None:
        if self._touched or self._eof:
            return
        log.warning(
            "knoxpy: %s %s: response body not read or resume()d within %.0fs; "
            "closing its connection",
            getattr(self.req, "method", ""), self.url, IDLE_BODY_TIMEOUT,
        )
        self._discard()

    def _discard(self) -> None:
        self._touched = True
        with self._lock:
            if self._eof:
                return
            self._eof = True
        _transport.discard(self._raw)
        if self._traced is not None:
            self._traced.finish()

    def _refuse(self, err: BaseException) -> None:
        """Refuse the body part-way (on the loop): ``'error'``, and its connection closed."""
        self._drop()
        self._post("error", err)
        self._post("close")

    def _drop(self) -> None:
        """Stop reading and close the connection, never reused. A reader under way owns
        the socket until its read returns: it closes the connection then."""
        self._touched = True
        with self._lock:
            self._buffer.clear()
            self._buffered = 0
            self._failed = True
            self._flowing = False
            self._cond.notify_all()
            self._drop_when_read = reading = self._reading
            if not reading:
                self._eof = True
        if not reading:
            _transport.drop(self._raw)
        if self._traced is not None:
            self._traced.finish(RuntimeError("body dropped before its end"))

    def _read_raw(self, amt: int) -> bytes:
        """One read from the socket; at the end the connection goes back to the pool."""
        return cast(bytes, self._from_raw(_transport.read_chunk, amt))

    def _read_raw_into(self, view: memoryview) -> int:
        """One read from the socket into ``view``; as ``_read_raw`` otherwise."""
        return cast(int, self._from_raw(_transport.read_into, view))

    def _from_raw(self, read: Callable[[Any, Any], Any], arg: Any) -> Any:
        try:
            chunk = read(self._raw, arg)
        except BaseException as exc:
            self._failed = True  # set before _eof: a _flush already queued must not 'end'
            self._eof = True
            self._raw.close()
            self._raw.release_conn()
            if self._traced is not None:
                self._traced.finish(exc)
            raise _failure(exc, self.req, self.url) from exc
        if not chunk:
            self._eof = True
            _transport.release(self._raw)
            if self._traced is not None:
                self._traced.finish()
        return chunk

    def _ensure_reader(self) -> None:
        if self._eof:  # read to its end (for good: no lock needed to see it)
            return
        with self._lock:
            if self._reading or self._eof:
                return
            self._reading = True
        self._loop.ref()
        # where no thread can be started (an exit on Python 3.12.0-3.12.1) the response's
        # own loop reads, a buffer-full at a time (_reader)
        spawn(self._reader, stealable_by=self._loop if threads_refused() else None)

    def _reader(self) -> None:
        """On a worker: read ahead up to the high-water mark while flowing."""
        # On the loop's own thread (an exit where no thread can start) a full buffer ends
        # this read: _flush starts it again once the buffer is delivered.
        waits = self._loop.thread is not threading.current_thread()
        try:
            while True:
                with self._lock:
                    while waits and self._flowing and self._buffered >= HIGH_WATER:
                        self._cond.wait()
                    if not self._flowing or self._eof or self._buffered >= HIGH_WATER:
                        break
                sink = self._sink
                if sink is not None and sink.view is not None and not self._events.get("data"):
                    # A file and nobody listening: moved into it by the kernel where it can
                    # be (plain HTTP), else read into the sink's one buffer.
                    n = sink.splice(self)
                    if n is None:
                        n = self._read_raw_into(sink.view)
                        if n:
                            sink.write(sink.view[:n])
                    if n:
                        continue
                    chunk = b""
                else:
                    chunk = self._read_raw(SINK_CHUNK if sink is not None else CHUNK)
                if sink is not None and chunk:
                    sink.write(chunk)
                    if not self._events.get("data"):
                        # The file has it and nobody listens for 'data': no copy kept, and
                        # no wake-up of the loop per chunk (a late listener gets what follows).
                        continue
                with self._lock:
                    if chunk:
                        self._buffer.append(chunk)
                        self._buffered += len(chunk)
                self._loop.call_soon(self._flush)
                if not chunk:
                    break
        except BaseException as exc:  # noqa: BLE001
            self._loop.call_soon(self._fail, exc)
        finally:
            with self._lock:
                self._reading = False
                drop, self._eof = self._drop_when_read, self._eof or self._drop_when_read
                self._cond.notify_all()
            if drop:
                _transport.drop(self._raw)
            self._loop.unref()

    def _flush(self) -> None:
        """On the loop: deliver buffered chunks while flowing, then ``'end'``."""
        while self._flowing and self._buffer:
            with self._lock:
                chunk = self._buffer.popleft()
                self._buffered -= len(chunk)
                self._cond.notify_all()
            self.emit("data", self._decoder.decode(chunk) if self._decoder else chunk)
        if (self._flowing and self._eof and not self._buffer and not self._ended
                and not self._failed):
            self._ended = True
            if self._sink is not None:
                self._sink.end()
            self._emit_end()
        elif self._flowing and not self._eof:
            self._ensure_reader()

    def _emit_end(self) -> None:
        """``'end'``, then ``'close'``: none to make when nobody listens to this response
        (a body read(), a response resume()d only to free its connection)."""
        if self._events:
            self.emit("end")
            self.emit("close")

    def _fail(self, exc: BaseException) -> None:
        self._ended = True
        if self._sink is not None:
            self._sink.end()
        self.emit("error", exc)
        self.emit("close")


def _a_file_on_disk(dest: Any) -> bool:
    """Whether ``pipe()`` closes ``dest`` at the end: a regular file or a named pipe that
    is not a standard stream. Sockets, terminals and in-memory objects belong to others."""
    std = (sys.stdout, sys.stderr, getattr(sys.stdout, "buffer", None),
           getattr(sys.stderr, "buffer", None))
    if dest in std or not hasattr(dest, "close"):
        return False
    try:
        mode = os.fstat(dest.fileno()).st_mode
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
    return stat.S_ISREG(mode) or stat.S_ISFIFO(mode)


class _FileSink:
    """Writes a body into a file-like object on the reader's worker thread."""

    def __init__(self, dest: Any, close_at_end: bool) -> None:
        self.dest = dest
        self.close_at_end = close_at_end and _a_file_on_disk(dest)
        self.binary = not isinstance(dest, io.TextIOBase)
        # A real binary file copies what it is given before write() returns, so the
        # body can be read into one buffer, reused for every read (others keep bytes).
        real_file = isinstance(dest, (io.FileIO, io.BufferedWriter, io.BufferedRandom))
        self.view: Optional[memoryview] = (
            memoryview(bytearray(SINK_CHUNK)) if real_file else None)

        self.pipe: Optional[_transport.SplicePipe] = None
        self._spliceable: Optional[bool] = None  # whether splice may write dest (first use)

    def write(self, chunk: Union[bytes, memoryview]) -> None:
        self.dest.write(chunk if self.binary else bytes(chunk).decode("utf-8"))

    def splice(self, res: IncomingMessage) -> Optional[int]:
        """Bytes of ``res`` moved into the file at its position by the kernel (os.splice),
        after what Python's file object holds: None where that cannot be (TLS...)."""
        if self.view is None or not _transport.can_splice(res._raw):
            return None
        if self._spliceable is None:
            self._spliceable = _transport.can_splice_to(self.dest.fileno())
        if not self._spliceable:
            return None
        self.dest.flush()  # what it buffered goes first; it then writes where splice left
        if self.pipe is None:
            self.pipe = _transport.SplicePipe()
        try:
            return res._splice_raw(self.dest.fileno(), None, SINK_CHUNK, self.pipe)
        except BaseException:
            self._close_pipe()  # it may hold bytes of the cut body
            raise

    def _close_pipe(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
            self.pipe = None

    def end(self) -> None:
        self._close_pipe()
        flush = getattr(self.dest, "flush", None)
        if flush is not None:
            flush()
        if self.close_at_end:
            self.dest.close()
