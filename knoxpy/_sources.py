"""The pieces a transfer is made of: its options, its progress, and what an upload reads.

An upload reads its source on a worker, one part at a time and in order
(:class:`PartSource`), whatever the source is: a path, bytes, a file object, an
iterator of bytes, or a knoxpy readable, which is piped into an :class:`Inbox` on the
user's loop (Node's backpressure: ``write`` says False when full, ``'drain'`` follows).
Progress is counted by :class:`Meter` and posted to the user's loop.
"""
from __future__ import annotations

import io
import mmap
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Set, Tuple, Union

from . import _checksums, _js, _parts, _validate
from ._emitter import Emitter, Operation
from ._loop import PROGRESS_INTERVAL, Loop
from ._streams import IncomingMessage, _BodyPipe, _progress, to_bytes
from ._work import concurrency_option
from .client import Client
from .errors import IntegrityError, ValidationError

__all__ = ["CHECKSUMS", "DEFAULT_CONCURRENCY", "Inbox", "Meter", "Options", "PartBuffer",
           "PartSource", "Reader", "check_checksum", "key_of", "reader_for"]

DEFAULT_CONCURRENCY = 4  # parts (or ranges) in flight
_OPTIONS = {"partSize": "partSize", "part_size": "partSize", "concurrency": "concurrency",
            "sizeHint": "sizeHint", "size_hint": "sizeHint", "resume": "resume",
            "checksum": "checksum", "versionId": "versionId", "version_id": "versionId"}
CHECKSUMS = _checksums.CHOICES  # how an upload's bodies are protected (transfer._Checksum)


class Options:
    """``partSize``, ``concurrency`` (keyword, else client option), ``sizeHint``, ``resume``,
    ``checksum`` (None: chosen by the upload, docs/transfers.md), ``versionId`` (a
    download's version)."""

    def __init__(self, client: Client, given: Dict[str, Any]) -> None:
        opts: Dict[str, Any] = {}
        for name, value in _js.defined(given).items():
            if name not in _OPTIONS:
                raise ValidationError(f"unknown option {name!r} (known: checksum, "
                                      "concurrency, partSize, resume, sizeHint, versionId)")
            opts[_OPTIONS[name]] = value
        self.part_size = _parts.check_part_size(
            opts.get("partSize", client.options.get("partSize", _parts.DEFAULT_PART_SIZE)))
        self.concurrency = concurrency_option(client, opts.get("concurrency"),
                                              DEFAULT_CONCURRENCY)
        self.size_hint = _parts.check_size_hint(opts.get("sizeHint"))
        self.resume = _validate.flag("resume", opts.get("resume", False))
        self.version_id: Optional[str] = opts.get("versionId")  # downloads: that version
        if self.version_id is not None and (not isinstance(self.version_id, str)
                                            or not self.version_id):
            raise ValidationError(f"versionId must be a version id string, not "
                                  f"{self.version_id!r}")
        self.checksum: Optional[str] = check_checksum(opts.get("checksum"))


def check_checksum(value: Any) -> Optional[str]:
    """An upload's ``checksum`` (None: chosen by connection), checked; crc32c and crc64nvme
    only where awscrt is installed (the ``knoxpy[crc]`` extra)."""
    if value is None:
        return None
    if value not in CHECKSUMS:
        raise ValidationError(f"checksum must be one of {', '.join(CHECKSUMS)}, not {value!r}")
    _checksums.require(value)
    return str(value)


def key_of(filename: str) -> str:
    """The S3 key a knox filename names (``'/a/b'`` and ``'a/b'`` are key ``a/b``)."""
    if not isinstance(filename, str):
        raise ValidationError("filename must be a string")
    _validate.check_key(filename)
    return filename[1:] if filename.startswith("/") else filename



class Meter:
    """Bytes done, posted as ``'progress'`` to the user's loop: coalesced and monotonic.

    Upload parts report each attempt's high-water mark (a retried part is not counted
    twice); downloads add the bytes they receive (posted at most every
    ``PROGRESS_INTERVAL`` seconds, and when the total is reached). At most one emission is
    queued at a time, and it reports the latest count when it runs.
    """

    def __init__(self, op: Operation, total: Optional[int] = None) -> None:
        self._op = op
        self._lock = threading.Lock()
        self.total = total
        self.written = 0
        self._marks: Dict[int, int] = {}
        self._queued = False
        self._next = 0.0  # add(): when the next emission may be queued
        self._shown: Optional[Tuple[int, Optional[int]]] = None

    def mark(self, piece: int, high: int) -> None:
        with self._lock:
            grown = high - self._marks.get(piece, 0)
            if grown > 0:
                self._marks[piece] = high
                self.written += grown
                self._queue_locked()

    def add(self, n: int) -> None:
        """``n`` more bytes received; an emission is queued at most every
        ``PROGRESS_INTERVAL`` seconds, and when the total is reached."""
        with self._lock:
            self.written += n
            now = time.monotonic()
            if now >= self._next or (self.total is not None and self.written >= self.total):
                self._next = now + PROGRESS_INTERVAL
                self._queue_locked()

    def finish(self, total: int) -> None:
        """The total is known (at the latest at the end): the last event says 100%."""
        with self._lock:
            self.total = total
            self._queue_locked()

    def _queue_locked(self) -> None:
        if not self._queued:
            self._queued = True
            self._op._loop.call_soon(self._emit)

    def _emit(self) -> None:
        with self._lock:
            self._queued = False
            shown = (self.written, self.total)
        if shown != self._shown:
            self._shown = shown
            self._op.emit("progress", _progress(*shown))


