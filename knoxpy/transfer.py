"""Uploads and downloads of any size: ``client.upload`` and ``client.download``.

knox sends its users to knox-mpu for multipart uploads; knoxpy builds them in, in
knox's style (an emitter, ``fn(err, result)``, ``.wait()``), and adds parallel,
verified, resumable downloads. docs/transfers.md tells the whole story.

Where each thread runs (docs/execution-model.md)::

    your thread (its Loop)                 knoxpy-io workers
    ──────────────────────                 ───────────────────────────────────────────
    op = client.upload(src, key) ─ spawn ─▶ driver: `concurrency` workers, the first
                                            initiating, each one: take the next part
    a knoxpy readable source:                 (one reader at a time, in order) and
      its 'data' ─▶ _Inbox.write() ──────▶    PUT it through its own Session
      (False when full; 'drain' later)        (synchronous, replayable, retried)
    run()/wait(): 'progress', 'part', ◀─ post ─ progress, parts, retries, redirects;
    'retry', 'redirect', fn(err, result)       complete (or abort), then the result

Workers never call user code. Two documented exceptions, as for ``deleteAll``'s
iterator in knoxpy.bulk: an iterator of bytes given as a source is consumed on a
worker, and a file-like ``dest`` of ``download`` is written on a worker (as
``IncomingMessage.pipe`` writes files); a knoxpy writable ``dest`` is written on your
loop, with its ``'drain'``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from . import _cancel, _checksums, _parts, _xml
from ._download import PARTIAL_SUFFIX, Download, bare_etag
from ._emitter import Operation
from ._js import Record
from ._paging import PageGuard
from ._sources import (
    CHECKSUMS,
    DEFAULT_CONCURRENCY,
    Meter,
    Options,
    PartBuffer,
    PartSource,
    Reader,
    key_of,
    reader_for,
)
from ._streams import IncomingMessage, header_value
from ._work import (
    Body,
    Session,
    fail_later,
    fan_out,
    key_target,
    quote_query,
    start,
)
from .client import Client, _split_callback, content_type_for
from .errors import IntegrityError, S3Error, ValidationError

__all__ = ["DEFAULT_CONCURRENCY", "PARTIAL_SUFFIX", "UPLOAD_JOURNAL_SUFFIX", "download",
           "upload"]

log = logging.getLogger("knoxpy")

UPLOAD_JOURNAL_SUFFIX = ".knoxpy-upload.jsonl"  # beside the file being uploaded
_SSE_C = "x-amz-server-side-encryption-customer-"  # SSE-C headers go on every part too
# What an upload's result reports of the answer (PutObject's, CompleteMultipartUpload's).
_REPORTED = (("x-amz-version-id", "VersionId"),
             ("x-amz-server-side-encryption", "ServerSideEncryption"),
             ("x-amz-server-side-encryption-aws-kms-key-id", "SSEKMSKeyId"))
# Conditional writes: S3 checks them on PutObject and on CompleteMultipartUpload, not on
# the initiate (If-None-Match: * is "create only": an existing key answers 412).
_CONDITIONS = ("if-none-match", "if-match")

Callback = Callable[[Optional[BaseException], Any], Any]
Digest = Tuple[str, str]  # ('crc32', base64 value) or ('md5', hex digest) of a part's bytes

# Endpoints that refused x-amz-checksum-* headers: their bodies carry Content-MD5 instead.
_MD5_ONLY: Set[Tuple[Any, Any, Any]] = set()
_MD5_ONLY_LOCK = threading.Lock()


class _Checksum:
    """How an upload's bodies are protected; S3 verifies each (docs/transfers.md).

    ``'crc32'``, ``'crc32c'``, ``'crc64nvme'``, ``'sha1'``: ``x-amz-checksum-<alg>`` on each
    body, payload UNSIGNED. CRC32 is the default over HTTPS, where TLS guards the bytes in
    transit; CRC32C and CRC64NVME need awscrt (``knoxpy[crc]``). A multipart upload of a CRC
    is begun ``x-amz-checksum-type: FULL_OBJECT``: its completion carries the CRC of the whole
    object, combined from the parts' (knoxpy._checksums); SHA-1's is COMPOSITE (a checksum of
    the parts' checksums), as S3 allows no other. ``'sha256'``: the payload's SHA-256 is
    signed (V4), no header; the default over plain HTTP, where an on-path attacker could swap
    a body for another of the same CRC (a CRC is easy to forge) but not of the same signed
    SHA-256. ``'md5'``: Content-MD5 (signed by V2 too); the default for V2 over plain HTTP,
    and the fallback wherever a store refuses checksum headers (400 InvalidArgument):
    remembered for its endpoint, logged once, and the refused request is sent again.
    """

    def __init__(self, client: Client, kind: Optional[str] = None) -> None:
        self.where = (client.endpoint, client.port, client.secure)
        if kind is None and client.options.get("checksum") in CHECKSUMS:
            kind = client.options["checksum"]  # the client's choice, for every upload
        if kind is None:
            kind = "crc32" if client.secure else \
                "sha256" if client.signatureVersion == 4 else "md5"
        if kind in _checksums.ALGORITHMS and self.where in _MD5_ONLY:  # known to refuse it
            kind = "md5"
        if kind == "sha256" and client.signatureVersion != 4:  # V2 signs no payload hash
            kind = "md5"
        self.kind = kind
        self.full_object = kind in _checksums.CRCS  # a multipart upload's checksum type

    @property
    def named(self) -> bool:
        """Whether bodies carry ``x-amz-checksum-<kind>`` (and completions name them)."""
        return self.kind in _checksums.ALGORITHMS

    def prepare(self, data: memoryview, journaled: bool
                ) -> Tuple[Dict[str, str], Body, Optional[Digest]]:
        """The headers and body that send ``data``, and the digest its journal line keeps."""
        if self.named:
            value = _checksums.value_of(self.kind, data)
            # x-amz-sdk-checksum-algorithm is what AWS's SDKs send beside the value (moto
            # stores the checksum only with it).
            return ({f"x-amz-checksum-{self.kind}": value,
                     "x-amz-sdk-checksum-algorithm": self.kind.upper()},
                    Body(data), (self.kind, value))
        if self.kind == "md5":
            header, hex_md5 = _parts.content_md5(data)
            return {"Content-MD5": header}, Body(data), ("md5", hex_md5)
        # No checksum header: the signature covers the payload's SHA-256, which S3 checks.
        journal = ("crc32", _parts.content_crc32(data)) if journaled else None
        return {}, Body(data, signed=True), journal

    def initiate_headers(self) -> Dict[str, str]:
        """What CreateMultipartUpload says: S3 takes part checksums only when told at first."""
        if not self.named:
            return {}
        headers = {"x-amz-checksum-algorithm": self.kind.upper()}
        if self.full_object:
            headers["x-amz-checksum-type"] = "FULL_OBJECT"
        return headers

    def complete_headers(self, parts: Dict[int, _Part]) -> Dict[str, str]:
        """A FULL_OBJECT upload's completion: the whole object's CRC, from its parts' in order."""
        if not (self.named and self.full_object):
            return {}
        try:
            pieces = [(_checksums.decode(self.kind, str(p.named)), p.size)
                      for _, p in sorted(parts.items())]
        except ValueError as err:
            raise IntegrityError(f"a part of the upload has no {self.kind.upper()} to combine: "
                                 f"{err}") from None
        whole = _checksums.combine_all(self.kind, pieces)
        return {f"x-amz-checksum-{self.kind}": _checksums.encode(self.kind, whole),
                "x-amz-checksum-type": "FULL_OBJECT"}

    def refused(self, err: S3Error) -> bool:
        """True (and Content-MD5 from now on) if ``err`` says checksums are refused."""
        if not self.named or not _parts.checksum_refused(err.statusCode, err.code,
                                                         err.message):
            return False
        refused, self.kind, self.full_object = self.kind, "md5", False
        with _MD5_ONLY_LOCK:
            first = self.where not in _MD5_ONLY
            _MD5_ONLY.add(self.where)
        if first:
            log.warning("knoxpy: %s refused x-amz-checksum-%s (%s %s); using Content-MD5 "
                        "for its uploads from now on", self.where[0], refused, err.statusCode,
                        err.code)
        return True


def _digest_of(kind: str, data: memoryview) -> str:
    """A journal's digest of a part's bytes, to tell whether the file still holds them."""
    if kind == "md5":
        return _parts.content_md5(data)[1]
    return _checksums.value_of(kind, data)


_DIGESTS = ("crc32", "crc32c", "crc64nvme", "sha1", "md5")  # what a journal line may keep


class _Upload:
    """One upload, driven on a worker: a single PUT, or initiate / parts / complete."""

    def __init__(self, client: Client, op: Operation, reader: Reader, filename: str,
                 headers: Dict[str, Any], opts: Options) -> None:
        self.client, self.op, self.reader, self.opts = client, op, reader, opts
        self.filename, self.key = filename, key_of(filename)
        self.target = key_target(self.key)
        # The length and checksum are knoxpy's to give, per request.
        self.headers = {k: v for k, v in headers.items()
                        if k.lower() not in ("content-length", "content-md5")
                        and not k.lower().startswith("x-amz-checksum-")}
        if reader.path is not None and header_value(headers, "content-type") is None:
            self.headers["Content-Type"] = content_type_for(reader.path)
        self.part_headers = {k: v for k, v in headers.items() if k.lower().startswith(_SSE_C)}
        self.conditions = {k: v for k, v in headers.items() if k.lower() in _CONDITIONS}
        self.meter = Meter(op, reader.size)
        self.journal: Optional[_parts.Journal] = None
        self.checksum = _Checksum(client, opts.checksum)

    def _post_retry(self, info: Any) -> None:
        self.op._post("retry", info)

    def _post_redirect(self, info: Any) -> None:
        self.op._post("redirect", info)

    def _session(self, session: Session) -> Session:
        session.on_redirect = self._post_redirect
        return session

    def run(self) -> Dict[str, Any]:
        failed = True
        try:
            result = self._run(self._session(Session(self._post_retry)))
            failed = False
            return result
        finally:
            self.reader.close(failed, self.op._loop)

    def _run(self, session: Session) -> Dict[str, Any]:
        size, opts = self.reader.size, self.opts
        if size is not None and size <= opts.part_size:
            data = self.reader.read_part(size, PartBuffer())
            self._check_end(len(data))
            return self._single(session, data)
        if size is not None:
            part = _parts.part_size_for(size, opts.part_size)
            return self._multipart(session, lambda _n: part, None)
        schedule = _parts.schedule_for_stream(opts.part_size, opts.size_hint)
        first = self.reader.read_part(schedule.base, PartBuffer())
        if self.reader.at_end():  # it all fits in one part: one PUT, replayable
            self.meter.total = len(first)
            return self._single(session, first)
        return self._multipart(session, schedule.size_of, first)

    def _check_end(self, total: int) -> None:
        size = self.reader.size
        if size is not None and (total != size or not self.reader.at_end()):
            raise IntegrityError(f"the source had {size} bytes when the upload began, "
                                 f"then {'more' if total == size else total}")

    def _result(self, etag: Any, res: IncomingMessage, location: Any = None) -> Dict[str, Any]:
        out = {"Bucket": self.client.bucket, "Key": self.key, "ETag": etag,
               "Location": location or self.client.url(self.filename)}
        for name, label in _REPORTED:
            if res.headers.get(name):
                out[label] = res.headers[name]
        return out

    def _put(self, session: Session, path: str, headers: Dict[str, Any], data: memoryview,
             piece: int) -> Tuple[IncomingMessage, _Part]:
        """PUT ``data`` (an object, or a part) with its checksum; a refused CRC32 -> MD5."""
        while True:
            kind = self.checksum.kind
            extra, body, digest = self.checksum.prepare(data, self.journal is not None)
            full = dict(headers, **extra)
            full["Content-Length"] = len(data)
            try:
                res = session.open(self.client, "PUT", path, full, body,
                                   on_progress=lambda p: self.meter.mark(piece, p["written"]))
            except S3Error as err:
                if self.checksum.refused(err):
                    continue
                raise
            res.read()
            named = digest[1] if kind in _checksums.ALGORITHMS and digest is not None else None
            return res, _Part(str(res.headers.get("etag") or ""), len(data), digest, named)

    def _single(self, session: Session, data: memoryview) -> Dict[str, Any]:
        res, _ = self._put(session, self.target, self.headers, data, 1)
        self.meter.mark(1, len(data))
        self.meter.finish(len(data))
        return self._result(res.headers.get("etag"), res)

    def _multipart(self, session: Session, size_of: Callable[[int], int],
                   first: Optional[memoryview]) -> Dict[str, Any]:
        done: Dict[int, _Part] = {}
        if self.opts.resume and self.reader.path is not None:
            upload_id, part, done = self._resume_or_begin(session, size_of(1))
            size_of = lambda _n: part  # noqa: E731 - the journal's layout, as first chosen
            begun = _Begun(self._initiate, upload_id)
        else:
            begun = _Begun(self._initiate)  # by the first worker, the others reading parts
        parts: Dict[int, _Part] = dict(done)
        for n, p in done.items():
            self.meter.mark(n, p.size)
        lock = threading.Lock()
        source = PartSource(self.reader, size_of, first, set(done))

        def work(s: Session, stop: threading.Event) -> None:
            self._session(s)
            buf = PartBuffer()  # this worker's: memory stays at part size x concurrency
            if begun.claim() and begun.query(s) is None:  # the first one begins the upload
                return
            while not stop.is_set():
                item = source.next(buf)
                if item is None:
                    return
                upload = begun.query(s)
                if upload is None:  # the initiate failed: its worker reports why
                    return
                number, data = item
                sent = self._send_part(s, upload, number, data)
                with lock:
                    parts[number] = sent
                    if self.journal is not None:
                        self.journal.add(sent.entry(number))
                self.op._post("part", Record(partNumber=number, ETag=sent.etag,
                                             size=sent.size))

        upload = ""
        try:
            fan_out(self.opts.concurrency, work, self._post_retry)
            upload = begun.query(session) or ""
            self._check_end(source.total)
            self.meter.finish(source.total)
            # An upload begun with a checksum algorithm must name each part's checksum
            # at completion (S3: "The complete request must include the checksum for each
            # part"); one that fell back to Content-MD5 names none.
            named = all(p.named for p in parts.values())
            xml = _xml.build_complete_multipart(
                [(n, p.etag, p.named) if named else (n, p.etag) for n, p in sorted(parts.items())],
                self.checksum.kind)
            headers: Dict[str, Any] = {"Content-Length": len(xml)}
            if named:
                headers.update(self.checksum.complete_headers(parts))

            try:
                # A 200 <Error> is retried by the request layer (as any 5xx answer).
                res, body = session.send(self.client, "POST", f"{self.target}?{upload}",
                                         dict(self.conditions, **headers), xml)
                data = _xml.parse_complete_multipart(body)
            except S3Error as err:
                # A 200 <Error> may come after S3 did complete: the retry then finds no
                # upload. The object is ours if its ETag is the one our parts make.
                completed = None
                if err.code == "NoSuchUpload":
                    completed = self._completed(session, {n: p.etag for n, p in parts.items()})
                if completed is None:
                    raise
                res, data = completed
        except BaseException:
            # resume=True keeps the upload for the next attempt; one never begun has nothing
            if self.journal is None and begun.upload_id is not None:
                self._abort(session, f"uploadId={quote_query(begun.upload_id)}")
            raise
        if self.journal is not None:
            self.journal.remove()
        return self._result(data.get("ETag"), res, data.get("Location"))

    def _initiate(self, session: Session) -> str:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _CONDITIONS}
        headers["Content-Length"] = 0
        headers.update(self.checksum.initiate_headers())
        try:
            _, body = session.send(self.client, "POST", self.target + "?uploads", headers)
        except S3Error as err:
            if self.checksum.refused(err):
                return self._initiate(session)
            raise
        return str(_xml.parse_initiate_multipart(body)["UploadId"])

    def _send_part(self, s: Session, upload: str, number: int, data: memoryview) -> _Part:
        _, sent = self._put(s, f"{self.target}?partNumber={number}&{upload}",
                            self.part_headers, data, number)
        if not sent.etag:
            raise IntegrityError(f"S3 answered part {number} without an ETag")
        self.meter.mark(number, len(data))
        return sent

    def _completed(self, session: Session, parts: Dict[int, str]
                   ) -> Optional[Tuple[IncomingMessage, Dict[str, Any]]]:
        """The object, if it is already the completion of ``parts`` (HEAD, ETag compared)."""
        try:
            digests = b"".join(bytes.fromhex(bare_etag(parts[n])) for n in sorted(parts))
        except ValueError:  # part ETags that are not MD5s (SSE-KMS): cannot tell
            return None
        want = f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"
        try:
            res = session.open(self.client, "HEAD", self.target)
        except S3Error:
            return None
        etag = res.headers.get("etag")
        return (res, {"ETag": etag}) if bare_etag(etag) == want else None

    def _abort(self, session: Session, upload: str) -> None:
        try:
            with _cancel.shielded():  # also, and above all, after a Ctrl-C
                session.send(self.client, "DELETE", f"{self.target}?{upload}")
        except Exception:  # noqa: BLE001 - the upload's own error is the one to report
            log.warning("knoxpy: could not abort the multipart upload of %r (%s)", self.key,
                        upload, exc_info=True)

    # -- resume (item 8): a journal beside the file ---------------------------------------
    def _resume_or_begin(self, session: Session, part: int
                         ) -> Tuple[str, int, Dict[int, _Part]]:
        """The upload id, part size and verified parts to go on with, or a fresh upload."""
        assert self.reader.path is not None and self.reader.file is not None
        st = os.fstat(self.reader.file.fileno())
        want = {"kind": "upload", "bucket": self.client.bucket, "key": self.key,
                "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        self.journal = _parts.Journal(self.reader.path + UPLOAD_JOURNAL_SUFFIX)
        loaded = self.journal.load()
        if loaded is not None:
            header, entries = loaded
            old_id, old_part = header.get("uploadId"), header.get("partSize")
            if header.get("bucket") == want["bucket"] and header.get("key") == want["key"] \
                    and isinstance(old_id, str):
                if all(header.get(k) == v for k, v in want.items()) and isinstance(old_part, int):
                    # The old upload goes on as it was begun: checksummed parts only if it
                    # said so at its initiate (a journal without "checksum" is of an older
                    # knoxpy: Content-MD5 unless the signed SHA-256 is the default here),
                    # FULL_OBJECT only if it said so too (older journals: COMPOSITE CRC32).
                    default = self.checksum.kind, self.checksum.full_object
                    begun = _BEGUN.get(str(header.get("checksum")).lower(),
                                       "md5" if default[0] in _checksums.ALGORITHMS
                                       else default[0])
                    self.checksum.kind = begun
                    self.checksum.full_object = header.get("checksumType") == "FULL_OBJECT"
                    done = self._verified_parts(session, old_id, old_part, entries)
                    if done is not None:
                        return old_id, old_part, done
                    self.checksum.kind, self.checksum.full_object = default
                else:  # the file changed: its parts must not be mixed with the new bytes
                    self._abort(session, f"uploadId={quote_query(old_id)}")
        upload_id = self._initiate(session)
        header = dict(want, uploadId=upload_id, partSize=part,
                      checksum=self.checksum.kind.upper())
        if self.checksum.full_object:
            header["checksumType"] = "FULL_OBJECT"
        self.journal.start(header)
        return upload_id, part, {}

    def _verified_parts(self, session: Session, upload_id: str, part: int,
                        entries: List[Dict[str, Any]]) -> Optional[Dict[int, _Part]]:
        """Journal parts that S3 still holds and whose bytes in the file are unchanged."""
        try:
            listed = self._list_parts(session, upload_id)
        except S3Error as err:
            if err.code == "NoSuchUpload":
                return None
            raise
        done: Dict[int, _Part] = {}
        assert self.reader.path is not None
        buf = PartBuffer()
        with open(self.reader.path, "rb") as f:
            for entry in entries:
                number, etag, size = entry.get("part"), entry.get("ETag"), entry.get("size")
                if not isinstance(number, int) or not isinstance(size, int) \
                        or listed.get(number) != (bare_etag(etag), size):
                    continue
                f.seek((number - 1) * part)
                data = buf.view(size)
                if f.readinto(data) != size:
                    continue
                # The file's bytes now must be those the journal's digest was taken of.
                kind = next((k for k in _DIGESTS if k in entry), "md5")
                if not _checksums.available(kind) and kind != "md5":
                    continue  # a crc64nvme journal, and awscrt gone since: send it again
                digest = (kind, _digest_of(kind, data))
                if entry.get(kind) == digest[1]:
                    named = digest[1] if kind == self.checksum.kind else None
                    done[number] = _Part(str(etag), size, digest, named)
        return done

    def _list_parts(self, session: Session, upload_id: str) -> Dict[int, Tuple[str, int]]:
        """Every part S3 holds for the upload: ``{number: (ETag, size)}``, page by page."""
        listed: Dict[int, Tuple[str, int]] = {}
        guard = PageGuard(f"ListParts of {self.key!r} (upload {upload_id})", marker=0)
        marker = 0
        while True:
            query = f"uploadId={quote_query(upload_id)}&part-number-marker={marker}"
            _, body = session.send(self.client, "GET", f"{self.target}?{query}")
            data = _xml.parse_list_parts(body)
            for p in data["Part"]:
                listed[int(p["PartNumber"])] = (bare_etag(p.get("ETag")), int(p.get("Size", 0)))
            if not data.get("IsTruncated"):
                return listed
            nxt = data.get("NextPartNumberMarker")
            if not isinstance(nxt, int) or nxt > _parts.MAX_PARTS:
                raise _xml.MalformedXML(f"{guard.what} is truncated with NextPartNumberMarker "
                                        f"{nxt!r}: not a part number")
            guard.advance(("part-number-marker", nxt), len(data["Part"]))
            marker = nxt


class _Begun:
    """A multipart upload's id, asked for by the first worker (:meth:`claim`) at its start.

    The other workers read their first parts (and fault in their buffers) meanwhile, then
    wait for it: the initiate is a round trip, and a process's first request makes its
    connection too (a TLS handshake over HTTPS). Asking before reading keeps the read off
    the initiate's path. It fails once: that worker raises, the ones waiting get None.
    """

    def __init__(self, begin: Callable[[Session], str], upload_id: Optional[str] = None
                 ) -> None:
        self._begin = begin
        self._lock = threading.Lock()  # held while the initiate is on its way
        self._tried = False  # asked for once: a failed initiate is not sent again
        self._claim_lock = threading.Lock()  # not that one: the others go on to read
        self._claimed = upload_id is not None
        self.upload_id = upload_id

    def claim(self) -> bool:
        """True for the first caller only: the worker that begins the upload."""
        with self._claim_lock:
            first, self._claimed = not self._claimed, True
            return first

    def query(self, session: Session) -> Optional[str]:
        """``uploadId=...`` for a part's query, the upload begun on ``session`` if need be."""
        with self._lock:
            if self.upload_id is None and not self._tried:
                self._tried = True
                self.upload_id = self._begin(session)
            return None if self.upload_id is None else f"uploadId={quote_query(self.upload_id)}"


class _Part:
    """A part S3 holds: ETag, size, the digest its journal line keeps, and the checksum to
    name at completion (an upload begun with ``x-amz-checksum-algorithm``)."""

    __slots__ = ("etag", "size", "digest", "named")

    def __init__(self, etag: str, size: int, digest: Optional[Digest],
                 named: Optional[str]) -> None:
        self.etag, self.size, self.digest, self.named = etag, size, digest, named

    def entry(self, number: int) -> Dict[str, Any]:
        """Its journal line."""
        line: Dict[str, Any] = {"part": number, "ETag": self.etag, "size": self.size}
        if self.digest is not None:
            line[self.digest[0]] = self.digest[1]
        return line


_BEGUN = {k: k for k in CHECKSUMS}  # a journal's "checksum", lower-cased


def upload(client: Client, source: Any, filename: str, headers: Any = None,
           fn: Optional[Callback] = None, **options: Any) -> Operation:
    """``client.upload(source, filename, headers, fn)``: upload anything, of any size.

    ``source``: a path (``str``/``PathLike``), bytes, a file object, an iterator of bytes
    (consumed on a worker) or a knoxpy readable (another request's response). A known
    length up to ``partSize`` goes as one PUT; anything else as a multipart upload,
    ``concurrency`` parts at once, aborted if it fails. Every body carries a checksum S3
    verifies: CRC32 over HTTPS, the signed SHA-256 over plain HTTP, Content-MD5 where a
    store refuses checksum headers.

    Options (keyword, or the client's): ``partSize`` (bytes, 5 MiB to 5 GiB, default
    8 MiB), ``concurrency`` (default 4), ``checksum`` (``'crc32'``, ``'crc32c'``,
    ``'crc64nvme'``, ``'sha1'``, ``'sha256'`` or ``'md5'``, to choose that protection
    yourself; crc32c and crc64nvme need ``knoxpy[crc]``); keyword only: ``sizeHint``
    (about how long a stream of unknown length is), ``resume`` (a path source: go on with
    an interrupted upload, docs/transfers.md). Events: ``'progress'`` ``{written, total,
    percent}`` (``total`` None while a stream's length is unknown), ``'part'`` ``{partNumber, ETag,
    size}``, ``'retry'``, ``'redirect'``, ``'end'``. Result: ``{Bucket, Key, ETag,
    Location}`` and, when S3 gives them, ``VersionId``, ``ServerSideEncryption`` and
    ``SSEKMSKeyId``.

    >>> client.upload('big.iso', '/isos/big.iso').on('progress', print).wait()  # doctest: +SKIP
    {'Bucket': 'b', 'Key': 'isos/big.iso', 'ETag': '"…-12"', 'Location': 'https://…'}
    """
    headers, fn = _split_callback(headers, fn)
    op = Operation()
    try:
        opts = Options(client, options)
        if opts.version_id is not None:
            raise ValidationError("upload: versionId is a download option (S3 gives each "
                                  "upload its own version)")
        key = key_of(filename)
        if not key:
            raise ValidationError("upload: filename must name a key")
        reader = reader_for(source, op._loop)
    except (ValidationError, OSError) as err:
        return fail_later(op, fn, err)
    return start(op, fn, _Upload(client, op, reader, filename, headers, opts).run)


def download(client: Client, filename: str, dest: Any, headers: Any = None,
             fn: Optional[Callback] = None, **options: Any) -> Operation:
    """``client.download(filename, dest, headers, fn)``: fetch an object of any size.

    ``dest``: a path, or a writable (a file object, written in order on a worker; or a
    knoxpy writable, written on your loop with its ``'drain'``; it is not closed). Objects
    over ``partSize`` come as ``concurrency`` parallel ranged GETs, each with If-Match on
    the ETag (a changing object fails instead of mixing versions). To a path, bytes go to
    a new ``.<name>.<random>.knoxpy-part`` beside it (``<path>.knoxpy-part`` with
    ``resume``) and are renamed into place only once the length (and the MD5,
    when the ETag is one, and the FULL_OBJECT checksum S3 keeps, docs/transfers.md) is
    verified. Options: ``partSize``, ``concurrency``, ``resume``
    (keep the partial file and go on from it next time). Events: ``'progress'``,
    ``'retry'``, ``'redirect'``, ``'end'``. Result: ``{Key, size, ETag, path}`` (path None
    for a writable). A missing key fails with :class:`S3Error` ``NoSuchKey``.

    >>> client.download('/isos/big.iso', 'big.iso').wait()   # doctest: +SKIP
    {'Key': 'isos/big.iso', 'size': 4700000000, 'ETag': '"…-561"', 'path': 'big.iso'}
    """
    headers, fn = _split_callback(headers, fn)
    op = Operation()
    try:
        opts = Options(client, options)
        if not key_of(filename):
            raise ValidationError("download: filename must name a key")
        if not isinstance(dest, (str, os.PathLike)) and not hasattr(dest, "write"):
            raise ValidationError("download: dest must be a path or a writable")
        if header_value(headers, "range") is not None:
            raise ValidationError("download fetches whole objects: for part of one, "
                                  "use client.get with a Range header")
    except ValidationError as err:
        return fail_later(op, fn, err)
    return start(op, fn, Download(client, op, filename, dest, headers, opts).run)
