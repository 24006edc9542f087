"""``client.download``: an object of any size, to a path or a writable, verified.

The first ranged GET learns the size and ETag; the rest of a large object comes as
parallel ranged GETs with If-Match on that ETag. Every answer must be the range asked
for (Content-Range start, end, total; Content-Length) with the first answer's ETag, as
a store that ignores If-Match would otherwise have two versions stitched into one file;
a 200 without Content-Length is read to its end. To a path, bytes go to a new
``.<name>.<random>.knoxpy-part`` (``<path>.knoxpy-part`` when resumable) and are
renamed into place only once verified; to a writable, ranges fetched ahead wait for
their turn, so bytes arrive in order. Verified: the length, the MD5 where the ETag is
one, and the checksum S3 keeps (``x-amz-checksum-mode: ENABLED``; a HEAD asks it when
the ranges hide it): a FULL_OBJECT CRC from the CRCs of the ranges combined in order
(knoxpy._checksums), a single PUT's SHA hashed as the MD5; a COMPOSITE checksum part by
part: one HEAD ``?partNumber=k`` per part gives its length and checksum, the ranges then
follow the part boundaries, and the parts' checksums must make the stored one. See
docs/transfers.md, and knoxpy.transfer for the thread picture.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, cast

from . import _checksums, _parts, _retry, _transport, _validate
from ._emitter import Emitter, Operation
from ._sources import Meter, Options, key_of
from ._streams import IncomingMessage
from ._work import Session, Shared, fan_out, key_target, parallel_map
from .client import Client
from .errors import IntegrityError, RequestError, S3Error, ValidationError

__all__ = ["PARTIAL_SUFFIX", "Download", "bare_etag", "checked_range", "content_length"]

log = logging.getLogger("knoxpy")

PARTIAL_SUFFIX = _parts.PARTIAL_SUFFIX  # <path>.knoxpy-part: a resumable download's, + .jsonl
# Endpoints that refused x-amz-checksum-mode (400 InvalidArgument): downloads from them
# check the length and the MD5 ETag only, as before stored checksums.
_NO_CHECKSUM_MODE: Set[str] = set()
_SSE_C = "x-amz-server-side-encryption-customer-"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_O_BINARY = getattr(os, "O_BINARY", 0)
# Bytes per read of a range's body. Into a writable, each is a fresh bytes object
# (http.client's): at 1 MiB glibc hands such blocks back to the kernel and faults them in
# again on some runs (measured: 2-3 s of system time per GiB instead of 0.9), at 256 KiB
# it does not. Into a file, every read goes into one buffer per range, reused, so it can
# be larger: a quarter of the reads, writes and progress counts per byte.
READ_SIZE = 256 * 1024
FILE_READ_SIZE = 1024 * 1024
_PartHead = Tuple[int, str, Optional[int]]  # a part's length, checksum, and the count of parts


def bare_etag(etag: Any) -> str:
    """An ETag without its quotes, lower-case: how two ETags are compared."""
    return str(etag or "").strip().strip('"').lower()


def _write_at(fd: int, data: bytes, offset: int, lock: threading.Lock) -> None:
    pwrite = getattr(os, "pwrite", None)
    view = memoryview(data)
    if pwrite is not None:
        while view:
            n = pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
        return
    with lock:  # no pwrite (Windows): seek and write under one lock
        os.lseek(fd, offset, os.SEEK_SET)
        while view:
            view = view[os.write(fd, view):]


def _read_at(fd: int, n: int, offset: int, lock: threading.Lock) -> bytes:
    pread = getattr(os, "pread", None)
    if pread is not None:
        return bytes(pread(fd, n, offset))
    with lock:  # no pread (Windows): seek and read under the writers' lock
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, n)


def content_length(res: IncomingMessage, name: str) -> Optional[int]:
    """The answer's Content-Length; None without one; IntegrityError (naming ``name``, the
    object) if it is malformed."""
    value = res.headers.get("content-length")
    if value is None:
        return None
    try:
        return _validate.content_length(value)
    except ValidationError:
        res._discard()
        raise IntegrityError(f"the answer for {name} has Content-Length {value!r}, "
                             "not a number of bytes") from None


def checked_range(res: IncomingMessage, first: int, last: int, size: Optional[int],
                  etag: Optional[str], name: str, doing: str = "download") -> Tuple[int, int]:
    """(last byte, object size) of the answer to ``Range: bytes=first-last``, once it is
    checked to be that range of this very object: a 206 whose Content-Range starts at
    ``first``, ends at ``last`` (or the object's end), of total ``size`` (None: any, as for
    a first answer), with a matching Content-Length and, unless ``etag`` is None, that
    ETag. Anything else is an IntegrityError naming what was asked for and what came
    (``name``: the object, as the message shows it; ``doing``: what a changed object
    interrupted). Every ranged read (``client.download``, knoxpy.fs's large reads) checks
    its answers here: a store that ignores If-Match or lies in Content-Range must never
    have its bytes stitched in at the wrong place, or from another version.
    """
    value = res.headers.get("content-range", "")
    m = _CONTENT_RANGE.fullmatch(value.strip())
    got = (int(m[1]), int(m[2]), int(m[3])) if m else None
    asked = f"asked for bytes {first}-{last} of {name}" + \
        (f" ({size} bytes)" if size is not None else "")
    problem = None
    if res.statusCode != 206:
        problem = f"got {res.statusCode} with " + \
            (f"Content-Range {value!r}" if value else "no Content-Range")
    elif got is None or got != (first, min(last, got[2] - 1), got[2] if size is None else size):
        problem = f"got Content-Range {value!r}"
    elif content_length(res, name) not in (None, got[1] - got[0] + 1):
        problem = (f"got Content-Range {value!r} with Content-Length "
                   f"{res.headers.get('content-length')}")
    elif etag is not None and bare_etag(res.headers.get("etag")) != bare_etag(etag):
        problem = (f"the object changed during the {doing} (ETag {etag}, now "
                   f"{res.headers.get('etag')}) and the store ignored If-Match; "
                   f"{doing} it again")
    if problem is not None:
        res._discard()
        raise IntegrityError(f"{asked}, {problem}")
    assert got is not None
    return got[1], got[2]


class _Hashes:
    """Hashes of bytes given in order: MD5 (to compare with an ETag) and the stored SHA-1 or
    SHA-256 checksum's algorithm, if the object has one (a SHA is not combinable by range)."""

    def __init__(self, names: Tuple[str, ...]) -> None:
        self.by_name = {name: hashlib.new(name) for name in names}

    def update(self, data: Any) -> None:
        for h in self.by_name.values():
            h.update(data)

    def hexdigest(self) -> str:
        return str(self.by_name["md5"].hexdigest())

    def b64(self, name: str) -> str:
        return _checksums.encode(name, self.by_name[name].digest())


class _PrefixMd5:
    """The MD5 of a file whose ranges are written out of order, hashed as its prefix grows.

    An object stored by one PUT has its MD5 as ETag, but its ranges arrive in any order:
    hashing the whole file once it is complete would add a full MD5 pass (~0.6 GB/s)
    after the download. Instead, each worker reports the range it wrote (:meth:`done`);
    whichever finds the hasher free hashes every range that now continues the hashed
    prefix, read back from the page cache, while the other workers keep fetching.
    ``hashlib`` releases the GIL on large buffers, so the hashing overlaps the I/O.
    """

    def __init__(self, fd: int, lock: threading.Lock, names: Tuple[str, ...] = ("md5",)
                 ) -> None:
        self._fd, self._fd_lock = fd, lock
        self._md5 = _Hashes(names)
        self._pos = 0  # bytes hashed so far
        self._ready: Dict[int, int] = {}  # first byte -> last byte of ranges written
        self._lock = threading.Lock()  # guards _ready
        self._hashing = threading.Lock()  # one hasher at a time (_pos, _md5)

    def done(self, first: int, last: int) -> None:
        with self._lock:
            self._ready[first] = last
        self._advance(block=False)

    def hexdigest(self) -> str:
        return self.hashes().hexdigest()

    def hashes(self) -> _Hashes:
        self._advance(block=True)
        return self._md5

    def _advance(self, block: bool) -> None:
        while self._hashing.acquire(blocking=block):
            try:
                while True:
                    with self._lock:
                        last = self._ready.pop(self._pos, None)
                    if last is None:
                        break
                    self._hash(self._pos, last)
                    self._pos = last + 1
            finally:
                self._hashing.release()
            with self._lock:  # a range that came in just before the release: go on
                if self._pos not in self._ready:
                    return

    def _hash(self, first: int, last: int) -> None:
        pos = first
        while pos <= last:
            data = _read_at(self._fd, min(READ_SIZE, last + 1 - pos), pos, self._fd_lock)
            if not data:
                raise IntegrityError("the partial file is shorter than what was written")
            self._md5.update(data)
            pos += len(data)


class Download:
    """One download, driven on a worker: the first range, then the rest in parallel."""

    def __init__(self, client: Client, op: Operation, filename: str, dest: Any,
                 headers: Dict[str, Any], opts: Options) -> None:
        self.client, self.op, self.opts, self.headers = client, op, opts, headers
        self.key = key_of(filename)
        self.target = key_target(self.key)
        if opts.version_id is not None:  # every range of that version, never the latest
            self.target += "?versionId=" + urllib.parse.quote(opts.version_id, safe="")
        self.path = os.fspath(dest) if isinstance(dest, (str, os.PathLike)) else None
        self.dest = dest
        self.meter = Meter(op)
        self.part = opts.part_size
        self.etag: Optional[str] = None
        self.size = 0
        self.check_md5 = False
        self.md5: Any = None  # a running _Hashes (MD5, a stored SHA) while bytes arrive in order
        # The stored checksum (x-amz-checksum-mode: ENABLED) the bytes must have: a CRC is
        # checked by combining the CRCs of the ranges in order (``crcs``: first byte ->
        # (CRC, length)), a SHA by hashing the whole (as the MD5).
        self.stored: Optional[_checksums.Stored] = None
        self.crcs: Dict[int, Tuple[int, int]] = {}
        # A COMPOSITE checksum, checked part by part once the parts are known (_learn_parts).
        self.composite: Optional[_checksums.Stored] = None
        self.part_sums: Optional[_checksums.PartSums] = None
        self._lock = threading.Lock()
        self._buffers: List[memoryview] = []  # read buffers free for the next range (a file)
        self._splice_fd: Optional[int] = None  # the partial file, while ranges go into it

    def _session(self, session: Session) -> Session:
        session.on_redirect = lambda info: self.op._post("redirect", info)
        return session

    def _post_retry(self, info: Any) -> None:
        self.op._post("retry", info)

    def run(self) -> Dict[str, Any]:
        session = self._session(Session(self._post_retry))
        if self.path is None:
            self._to_writable(session)
        else:
            self._to_path(session, self.path)
        return {"Key": self.key, "size": self.size, "ETag": self.etag, "path": self.path}

    def _learn(self, res: IncomingMessage) -> None:
        """ETag and verifiability from the first answer (a GET, or the HEAD of a resume)."""
        self.etag = res.headers.get("etag")
        sse = res.headers.get("x-amz-server-side-encryption", "")
        self.check_md5 = _parts.is_md5_etag(self.etag) and not sse.startswith("aws:kms") and \
            _SSE_C + "algorithm" not in res.headers  # KMS and SSE-C ETags are not MD5s
        self._learn_checksum(res)

    def _learn_checksum(self, res: IncomingMessage) -> bool:
        """The stored checksum an answer gives, if it is one this download can check."""
        stored = _checksums.stored_checksum(res.headers, self.etag)
        if stored is None:
            return False
        if stored.verifiable:
            self.stored = stored
        elif stored.per_part:
            self.composite = stored
        else:
            log.debug("knoxpy: %r has a %s %s checksum: not verified (%s)", self.key,
                      stored.kind, stored.algorithm.upper(), stored.why_not)
        return True

    def _hash_names(self) -> Tuple[str, ...]:
        """What is hashed in order: MD5, and the stored checksum if it is a SHA."""
        stored = self.stored
        return ("md5",) + ((stored.algorithm,) if stored is not None and not stored.crc else ())

    def _checksum_headers(self) -> Dict[str, Any]:
        headers = dict(self.headers)
        if self.client.endpoint not in _NO_CHECKSUM_MODE:
            headers["x-amz-checksum-mode"] = "ENABLED"
        return headers

    def _ask_checksum(self, session: Session, whole: bool) -> None:
        """After a first answer without a checksum (S3 gives none for a Range that is not
        the whole object): ask a HEAD, unless the MD5 of the ETag already covers the bytes."""
        if self.client.endpoint in _NO_CHECKSUM_MODE or (whole and self.check_md5) \
                or self.stored is not None or self.composite is not None:
            return
        headers = self._checksum_headers()
        if self.etag:
            headers["If-Match"] = self.etag
        res = session.open(self.client, "HEAD", self.target, headers)
        res.read()
        self._learn_checksum(res)

    def _learn_parts(self, session: Session) -> None:
        """For a COMPOSITE checksum: each part's length and checksum, from one HEAD
        ``?partNumber=k`` each (the way S3 gives a part's checksum), so that the bytes can be
        checked part by part. A store that gives no part's checksum: not checked (logged)."""
        stored = self.composite
        if stored is None:
            return
        first = self._head_part(session, 1)
        count = stored.parts or (first[2] if first is not None else None)
        found: List[Optional[_PartHead]] = []
        if first is not None and count is not None and 1 <= count <= _parts.MAX_PARTS:
            rest: List[Optional[_PartHead]] = parallel_map(
                self.opts.concurrency, lambda s, k: self._head_part(self._session(s), k),
                list(range(2, count + 1)), self._post_retry)
            found = [first, *rest]
        layout = [(got[0], got[1]) for got in found if got is not None]
        if count is None or len(layout) != count or sum(n for n, _ in layout) != self.size:
            log.debug("knoxpy: %r has a COMPOSITE %s checksum: not verified (the store gave "
                      "no checksum of each part)", self.key, stored.algorithm.upper())
            return
        self.part_sums = _checksums.PartSums(stored.algorithm, layout)

    def _head_part(self, session: Session, k: int) -> Optional[_PartHead]:
        """(length, checksum, count of parts) of part ``k``; None if the store says none."""
        assert self.composite is not None
        name = self.composite.algorithm
        headers = self._checksum_headers()
        if self.etag:
            headers["If-Match"] = self.etag
        sep = "&" if "?" in self.target else "?"
        try:
            res = session.open(self.client, "HEAD", f"{self.target}{sep}partNumber={k}", headers)
        except S3Error as err:
            log.debug("knoxpy: HEAD of part %d of %r: %s", k, self.key, err.code)
            return None
        res.read()
        length = self._content_length(res)
        value = str(res.headers.get(f"x-amz-checksum-{name}") or "").strip()
        count = res.headers.get("x-amz-mp-parts-count")
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raw = b""
        if length is None or len(raw) != _checksums.size_of(name):
            return None  # no checksum of the part (or the whole object's, "value-N")
        return length, value, int(str(count)) if str(count or "").isdigit() else None

    def _part_ranges(self, start: int) -> List[Tuple[int, int]]:
        """The ranges from byte ``start`` on, one per part (a part's bytes come in order)."""
        assert self.part_sums is not None
        return [(max(a, start), a + n - 1) for a, (n, _) in
                zip(self.part_sums.starts, self.part_sums.layout) if a + n > start]

    def _check_parts(self) -> None:
        """Each part's bytes against its checksum, and the parts' against the stored one."""
        sums, stored = self.part_sums, self.composite
        if sums is None or stored is None:
            return
        problem = sums.problem(self.key)
        made = sums.composite()
        want = stored.value if stored.parts else stored.value + made[made.rindex("-"):]
        if problem is None and made != want:
            problem = (f"the parts' checksums of {self.key!r} do not make its stored COMPOSITE "
                       f"{stored.algorithm.upper()} checksum: S3 gave {stored.value}, the "
                       f"parts make {made}")
        if problem is not None:
            raise IntegrityError(problem)

    def _check_checksum(self, hashes: Any) -> None:
        """The bytes against their stored checksum; an IntegrityError naming both values."""
        self._check_parts()
        stored = self.stored
        if stored is None:
            return
        if stored.crc:
            pos, pieces = 0, []
            for first in sorted(self.crcs):
                crc, length = self.crcs[first]
                if first != pos:
                    raise IntegrityError(f"bytes {pos}-{first - 1} of {self.key!r} were not "
                                         "checksummed")
                pieces.append((crc, length))
                pos += length
            got = _checksums.encode(stored.algorithm,
                                    _checksums.combine_all(stored.algorithm, pieces))
        else:
            got = hashes.b64(stored.algorithm)
        if got != stored.value:
            raise IntegrityError(f"the bytes of {self.key!r} do not match their stored "
                                 f"{stored.algorithm.upper()} checksum: S3 gave {stored.value}, "
                                 f"the bytes make {got}")

    def _count_crc(self, first: int, running: Optional[_checksums.Running], length: int
                   ) -> None:
        if running is not None:
            with self._lock:
                self.crcs[first] = (int(running.value()), length)

    def _crc_running(self) -> Optional[_checksums.Running]:
        stored = self.stored
        return _checksums.Running(stored.algorithm) if stored is not None and stored.crc \
            else None

    def _crc_of_file(self, fd: int, first: int, last: int) -> None:
        """A range kept from an earlier attempt (resume): its CRC, read back from the file."""
        running = self._crc_running()
        if running is None:
            return
        pos = first
        while pos <= last:
            data = _read_at(fd, min(READ_SIZE, last + 1 - pos), pos, self._lock)
            if not data:
                raise IntegrityError("the partial file is shorter than its journal says")
            running.update(data)
            pos += len(data)
        self._count_crc(first, running, last - first + 1)

    def _first(self, session: Session) -> Tuple[IncomingMessage, Optional[int]]:
        """The first answer and its last byte; None for a 200 without Content-Length (a
        chunked one), whose size is known only once it has been read to its end."""
        headers = self._checksum_headers()
        headers["Range"] = f"bytes=0-{self.part - 1}"
        try:
            res = session.open(self.client, "GET", self.target, headers)
        except S3Error as err:
            if "x-amz-checksum-mode" in headers and _parts.checksum_refused(
                    err.statusCode, err.code, err.message):
                _NO_CHECKSUM_MODE.add(self.client.endpoint)  # a store that refuses it
                return self._first(session)
            if err.statusCode != 416:
                raise
            del headers["Range"]  # an empty object: S3 refuses every range of it
            res = session.open(self.client, "GET", self.target, headers)
        self._learn(res)
        last: Optional[int]
        if res.statusCode == 200:  # the whole object (an empty one, or the Range ignored)
            length = self._content_length(res)
            self.size = length or 0
            last = None if length is None else length - 1
        else:
            last, self.size = self._checked_range(res, 0, self.part - 1, None)
        self.meter.total = None if last is None else self.size
        self._ask_checksum(session, last is None or last + 1 >= self.size)
        self._learn_parts(session)
        return res, last

    def _content_length(self, res: IncomingMessage) -> Optional[int]:
        return content_length(res, self.key)

    def _checked_range(self, res: IncomingMessage, first: int, last: int,
                       size: Optional[int]) -> Tuple[int, int]:
        """:func:`checked_range` for this download: after the first answer, ``size`` and
        the first answer's ETag are what every answer must have."""
        etag = None if size is None else (self.etag or "")
        return checked_range(res, first, last, size, etag, repr(self.key))

    def _fetch(self, session: Session, first: int, last: int,
               sink: Callable[[int, Any], None], res: Optional[IncomingMessage] = None,
               reuse: bool = False) -> None:
        """Bytes ``first..last`` into ``sink(offset, chunk)``; a body cut short is asked
        for again from where it stopped (with backoff), never handed on short.

        ``reuse``: the sink is done with each chunk when it returns (a file), so every
        chunk is read into one buffer, a view of it; else each is fresh ``bytes``.
        """
        buf = self._take_buffer() if reuse else None
        try:
            self._fetch_into(session, first, last, sink, res, buf)
        finally:
            if buf is not None:
                self._buffers.append(buf)

    def _take_buffer(self) -> memoryview:
        """A read buffer of FILE_READ_SIZE, one of those the ranges before gave back: a
        fresh 1 MiB block per range would cost its page faults every time."""
        try:
            return self._buffers.pop()
        except IndexError:
            return memoryview(bytearray(FILE_READ_SIZE))

    def _fetch_into(self, session: Session, first: int, last: int,
                    sink: Callable[[int, Any], None], res: Optional[IncomingMessage],
                    buf: Optional[memoryview]) -> None:
        size = READ_SIZE if buf is None else len(buf)
        pos, attempt, backoff = first, 0, self.client._backoff
        running = self._crc_running()  # the range's CRC, as its bytes pass
        # Into the file by the kernel (os.splice) when no hash needs the bytes here in
        # order: plain HTTP only (TLS is decrypted in Python's ssl), Linux only.
        fd = self._splice_fd if buf is not None and running is None and self.md5 is None \
            and self.part_sums is None and not self.client.secure else None
        pipe: Optional[_transport.SplicePipe] = None
        try:
            while pos <= last:
                if res is None:
                    headers = dict(self.headers)
                    headers["Range"] = f"bytes={pos}-{last}"
                    if self.etag:
                        headers["If-Match"] = self.etag  # a changed object fails, never mixes
                    res = session.open(self.client, "GET", self.target, headers)
                    self._checked_range(res, pos, last, self.size)
                try:
                    while pos <= last:
                        want = min(size, last + 1 - pos)
                        if fd is not None and pipe is None:
                            pipe = _transport.SplicePipe()
                        moved = None if pipe is None else \
                            res._splice_into(cast(int, fd), pos, want, pipe)
                        if moved is not None:  # in the file already (the sink's job)
                            self.meter.add(moved)
                            pos += moved
                            continue
                        chunk: Any = (res.read(want) if buf is None
                                      else buf[:res.readinto(buf[:want])])
                        if not chunk:
                            raise RequestError("response body ended early", "ECONNRESET",
                                               method="GET", url=res.url)
                        if len(chunk) > last + 1 - pos:
                            raise IntegrityError(
                                f"got more than bytes {first}-{last} of {self.key!r}")
                        if running is not None:
                            running.update(chunk)
                        sink(pos, chunk)
                        self.meter.add(len(chunk))
                        pos += len(chunk)
                except RequestError as err:
                    if pipe is not None:  # it may hold bytes of the cut body
                        pipe.close()
                        pipe = None
                    reason = _retry.transient_reason(None, err.code)
                    if reason is None or attempt >= backoff.max_retries:
                        raise
                    delay = backoff.delay(attempt)
                    attempt += 1
                    self._post_retry({"reason": reason, "delay": delay, "attempt": attempt})
                    time.sleep(delay)
                    res = None
        finally:
            if pipe is not None:
                pipe.close()
        if res is not None:
            res.read()  # reach the end: the connection goes back to the pool
        self._count_crc(first, running, last - first + 1)

    def _fetch_first(self, session: Session, res: IncomingMessage, last: Optional[int],
                     sink: Callable[[int, Any], None], reuse: bool = False) -> int:
        """The first answer's bytes into ``sink``; returns its last byte. Without a length
        (``last`` None) the body is read to its end, and that is the object's size: a cut
        one cannot be asked for again from where it stopped, so it fails."""
        if last is not None:
            self._fetch(session, 0, last, sink, res, reuse)
            return last
        buf = self._take_buffer() if reuse else None
        pos = 0
        running = self._crc_running()
        while True:
            chunk: Any = res.read(READ_SIZE) if buf is None else buf[:res.readinto(buf)]
            if not chunk:
                break
            if running is not None:
                running.update(chunk)
            sink(pos, chunk)
            self.meter.add(len(chunk))
            pos += len(chunk)
        if buf is not None:
            self._buffers.append(buf)
        self.size = pos
        self.meter.finish(pos)
        self._count_crc(0, running, pos)
        return pos - 1

    def _parallel(self, ranges: List[Tuple[int, int]],
                  each: Callable[[Session, int, int, threading.Event], None]) -> None:
        shared = Shared(iter(ranges))

        def work(s: Session, stop: threading.Event) -> None:
            self._session(s)
            while not stop.is_set():
                rng = shared.next()
                if rng is None:
                    return
                each(s, rng[0], rng[1], stop)

        if ranges:
            fan_out(min(self.opts.concurrency, len(ranges)), work, self._post_retry)

    def _check_md5(self, digest: Optional[str]) -> None:
        if self.check_md5 and digest != bare_etag(self.etag):
            raise IntegrityError(f"the bytes of {self.key!r} do not match its ETag "
                                 f"{self.etag} (MD5 {digest})")

    # -- to a path: a partial file beside the final name, renamed once verified -----------
    def _to_path(self, session: Session, path: str) -> None:
        tmp = path + PARTIAL_SUFFIX  # a resumable download's: a name to find it again by
        journal = _parts.Journal(tmp + ".jsonl") if self.opts.resume else None
        ours = journal is not None  # whether tmp is this download's to remove
        fd: Optional[int] = None
        try:
            done = self._resume(session, tmp, journal) if journal is not None else None
            prefix: Optional[_PrefixMd5] = None
            if done is not None:
                fd = os.open(tmp, os.O_RDWR | _O_BINARY)
                self._splice_fd = fd
                todo = [r for r in _parts.byte_ranges(self.size, self.part) if r not in done]
                self.meter.add(sum(b - a + 1 for a, b in done))
                in_order = False
                for a, b in done:
                    self._crc_of_file(fd, a, b)
                if self.check_md5 or len(self._hash_names()) > 1:
                    prefix = _PrefixMd5(fd, self._lock, self._hash_names())
                    for a, b in sorted(done):
                        prefix.done(a, b)
            else:
                res, first_last = self._first(session)
                if first_last is None and journal is not None:
                    journal.remove()  # no length, no ranges: nothing to resume by
                    journal = None
                if journal is None:  # a new, unguessable name: never a file of someone else's
                    fd, tmp = _parts.create_partial(path)
                    ours = True
                else:
                    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | _O_BINARY, 0o666)
                os.ftruncate(fd, self.size)
                self._splice_fd = fd
                if journal is not None:
                    journal.start({"kind": "download", "bucket": self.client.bucket,
                                   "key": self.key, "ETag": self.etag, "size": self.size,
                                   "partSize": self.part})
                in_order = first_last is None or first_last + 1 >= self.size
                self.md5 = _Hashes(self._hash_names()) if in_order else None  # as it arrives
                if (self.check_md5 or len(self._hash_names()) > 1) and not in_order:
                    prefix = _PrefixMd5(fd, self._lock, self._hash_names())
                last = self._fetch_first(session, res, first_last, self._file_sink(fd),
                                         reuse=True)
                if journal is not None and last >= 0:
                    journal.add({"start": 0, "end": last})
                if prefix is not None:
                    prefix.done(0, last)
                todo = _parts.byte_ranges(self.size, self.part, last + 1) \
                    if self.part_sums is None else self._part_ranges(last + 1)
            sink = self._file_sink(fd)

            def each(s: Session, a: int, b: int, _stop: threading.Event) -> None:
                self._fetch(s, a, b, sink, reuse=True)
                if journal is not None:
                    with self._lock:
                        journal.add({"start": a, "end": b})
                if prefix is not None:
                    prefix.done(a, b)

            self._parallel(todo, each)
            if os.fstat(fd).st_size != self.size:
                raise IntegrityError(f"{tmp} is not {self.size} bytes long")
            hashes = self.md5 if prefix is None else prefix.hashes()
            if self.check_md5:
                self._check_md5(hashes.hexdigest())
            self._check_checksum(hashes)
            self._splice_fd = None
            os.close(fd)
            fd = None
            os.replace(tmp, path)
            if journal is not None:
                journal.remove()
        except BaseException as err:
            self._splice_fd = None
            if fd is not None:
                os.close(fd)
            if ours and (journal is None or isinstance(err, IntegrityError)):
                _remove(tmp)  # nothing truncated or wrong is left behind
                if journal is not None:
                    journal.remove()
            raise

    def _file_sink(self, fd: int) -> Callable[[int, Any], None]:
        def sink(offset: int, chunk: Any) -> None:
            if self.md5 is not None:
                self.md5.update(chunk)
            if self.part_sums is not None:
                self.part_sums.feed(offset, chunk)
            _write_at(fd, chunk, offset, self._lock)
        return sink

    def _resume(self, session: Session, tmp: str, journal: _parts.Journal
                ) -> Optional[Set[Tuple[int, int]]]:
        """Verified ranges to keep, if the partial file is of this very object; else None."""
        loaded = journal.load()
        if loaded is None or not os.path.exists(tmp):
            return None
        header, entries = loaded
        if header.get("bucket") != self.client.bucket or header.get("key") != self.key \
                or not isinstance(header.get("partSize"), int):
            return None
        res = session.open(self.client, "HEAD", self.target, self._checksum_headers())
        etag, size = res.headers.get("etag"), self._content_length(res)
        if size is None or etag != header.get("ETag") or size != header.get("size") \
                or os.path.getsize(tmp) != size:
            return None  # the object changed (or the file did): start over
        self.part = max(1, int(header["partSize"]))
        self._learn(res)
        self.size, self.meter.total = size, size
        ranges = set(_parts.byte_ranges(size, self.part))
        return {(e["start"], e["end"]) for e in entries
                if (e.get("start"), e.get("end")) in ranges}

    # -- to a writable: bytes in order, ranges fetched ahead in parallel ------------------
    def _to_writable(self, session: Session) -> None:
        write = self._writer()
        res, first_last = self._first(session)
        self.md5 = _Hashes(self._hash_names()) \
            if self.check_md5 or len(self._hash_names()) > 1 else None
        last = self._fetch_first(session, res, first_last, lambda _off, chunk: write(chunk))
        turn = [last + 1]
        cond = threading.Condition(threading.Lock())

        def each(s: Session, a: int, b: int, stop: threading.Event) -> None:
            got: List[bytes] = []
            self._fetch(s, a, b, lambda _off, chunk: got.append(chunk))
            with cond:  # a range waits for the one before it (at most `concurrency` held)
                while turn[0] != a:
                    if stop.is_set():  # an earlier range failed: it will never be its turn
                        return
                    cond.wait(0.05)
            for chunk in got:
                write(chunk)
            with cond:
                turn[0] = b + 1
                cond.notify_all()

        self._parallel(_parts.byte_ranges(self.size, self.part, last + 1), each)
        if self.check_md5:
            self._check_md5(self.md5.hexdigest())
        self._check_checksum(self.md5)

    def _hash_in_order(self, chunk: bytes) -> None:
        if self.md5 is not None:
            self.md5.update(chunk)
        if self.part_sums is not None:
            self.part_sums.append(chunk)

    def _writer(self) -> Callable[[bytes], None]:
        dest: Any = self.dest

        def on_worker(chunk: bytes) -> None:
            self._hash_in_order(chunk)
            dest.write(chunk)

        if not isinstance(self.dest, Emitter):
            return on_worker

        def on_loop(chunk: bytes) -> None:  # a knoxpy writable: its write() and 'drain'
            self._hash_in_order(chunk)
            ready = threading.Event()
            error: List[BaseException] = []

            def write() -> None:
                try:
                    if dest.write(chunk) is False:
                        dest.once("drain", lambda *_: ready.set())
                        return
                except BaseException as exc:  # noqa: BLE001 - reported by the download
                    error.append(exc)
                ready.set()

            self.op._loop.call_soon(write)
            ready.wait()
            if error:
                raise error[0]

        return on_loop


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