# -- sources -----------------------------------------------------------------------------
class Inbox(Emitter):
    """Where a knoxpy readable source is piped: a bounded queue its worker reader drains.

    ``write`` runs on the user's loop (the readable's ``'data'``) and returns False past
    the high-water mark; ``'drain'`` is posted back once the worker has taken enough:
    Node's backpressure, with the same bounded pipe as ``ClientRequest``'s body.
    """

    def __init__(self, loop: Loop) -> None:
        super().__init__(loop)
        self._pipe = _BodyPipe(lambda: self._post("drain"))
        self._cancelled = False

    def write(self, chunk: Any) -> bool:
        if self._cancelled:
            return True  # the upload failed: what still arrives is dropped
        data = to_bytes(chunk)
        return self._pipe.put(data) if data else True

    def end(self, data: Any = None) -> None:
        if data is not None:
            self.write(data)
        self._pipe.close()

    def fail(self, err: BaseException) -> None:
        self._pipe.close(err)

    def cancel(self) -> None:
        self._cancelled = True
        self._pipe.close()

    def chunks(self) -> Iterator[bytes]:
        return iter(self._pipe)


class PartBuffer:
    """One worker's reusable part buffer: parts are read into it, never into fresh bytes.

    A fresh 8 MiB ``bytes`` per part costs an allocation (and on Linux page faults for
    memory the kernel must zero) plus a copy when pieces are joined; reading into one
    buffer per worker does neither, and bounds memory at part size x concurrency. It
    grows (never shrinks) for a stream whose parts grow.

    A large one is anonymous memory mapped with ``MAP_POPULATE`` where the OS has it
    (Linux): its pages come in one call, not one fault at a time, and are not zeroed a
    second time as ``bytearray(n)`` zeroes them (8 MiB: ~2 ms against ~3.4 ms here).
    """

    def __init__(self) -> None:
        self._buf: Union[bytearray, mmap.mmap] = bytearray()

    def view(self, n: int) -> memoryview:
        """``n`` writable bytes of the buffer (their old contents), grown if need be."""
        if len(self._buf) < n:
            self._buf = bytearray()  # let the old one go before allocating the new one
            self._buf = _allocate(n)
        return memoryview(self._buf)[:n]


_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux only


def _allocate(n: int) -> Union[bytearray, mmap.mmap]:
    if _POPULATE and n >= 1024 * 1024:
        return mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _POPULATE)
    return bytearray(n)


class Reader:
    """A source read in pieces of an exact size, by one worker at a time.

    Bytes given in memory (``data``) are sliced, never copied; a file is read with
    ``readinto`` into the caller's :class:`PartBuffer`; an iterator's chunks are copied
    into it.
    """

    def __init__(self, *, file: Any = None, chunks: Optional[Iterator[bytes]] = None,
                 data: Optional[memoryview] = None, size: Optional[int] = None,
                 path: Optional[str] = None, owned: bool = False,
                 inbox: Optional[Inbox] = None, upstream: Any = None) -> None:
        self.file, self.chunks, self.size, self.path = file, chunks, size, path
        self.owned, self.inbox, self.upstream = owned, inbox, upstream
        self._data = data
        self._pos = 0  # where in ``data`` the next read starts
        self._pending = b""
        readinto = getattr(file, "readinto", None)
        self._readinto: Optional[Callable[[memoryview], Optional[int]]] = readinto

    def _next(self, want: int) -> Optional[bytes]:
        """The next chunk (up to ``want`` bytes from a file); None at the end."""
        if self.file is not None:
            data = self.file.read(want)
            return to_bytes(data) if data else None
        assert self.chunks is not None
        return next(self.chunks, None)

    @property
    def buffered(self) -> bool:
        """Whether parts are read into a :class:`PartBuffer` (not slices of bytes given)."""
        return self._data is None

    def read_part(self, n: int, buf: PartBuffer) -> memoryview:
        """``n`` bytes, or fewer at the end: a slice of ``data``, else read into ``buf``."""
        if self._data is not None:
            start = self._pos
            self._pos = min(len(self._data), start + n)
            return self._data[start:self._pos]
        view = buf.view(n)
        got = 0
        if self._pending:
            got = min(n, len(self._pending))
            view[:got] = self._pending[:got]
            self._pending = self._pending[got:]
        while got < n:
            if self._readinto is not None:
                k = self._readinto(view[got:])
                if not k:  # 0 at the end (None: a non-blocking file with nothing yet)
                    break
                got += k
                continue
            chunk = self._next(n - got)
            if chunk is None:
                break
            k = min(len(chunk), n - got)
            view[got:got + k] = chunk[:k]
            if k < len(chunk):
                self._pending = chunk[k:]
            got += k
        return view[:got]

    def at_end(self) -> bool:
        if self._data is not None:
            return self._pos >= len(self._data)
        while not self._pending:  # an iterator may yield empty chunks mid-stream
            nxt = self._next(1)
            if nxt is None:
                return True
            self._pending = nxt
        return False

    def skip(self, n: int) -> int:
        """Pass over ``n`` bytes (a part already uploaded); returns how many there were."""
        if self._data is not None:
            return len(self.read_part(n, PartBuffer()))
        if self.file is not None and self.size is not None and not self._pending:
            here = self.file.tell()
            n = max(0, min(n, self.size - here))
            self.file.seek(here + n)
            return n
        buf = PartBuffer()
        skipped = 0
        while skipped < n:  # in pieces: a skipped part is not held whole
            got = len(self.read_part(min(n - skipped, 1024 * 1024), buf))
            if not got:
                break
            skipped += got
        return skipped

    def close(self, failed: bool, loop: Loop) -> None:
        if self.owned:
            self.file.close()
        if failed and self.inbox is not None:
            self.inbox.cancel()
            destroy = getattr(self.upstream, "destroy", None)
            if destroy is not None:  # stop the source too: on its own loop, as it expects
                loop.call_soon(destroy)


def reader_for(source: Any, loop: Loop) -> Reader:
    """Open ``source`` (on the user's thread): a path, bytes, a file, a readable, an iterator."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)  # bytes as they are; a mutable buffer is copied once
        return Reader(data=memoryview(data), size=len(data))
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        f = open(path, "rb")
        return Reader(file=f, size=os.fstat(f.fileno()).st_size, path=path, owned=True)
    if isinstance(source, IncomingMessage) or (hasattr(source, "pipe") and hasattr(source, "on")):
        size: Optional[int] = None
        if isinstance(source, IncomingMessage):
            if source.statusCode >= 300:
                raise ValidationError(f"upload: the source response is a {source.statusCode}, "
                                      "not a body to upload")
            length = source.headers.get("content-length")
            size = int(length) if length is not None and length.isdigit() else None
        inbox = Inbox(loop)
        source.on("error", inbox.fail)
        source.pipe(inbox)
        return Reader(chunks=inbox.chunks(), size=size, inbox=inbox, upstream=source)
    if hasattr(source, "read"):
        try:
            here = source.tell()
            size = source.seek(0, io.SEEK_END) - here
            source.seek(here)
        except (AttributeError, OSError, ValueError):
            size = None  # a pipe or socket: length unknown
        return Reader(file=source, size=size)
    if isinstance(source, Iterable):
        return Reader(chunks=(to_bytes(c) for c in source))
    raise ValidationError("upload: the source must be a path, bytes, a file object, "
                          "an iterator of bytes or a knoxpy readable")


class PartSource:
    """Parts taken in order from one reader, by whichever worker is free.

    Each worker passes its own :class:`PartBuffer`: the part it gets back is a view of
    that buffer (or of the source's bytes), valid until it asks for the next one.
    """

    def __init__(self, reader: Reader, size_of: Callable[[int], int],
                 first: Optional[memoryview] = None, skip: Optional[Set[int]] = None) -> None:
        self._reader, self._size_of, self._first = reader, size_of, first
        self._skip = skip or set()
        self._lock = threading.Lock()
        self._number = 0
        self._done = False
        self.total = 0  # bytes read or skipped so far

    def next(self, buf: PartBuffer) -> Optional[Tuple[int, memoryview]]:
        if self._reader.buffered and not self._done:
            # The buffer is made (its pages faulted in) before the lock, which serialises
            # reads: on a first part, workers fault in their buffers at once. The part's
            # number is peeked without the lock: a wrong guess only sizes the buffer.
            buf.view(self._size_of(self._number + 1))
        with self._lock:
            while not self._done:
                self._number += 1
                number, want = self._number, self._size_of(self._number)
                if number == 1 and self._first is not None:
                    data, self._first = self._first, None
                elif number in self._skip:
                    skipped = self._reader.skip(want)
                    self.total += skipped
                    self._done = skipped < want
                    continue
                else:
                    data = self._reader.read_part(want, buf)
                if not data:
                    self._done = True
                    return None
                if number > _parts.MAX_PARTS:
                    raise ValidationError("the source is larger than S3's largest object "
                                          "(10,000 parts)")
                self.total += len(data)
                self._done = len(data) < want
                size = self._reader.size
                if size is not None and self.total > size:
                    raise IntegrityError(f"the source gave more than the {size} bytes it had "
                                         "when the upload began")
                return number, data
            return None
