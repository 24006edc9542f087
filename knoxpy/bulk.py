"""Listing, deleting and copying at any scale: ``listAll``, ``deleteAll``, ``copyAll``.

knox sends its users to s3-lister, s3-deleter and knox-copy for these; knoxpy
builds them in, in knox's style (emitters, ``fn(err, result)``, ``.wait()``).

Where each thread runs (docs/execution-model.md, docs/bulk.md)::

    your thread (its Loop)            knoxpy-io workers
    ──────────────────────            ─────────────────────────────────────────────
    client.deleteAll(keys) ─ spawn ─▶ driver: fans out to `concurrency` workers;
                                       each owns a *private* Loop and sends its
                                       requests synchronously (req.end().wait())
    run()/wait(): 'keyError', ◀─ post ─ per-key errors, 'retry', then the result
    'copied', 'retry', fn(err, result)

Workers never call user code, with one exception: an iterator of keys given to
``deleteAll`` is consumed on a worker (that is what makes it lazy and eager at
once). Every S3 error answer becomes a :class:`knoxpy.S3Error`.

Tests lower :data:`MULTIPART_COPY_THRESHOLD` and :data:`MULTIPART_COPY_PART_SIZE`
to exercise UploadPartCopy with small objects.
"""
from __future__ import annotations

import base64
import collections
import functools
import hashlib
import logging
import threading
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from . import _cancel, _xml, auth
from ._emitter import Operation
from ._js import Record
from ._loop import Claim, spawn_claim
from ._paging import PageGuard
from ._validate import check_headers
from ._work import (
    Session,
    Shared,
    concurrency_option,
    copy_source,
    fail_later,
    fan_out,
    key_target,
    parallel_map,
    quote_query,
    start,
    with_200_retries,
)
from .client import Client
from .errors import RequestError, S3Error, ValidationError

__all__ = [
    "COPY_CONCURRENCY",
    "DELETE_BATCH",
    "DELETE_CONCURRENCY",
    "MULTIPART_COPY_PART_SIZE",
    "MULTIPART_COPY_THRESHOLD",
    "READ_AHEAD_PAGES",
    "Lister",
    "copy_all",
    "delete_all",
    "list_all",
]

log = logging.getLogger("knoxpy")

MIB = 1024 * 1024
GIB = 1024 * MIB
MULTIPART_COPY_THRESHOLD = 5 * GIB  # S3's largest single CopyObject; larger goes by parts
MULTIPART_COPY_PART_SIZE = 512 * MIB  # UploadPartCopy range size (grown to fit 10,000 parts)
MAX_COPY_PART = 5 * GIB  # S3's largest part
MAX_PARTS = 10_000
DELETE_BATCH = 1000  # S3's most keys per multi-object delete
DELETE_CONCURRENCY = 4  # batches in flight
COPY_CONCURRENCY = 8  # objects (and parts of one large object) in flight
READ_AHEAD_PAGES = 2  # listing pages buffered ahead of the consumer

Callback = Callable[[Optional[BaseException], Any], Any]
Entry = Dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")

# Headers a multipart copy carries over from the source (CopyObject does it by itself).
_KEPT_HEADERS = ("content-type", "content-encoding", "content-disposition",
                 "content-language", "cache-control", "expires")
# What copyAll sets itself for each key: not to be given in its ``headers``.
_COPY_OWN = ("x-amz-copy-source", "x-amz-copy-source-range", "x-amz-copy-source-if-match",
             "content-length")
_SSE_C = "x-amz-server-side-encryption-customer-"
_COPY_SSE_C = "x-amz-copy-source-server-side-encryption-customer-"
# Per-key failures of copyAll; anything else fails the whole operation.
_PER_KEY = (S3Error, RequestError, ValidationError, _xml.MalformedXML)


# -- listAll ---------------------------------------------------------------------------------
def _list_query(params: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """ListObjectsV2 query parameters from knox's ``list`` params (``marker`` = start-after)."""
    if params is not None and not isinstance(params, Mapping):
        raise ValidationError("listAll params must be a dict (prefix, delimiter, max-keys...)")
    query = {"list-type": "2"}
    for name, value in (params or {}).items():
        if value is None:
            continue
        name = {"marker": "start-after", "maxKeys": "max-keys"}.get(name, name)
        query[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return query


def _page_entries(data: Dict[str, Any], items: str = "Contents") -> List[Entry]:
    """A page's ``items`` (objects, or versions) and common prefixes, merged in S3's
    (UTF-8 byte = code point) order."""
    entries: List[Entry] = list(data.get(items) or [])
    prefixes = [{"Prefix": p.get("Prefix", "")} if isinstance(p, dict) else {"Prefix": p}
                for p in data.get("CommonPrefixes") or []]
    if prefixes:
        entries.extend(prefixes)
        entries.sort(key=lambda e: str(e.get("Key", e.get("Prefix", ""))))
    return entries


class Lister(Operation):
    """Every key under a prefix, across pages: what ``client.listAll(params)`` returns.

    A readable: one ``'data'`` event per knox-shaped entry (``Key``, ``LastModified``
    (datetime), ``ETag``, ``Size`` (int), ``StorageClass``; with a delimiter, common
    prefixes come as ``{'Prefix': ...}``), then ``'end'`` (or ``'error'``), then
    ``'close'``; ``'retry'`` ``{reason, delay, attempt}`` when a page is asked for again.
    It flows once a ``'data'`` listener is attached or ``resume()``/``pipe()`` is
    called; ``pause()`` stops it. ``wait()`` runs the loop until the end and returns
    the number of entries delivered.

    It is also a Python iterator that needs no loop: ``for entry in client.listAll(...)``
    blocks page by page. Either way pages (ListObjectsV2, up to 1000 keys) are fetched
    as they are consumed, at most ``READ_AHEAD_PAGES`` buffered: never every key in memory.

    >>> for entry in client.listAll({'prefix': 'logs/'}):          # doctest: +SKIP
    ...     print(entry['Key'], entry['Size'])
    >>> client.listAll({'prefix': 'logs/'}).on('data', print).wait() # doctest: +SKIP
    """

    def __init__(self, client: Client, params: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()
        self._client = client
        self._query = _list_query(params)
        self._guard = PageGuard(f"listing of bucket {client.bucket!r} prefix "
                                f"{self._query.get('prefix', '')!r}")
        self._cond = threading.Condition(threading.Lock())
        self._pages: Deque[Deque[Entry]] = collections.deque()
        self._next: Optional[Tuple[str, str]] = None  # (query name, value) of the next page
        self._more = True  # pages remain to be fetched
        self._fetching = False
        self._fetch_claim: Optional[Claim] = None  # the fetch spawned last, for an iterator
        self._fetch_error: Optional[BaseException] = None
        self._mode: Optional[str] = None  # 'flowing' (events) or 'iterating'
        self._flowing = False
        self._count = 0
        self._ended = False
        # Where the 'retry' events of the pages go when deleteAll/copyAll consume the
        # listing (their own 'retry'); a flowing listing emits its own.
        self._on_retry: Optional[Callable[[Any], None]] = None
        # The next page, asked for before this one was parsed: (its start, its answer).
        self._ahead: Optional[Tuple[Tuple[str, str], _Ahead]] = None

    def __repr__(self) -> str:
        return f"<knoxpy.bulk.Lister bucket={self._client.bucket!r} query={self._query!r}>"

    # -- the readable side (on the owning loop) -------------------------------------------
    def _data_listener_added(self) -> None:
        if self._mode is None:
            self.resume()

    def resume(self) -> Lister:
        """Let entries flow as ``'data'`` events (Node's ``readable.resume()``)."""
        if self._mode == "iterating":
            raise RuntimeError("this listing is being iterated: it cannot also emit 'data'")
        self._mode = "flowing"
        self._flowing = True
        self._loop.call_soon(self._flush)
        with self._cond:
            self._want_fetch_locked()
        return self

    def pause(self) -> Lister:
        """Stop the ``'data'`` events; fetching stops once ``READ_AHEAD_PAGES`` wait."""
        self._flowing = False
        return self

    def isPaused(self) -> bool:
        return self._mode == "flowing" and not self._flowing

    is_paused = isPaused

    def pipe(self, dest: Any, end: bool = True) -> Any:
        """Write each entry into ``dest`` (``write(entry)``; False pauses until ``'drain'``)."""
        def ondata(entry: Entry) -> None:
            if dest.write(entry) is False and hasattr(dest, "once"):
                self.pause()
                dest.once("drain", lambda *_: self.resume())

        self.on("data", ondata)
        if end and hasattr(dest, "end"):
            self.once("end", lambda *_: dest.end())
        return dest

    def wait(self, timeout: Optional[float] = None) -> Any:
        """Run the loop until the listing ends; returns how many entries were delivered."""
        if self._mode is None:
            self.resume()
        return super().wait(timeout)

    def __await__(self) -> Generator[Any, None, Any]:
        if self._mode is None:
            self.resume()
        return super().__await__()

    def _flush(self) -> None:
        """On the loop: deliver buffered entries while flowing, then ``'end'``/``'error'``."""
        while self._flowing:
            with self._cond:
                entry = self._take_locked()
            if entry is None:
                break
            self._count += 1
            self.emit("data", entry)
        with self._cond:
            finished = not self._pages and not self._more and not self._fetching
            if not finished and self._flowing:
                self._want_fetch_locked()
            error = self._fetch_error
        if not (finished and self._flowing and not self._ended):
            return
        self._ended = True
        if error is not None:
            self._reject(error)
        else:
            self._resolve(self._count)
            self.emit("end")
        self.emit("close")

    # -- the iterator side (any thread, no loop) ------------------------------------------
    def __iter__(self) -> Iterator[Entry]:
        return self

    def __next__(self) -> Entry:
        if self._mode == "flowing":
            raise RuntimeError("this listing emits 'data' events: it cannot also be iterated")
        self._mode = "iterating"
        with self._cond:
            while True:
                entry = self._take_locked()
                if entry is not None:
                    return entry
                if self._fetch_error is not None:
                    raise self._fetch_error
                if not self._more:
                    raise StopIteration
                self._want_fetch_locked()
                claim, self._fetch_claim = self._fetch_claim, None
                if claim is not None:  # unless a worker took it already, fetch it here
                    self._cond.release()
                    try:
                        claim.run_here()
                    finally:
                        self._cond.acquire()
                    continue
                self._cond.wait()

    # -- fetching (on a worker) -------------------------------------------------------------
    def _take_locked(self) -> Optional[Entry]:
        while self._pages:
            page = self._pages[0]
            if page:
                entry = page.popleft()
                if not page:
                    self._pages.popleft()
                    self._want_fetch_locked()
                return entry
            self._pages.popleft()
        return None

    def _want_fetch_locked(self) -> None:
        """Start fetching if a page is wanted and none is on its way (``_cond`` held)."""
        if (self._fetching or not self._more or self._fetch_error is not None
                or len(self._pages) >= READ_AHEAD_PAGES):
            return
        self._fetching = True
        posting = self._mode == "flowing"
        if posting:
            self._loop.ref()
        self._fetch_claim = spawn_claim(self._fetch, posting)

    def _fetch(self, posting: bool) -> None:
        """On a worker: fetch pages until ``READ_AHEAD_PAGES`` are buffered or none remain."""
        # ``_fetching`` drops in the same critical section as the decision to stop, so a
        # consumer that frees a page a moment later starts the next fetch itself.
        try:
            session = Session(self._retried)
            while True:
                with self._cond:
                    if not self._more or len(self._pages) >= READ_AHEAD_PAGES:
                        self._fetching = False
                        self._cond.notify_all()
                        return
                    current = self._next
                try:
                    page = functools.partial(self._fetch_page, session, current)
                    entries, nxt = with_200_retries(self._client, session, page)
                    if nxt is not None:  # once per page, not per attempt
                        self._guard.advance(nxt, len(entries))
                except BaseException as exc:  # noqa: BLE001 - delivered to the consumer
                    with self._cond:
                        self._fetch_error = exc
                        self._more = self._fetching = False
                        self._cond.notify_all()
                    return
                with self._cond:
                    if entries:
                        self._pages.append(collections.deque(entries))
                    self._next = nxt
                    self._more = nxt is not None
                    self._cond.notify_all()
                if posting:
                    self._loop.call_soon(self._flush)
        except BaseException as exc:  # noqa: BLE001 - a bug: the consumer must not hang
            with self._cond:
                self._fetch_error = self._fetch_error or exc
                self._more = self._fetching = False
                self._cond.notify_all()
        finally:
            if posting:
                self._loop.call_soon(self._flush)
                self._loop.unref()

    def _retried(self, info: Any) -> None:
        """On a worker: a page request is being retried."""
        if self._on_retry is not None:
            self._on_retry(info)
        elif self._mode == "flowing":
            self._post("retry", info)

    # What a listing page is: ListObjectsV2's (VersionLister: ListObjectVersions').
    _SUBRESOURCE = ""
    _ITEMS = "Contents"
    _parse = staticmethod(_xml.parse_list)
    _peek = staticmethod(_xml.peek_next_token)

    def _page_query(self, current: Optional[Tuple[str, str]]) -> Dict[str, str]:
        query = dict(self._query)
        if current is not None:
            if current[0] == "start-after":  # a store that answered V1, which reads marker
                query.pop("continuation-token", None)
                query["marker"] = current[1]
            query[current[0]] = current[1]
        return query

    def _send_page(self, session: Session, current: Optional[Tuple[str, str]]) -> bytes:
        query = self._page_query(current)
        path = ("/?" + (self._SUBRESOURCE + "&" if self._SUBRESOURCE else "")
                + "&".join(f"{quote_query(k)}={quote_query(v)}" for k, v in query.items()))
        _, body = session.send(self._client, "GET", path)
        return body

    def _fetch_page(self, session: Session, current: Optional[Tuple[str, str]]
                    ) -> Tuple[List[Entry], Optional[Tuple[str, str]]]:
        """One page: its entries and where the next one starts (None: the last page).

        The next page is asked for (on another worker) as soon as this one's answer has
        come, before it is parsed: the server makes that page while this one is read. It
        is asked for only where this page's answer names it plainly and the read-ahead
        has room; its answer is used only if the parsed page names the same start.
        """
        ahead, self._ahead = self._ahead, None
        body = None
        if ahead is not None and ahead[0] == current:
            try:
                body = ahead[1].result()
            finally:
                for info in ahead[1].retries:  # a page's retries are told once it is used
                    self._retried(info)
        if body is None:
            body = self._send_page(session, current)
        guess = self._peek(body)
        with self._cond:
            room = len(self._pages) + 1 < READ_AHEAD_PAGES
        if guess is not None and room and self._guard.may_follow(guess):
            self._ahead = (guess, _Ahead(self._send_page, guess))
        data = self._parse(body)
        if "Code" in data and "Name" not in data:  # a 200 carrying <Error>
            raise _xml.error_from(data, 200)
        entries = _page_entries(data, self._ITEMS)
        return entries, self._next_page(data, entries)

    def _next_page(self, data: Dict[str, Any], entries: List[Entry]
                   ) -> Optional[Tuple[str, str]]:
        for entry in entries:
            size = entry.get("Size", 0)
            if "Key" in entry and (not isinstance(size, int) or size < 0):
                raise _xml.MalformedXML(f"{self._guard.what} listed key {entry['Key']!r} "
                                        f"with Size {size!r}, not a number of bytes")
        if not data.get("IsTruncated"):
            return None
        token = data.get("NextContinuationToken")
        if token:
            return ("continuation-token", str(token))
        # a store that answered V1: go on after the last key or prefix
        last = data.get("NextMarker") or (
            entries[-1].get("Key", entries[-1].get("Prefix")) if entries else None)
        if not last:
            raise _xml.MalformedXML("listing truncated without a continuation token")
        return ("start-after", str(last))


class _Ahead:
    """A page's answer being fetched on another worker: ``result()`` waits for it.

    ``send(session, start)`` sends the page's request; its ``'retry'`` events are kept in
    ``retries`` (told only if the page is used, never after the listing has ended).
    """

    def __init__(self, send: Callable[[Session, Tuple[str, str]], bytes],
                 start: Tuple[str, str]) -> None:
        self._done = threading.Event()
        self._body = b""
        self._error: Optional[BaseException] = None
        self.retries: List[Any] = []
        self._claim = spawn_claim(self._run, send, start)

    def _run(self, send: Callable[[Session, Tuple[str, str]], bytes],
             start: Tuple[str, str]) -> None:
        try:
            self._body = send(Session(self.retries.append), start)
        except BaseException as exc:  # noqa: BLE001 - raised by result(), if it is used
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> bytes:
        self._claim.run_here()  # no worker has started it (all busy): fetched here
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._body


class VersionLister(Lister):
    """Every version and delete marker under a prefix, across pages: what
    ``client.listAllVersions(params)`` returns; a readable and an iterator as :class:`Lister`.

    Entries (ListObjectVersions, by key, newest first): ``Key``, ``VersionId``, ``IsLatest``,
    ``LastModified``, ``DeleteMarker`` (bool) and, for versions, ``ETag``, ``Size``,
    ``StorageClass``; with a delimiter, common prefixes as ``{'Prefix': ...}``. Give the
    listing to ``deleteAll`` to delete those very versions.

    >>> for v in client.listAllVersions({'prefix': 'logs/'}):      # doctest: +SKIP
    ...     print(v['Key'], v['VersionId'], v['DeleteMarker'])
    """

    def __init__(self, client: Client, params: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(client, params)
        self._query = _versions_query(params)
        self._guard = PageGuard(f"version listing of bucket {client.bucket!r} prefix "
                                f"{self._query.get('prefix', '')!r}")

    def __repr__(self) -> str:
        return (f"<knoxpy.bulk.VersionLister bucket={self._client.bucket!r} "
                f"query={self._query!r}>")

    _SUBRESOURCE = "versions"
    _ITEMS = "Versions"
    _parse = staticmethod(_xml.parse_versions)
    _peek = staticmethod(_xml.peek_next_version)

    def _page_query(self, current: Optional[Tuple[str, str]]) -> Dict[str, str]:
        query = dict(self._query)
        if current is not None:  # "version-marker": key and version id, as one opaque token
            key_marker, _, version_marker = current[1].partition("\n")
            query["key-marker"] = key_marker
            if version_marker:
                query["version-id-marker"] = version_marker
        return query

    def _next_page(self, data: Dict[str, Any], entries: List[Entry]
                   ) -> Optional[Tuple[str, str]]:
        if not data.get("IsTruncated"):
            return None
        next_key = str(data.get("NextKeyMarker") or "")
        if not next_key:
            raise _xml.MalformedXML("version listing truncated without a NextKeyMarker")
        next_version = str(data.get("NextVersionIdMarker") or "")
        return ("version-marker", f"{next_key}\n{next_version}")


def _versions_query(params: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """ListObjectVersions parameters: ``prefix``, ``delimiter``, ``max-keys``; knox's
    ``marker`` is the ``key-marker``."""
    query = _list_query(params)
    del query["list-type"]
    if "start-after" in query:
        query["key-marker"] = query.pop("start-after")
    return query


def list_all_versions(client: Client, params: Optional[Mapping[str, Any]] = None
                      ) -> VersionLister:
    """``client.listAllVersions(params)``: every version and delete marker, page by page."""
    return VersionLister(client, params)


def list_all(client: Client, params: Optional[Mapping[str, Any]] = None) -> Lister:
    """``client.listAll(params)``: every key under a prefix, as a readable and an iterator.

    ``params`` as knox's ``list`` takes them: ``prefix``, ``delimiter``, ``max-keys``
    (the page size), ``marker`` (sent as ListObjectsV2's ``start-after``); others
    (``start-after``, ``fetch-owner``...) are passed as they are.
    """
    return Lister(client, params)


# -- deleteAll -------------------------------------------------------------------------------
ToDelete = Union[str, Tuple[str, Optional[str]]]  # a key, or (key, version id)


def _delete_key(item: Any) -> Optional[ToDelete]:
    """A key as ``build_delete`` takes it; common prefixes (``{'Prefix'}``) are skipped.

    Strings follow knox's ``deleteMultiple`` (a leading ``/`` is dropped); a listing
    entry's ``Key`` is the key itself, so it is given its own leading slash to drop. An
    entry with a ``VersionId`` (from ``listAllVersions``) deletes that version.
    """
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        if "Key" in item:
            key = "/" + str(item["Key"])
            version = item.get("VersionId")
            return key if version is None else (key, str(version))
        if "Prefix" in item:
            return None
    raise ValidationError(
        f"deleteAll: each key must be a string or a dict with 'Key', not {type(item).__name__}"
    )


def _delete_batch(session: Session, client: Client, keys: List[ToDelete]
                  ) -> Tuple[int, List[Dict[str, str]]]:
    xml = _xml.build_delete(keys)
    md5 = auth.content_md5(xml)
    _, body = session.send(client, "POST", "/?delete",
                           {"Content-Length": len(xml), "Content-MD5": md5}, xml)
    result = _xml.parse_delete_result(body)
    errors = [{"Key": str(e.get("Key", "")), "Code": str(e.get("Code", "")),
               "Message": str(e.get("Message", "")),
               **({"VersionId": str(e["VersionId"])} if e.get("VersionId") else {})}
              for e in result["Errors"]]
    return len(result["Deleted"]), errors


def delete_all(client: Client, keys: Any, fn: Optional[Callback] = None, *,
               concurrency: Optional[int] = None) -> Operation:
    """``client.deleteAll(keys, fn)``: delete any number of keys, 1000 per request, in parallel.

    ``keys``: a list or iterator of keys (strings, or dicts with ``Key``, and
    ``VersionId`` to delete one version) or a ``listAll``/``listAllVersions`` listing.
    Deleting starts at once, whether or not anyone waits; up to ``concurrency`` batches
    (client option, default 4) are in flight. Events: ``'keyError'`` ``{Key, Code,
    Message}`` for each key S3 refused, as batches come back; ``'retry'``; ``'end'`` (the
    result). ``'error'`` only when the operation fails as a whole (a batch answered with
    an error after retries, a failing listing).
    Result: ``{'deleted': int, 'errors': [{Key, Code, Message}, ...]}``.

    >>> client.deleteAll(client.listAll({'prefix': 'tmp/'})).wait()   # doctest: +SKIP
    {'deleted': 2500, 'errors': []}
    """
    op = Operation()
    try:
        n = concurrency_option(client, concurrency, DELETE_CONCURRENCY)
        # A string or a single entry dict is iterable too, and would delete its
        # characters or its field names.
        if isinstance(keys, (str, bytes, Mapping)) or not isinstance(keys, Iterable):
            raise ValidationError("deleteAll: keys must be a list, an iterator or a listing")
        if isinstance(keys, Lister) and keys._mode == "flowing":
            raise ValidationError("deleteAll: this listing already emits 'data' events")
        source = Shared(iter(keys))
    except ValidationError as err:
        return fail_later(op, fn, err)

    def on_retry(info: Any) -> None:
        op._post("retry", info)

    if isinstance(keys, Lister) and keys._on_retry is None:
        keys._on_retry = on_retry  # its pages' retries are this operation's
    lock = threading.Lock()
    totals: Dict[str, Any] = {"deleted": 0, "errors": []}

    def work(session: Session, stop: threading.Event) -> None:
        while not stop.is_set():
            batch: List[ToDelete] = source.take(DELETE_BATCH, _delete_key)
            if not batch:
                return
            deleted, errors = _delete_batch(session, client, batch)
            with lock:
                totals["deleted"] += deleted
                totals["errors"].extend(errors)
            for error in errors:
                op._post("keyError", Record(error))

    def body() -> Dict[str, Any]:
        fan_out(n, work, on_retry)
        return totals

    return start(op, fn, body)


# -- copyAll ---------------------------------------------------------------------------------
def _part_ranges(size: int) -> List[Tuple[int, int, int]]:
    """``(part number, first byte, last byte)`` for an UploadPartCopy of ``size`` bytes."""
    part = max(MULTIPART_COPY_PART_SIZE, -(-size // MAX_PARTS))
    if part > MAX_COPY_PART:
        raise ValidationError(f"object of {size} bytes is too large to copy in parts")
    return [(i + 1, start, min(start + part, size) - 1)
            for i, start in enumerate(range(0, size, part))]


def copy_headers(headers: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """copyAll's ``headers``, checked (``ValidationError`` naming the header, never its value):
    SSE-C keys of the source (``x-amz-copy-source-server-side-encryption-customer-*``) and of
    the copies (``x-amz-server-side-encryption-customer-*``), SSE-KMS, storage class,
    ``x-amz-metadata-directive`` (``COPY`` or ``REPLACE``) with the new metadata, tags...
    An SSE-C key's MD5 is added when left out.

    >>> sorted(copy_headers({'x-amz-storage-class': 'STANDARD_IA'}))
    ['x-amz-storage-class']
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ValidationError("copyAll: headers must be a dict of header names to values")
    check_headers(headers)
    out = {str(k).lower(): v for k, v in headers.items()}
    for name in out:
        if name in _COPY_OWN:
            raise ValidationError(f"copyAll: {name} is set by copyAll itself, for each key")
    directive = str(out.get("x-amz-metadata-directive", "COPY")).upper()
    if directive not in ("COPY", "REPLACE"):
        raise ValidationError("copyAll: x-amz-metadata-directive must be COPY or REPLACE")
    for prefix in (_SSE_C, _COPY_SSE_C):
        given = [n for n in out if n.startswith(prefix)]
        if not given:
            continue
        if prefix + "algorithm" not in out or prefix + "key" not in out:
            raise ValidationError(f"copyAll: SSE-C needs both {prefix}algorithm and {prefix}key")
        try:
            key = base64.b64decode(str(out[prefix + "key"]), validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ValidationError(f"copyAll: {prefix}key must be the base64 of a 256-bit key")
        md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
        if str(out.setdefault(prefix + "key-md5", md5)) != md5:
            raise ValidationError(f"copyAll: {prefix}key-MD5 is not the MD5 of {prefix}key")
    return out


class _Copier:
    """Copies one key at a time for copyAll, on a worker. ``headers`` (checked by
    :func:`copy_headers`) go on every copy: all of them on a CopyObject; of a copy by parts,
    the source's SSE-C key on its HEAD (as SSE-C headers) and on each UploadPartCopy, the
    copy's own SSE-C key on each part, the rest on CreateMultipartUpload."""

    def __init__(self, client: Client, dest: Client, concurrency: int,
                 on_retry: Callable[[Any], None], headers: Optional[Dict[str, Any]] = None
                 ) -> None:
        self.client = client
        self.dest = dest
        self.concurrency = concurrency
        self.on_retry = on_retry
        self.headers = dict(headers or {})
        self.source_sse_c = {_SSE_C + k[len(_COPY_SSE_C):]: v for k, v in self.headers.items()
                             if k.startswith(_COPY_SSE_C)}
        self.dest_sse_c = {k: v for k, v in self.headers.items() if k.startswith(_SSE_C)}

    def copy(self, session: Session, key: str, dest_key: str, size: Optional[int]) -> str:
        """Copy ``key`` to ``dest_key``; returns the new ETag. Raises what S3 answered."""
        if size is not None and size > MULTIPART_COPY_THRESHOLD:
            return self._copy_parts(session, key, dest_key)
        headers = {**self.headers, "x-amz-copy-source": copy_source(self.client.bucket, key),
                   "Content-Length": 0}
        # A 200 <Error> is retried by the request layer (as any 5xx answer).
        _, body = session.send(self.dest, "PUT", key_target(dest_key), headers)
        return str(_xml.parse_copy_result(body)["ETag"])

    def _copy_parts(self, session: Session, key: str, dest_key: str) -> str:
        """UploadPartCopy: initiate, copy ranges in parallel, complete; abort on failure."""
        head, _ = session.send(self.client, "HEAD", key_target(key), self.source_sse_c)
        size = int(head.headers.get("content-length", "0"))
        etag = head.headers.get("etag")
        replace = str(self.headers.get("x-amz-metadata-directive", "")).upper() == "REPLACE"
        headers: Dict[str, Any] = {} if replace else {
            k: v for k, v in head.headers.items()
            if k in _KEPT_HEADERS or k.startswith("x-amz-meta-")
        }
        headers.update((k, v) for k, v in self.headers.items()
                       if not k.startswith("x-amz-copy-source") and k != "x-amz-metadata-directive")
        headers["Content-Length"] = 0
        target = key_target(dest_key)
        _, body = session.send(self.dest, "POST", target + "?uploads", headers)
        upload_id = str(_xml.parse_initiate_multipart(body)["UploadId"])
        upload = f"uploadId={quote_query(upload_id)}"
        source = copy_source(self.client.bucket, key)

        def part(s: Session, rng: Tuple[int, int, int]) -> Tuple[int, str]:
            number, first, last = rng
            part_headers = {**self.dest_sse_c, **{k: v for k, v in self.headers.items()
                                                  if k.startswith(_COPY_SSE_C)},
                            "x-amz-copy-source": source, "Content-Length": 0,
                            "x-amz-copy-source-range": f"bytes={first}-{last}"}
            if etag:  # the source must not change under the copy
                part_headers["x-amz-copy-source-if-match"] = etag
            _, answer = s.send(self.dest, "PUT", f"{target}?partNumber={number}&{upload}",
                               part_headers)
            return number, str(_xml.parse_copy_result(answer)["ETag"])

        try:
            parts = parallel_map(self.concurrency, part, _part_ranges(size), self.on_retry)
            xml = _xml.build_complete_multipart(parts)
            _, answer = session.send(self.dest, "POST", f"{target}?{upload}",
                                     {"Content-Length": len(xml)}, xml)
            return str(_xml.parse_complete_multipart(answer)["ETag"])
        except BaseException:
            try:
                with _cancel.shielded():  # also, and above all, after a Ctrl-C
                    session.send(self.dest, "DELETE", f"{target}?{upload}")
            except Exception:  # noqa: BLE001 - the copy's own error is the one to report
                log.warning("knoxpy: could not abort multipart copy to %r (upload %s)",
                            dest_key, upload_id, exc_info=True)
            raise


class _CopyPlan:
    """What copyAll copies: ``(key, dest key, size)`` for each listed key, in listing order.

    A copy within the source bucket may land under the source prefix, after the key
    being copied: the listing would reach it later and copy the copy. Those destination
    keys, and only those, are remembered until the listing passes them, and skipped
    when it reaches them; every other listed key is copied (even one under the
    destination prefix). Keys are listed in order and ``dest prefix + rest`` keeps that
    order, so the remembered keys form a sorted queue, dropped from its front as the
    listing moves on. Not thread-safe: workers take from it through :class:`Shared`.
    """

    def __init__(self, listing: Iterator[Entry], prefix: str, dest_prefix: str,
                 same_bucket: bool) -> None:
        self._listing = listing
        self._prefix = prefix
        self._dest_prefix = dest_prefix
        self._same_bucket = same_bucket
        self._ahead: Deque[str] = collections.deque()  # copies the listing has yet to reach

    def __iter__(self) -> Iterator[Tuple[str, str, Optional[int]]]:
        return self

    def __next__(self) -> Tuple[str, str, Optional[int]]:
        ahead = self._ahead
        while True:
            entry = next(self._listing)
            key = str(entry["Key"])
            while ahead and ahead[0] < key:
                ahead.popleft()
            if ahead and ahead[0] == key:  # a copy made by this copyAll
                ahead.popleft()
                continue
            dest_key = self._dest_prefix + key[len(self._prefix):]
            if self._same_bucket and dest_key > key and dest_key.startswith(self._prefix):
                ahead.append(dest_key)  # reserved before it is written: no worker races it
            return key, dest_key, entry.get("Size")


class CopyTarget(NamedTuple):
    """Where copyAll sends each key: ``dest_prefix + key[len(prefix):]`` in ``dest_client``'s
    bucket; ``same_name``: that bucket has the source's name (it may be the source, so
    its copies may be listed)."""

    dest_client: Client
    dest_prefix: str
    same_name: bool


def copy_target(client: Client, prefix: str, dest: Optional[Mapping[str, Any]]
                ) -> CopyTarget:
    """copyAll's ``prefix`` and ``dest`` checked (``ValidationError``) and resolved."""
    if not isinstance(prefix, str):
        raise ValidationError("copyAll: prefix must be a string")
    if dest is None:
        dest = {}
    if not isinstance(dest, Mapping):
        raise ValidationError("copyAll: dest must be a dict {'bucket': ..., 'prefix': ...}")
    dest_prefix = dest.get("prefix")
    dest_prefix = prefix if dest_prefix is None else str(dest_prefix)
    options = {k: v for k, v in dest.items() if k != "prefix" and v is not None}
    dest_bucket = options.get("bucket") or client.bucket
    same_bucket = dest_bucket == client.bucket and set(options) <= {"bucket"}
    if same_bucket and dest_prefix == prefix:
        raise ValidationError("copyAll: the destination is the source (same bucket, "
                              "same prefix)")
    dest_client = client if same_bucket else Client(dict(client.options, **options))
    return CopyTarget(dest_client, dest_prefix, dest_bucket == client.bucket)


def copy_all(client: Client, prefix: str, dest: Mapping[str, Any],
             fn: Optional[Callback] = None, *, concurrency: Optional[int] = None,
             entries: Optional[List[Entry]] = None,
             headers: Optional[Mapping[str, Any]] = None) -> Operation:
    """``client.copyAll(prefix, dest, fn)``: copy every key under ``prefix``, in parallel.

    ``dest``: ``{'bucket': ..., 'prefix': ...}``, either left out meaning the source's
    (other client options there, such as ``region``, apply to the destination
    bucket). Each ``key`` goes to ``dest prefix + key[len(prefix):]`` with a server-side
    copy (knox's ``x-amz-copy-source``); objects over :data:`MULTIPART_COPY_THRESHOLD`
    (5 GiB) go by UploadPartCopy. Up to ``concurrency`` (client option, default 8)
    objects are copied at once. Events: ``'copied'`` ``{Key, DestKey, ETag}``,
    ``'keyError'`` ``{Key, DestKey, Code, Message}`` (the copy of that key failed; the
    others go on), ``'retry'``, ``'end'`` (the result). ``'error'`` when the operation
    fails as a whole (the listing failed, the destination bucket does not exist).
    Result: ``{'copied': int, 'errors': [{Key, DestKey, Code, Message}, ...]}``.

    ``headers``: sent with every copy (see :func:`copy_headers`): SSE-C keys of the source
    and of the copies, ``x-amz-server-side-encryption: aws:kms``, ``x-amz-storage-class``,
    ``x-amz-metadata-directive``. Customer keys are never logged nor shown in errors.

    ``entries`` (knoxpy's own use: a partition of the listing, copied on a cluster
    worker by :mod:`knoxpy.cluster`): copy exactly these listing entries (``Key``,
    ``Size``), all under ``prefix``, instead of listing the prefix.

    >>> client.copyAll('2024/', {'prefix': 'old/2024/'}).wait()   # doctest: +SKIP
    {'copied': 2500, 'errors': []}
    """
    op = Operation()
    try:
        n = concurrency_option(client, concurrency, COPY_CONCURRENCY)
        dest_client, dest_prefix, same_name = copy_target(client, prefix, dest)
        every = copy_headers(headers)
        if entries is not None and not all(
                isinstance(e, Mapping) and str(e.get("Key", "")).startswith(prefix)
                for e in entries):
            raise ValidationError(f"copyAll: every entry must be a dict with a 'Key' under "
                                  f"the prefix {prefix!r}")
    except ValidationError as err:
        return fail_later(op, fn, err)

    def on_retry(info: Any) -> None:
        op._post("retry", info)

    copier = _Copier(client, dest_client, n, on_retry, every)
    if entries is None:
        listing = Lister(client, {"prefix": prefix})
        listing._on_retry = on_retry
        # A destination bucket of the source's name may be the source: its copies may be
        # listed.
        source = Shared(_CopyPlan(listing, prefix, dest_prefix, same_name))
    else:
        source = Shared(iter([(str(e["Key"]), dest_prefix + str(e["Key"])[len(prefix):],
                               e.get("Size")) for e in entries]))
    lock = threading.Lock()
    totals: Dict[str, Any] = {"copied": 0, "errors": []}

    def work(session: Session, stop: threading.Event) -> None:
        while not stop.is_set():
            planned = source.next()
            if planned is None:
                return
            key, dest_key, size = planned
            try:
                etag = copier.copy(session, key, dest_key, size)
            except _PER_KEY as err:
                if isinstance(err, S3Error) and err.code == "NoSuchBucket":
                    raise  # the destination is gone: every key would fail
                code = getattr(err, "code", None) or type(err).__name__
                failure = {"Key": key, "DestKey": dest_key, "Code": str(code),
                           "Message": str(getattr(err, "message", "") or err)}
                with lock:
                    totals["errors"].append(failure)
                op._post("keyError", Record(failure))
            else:
                with lock:
                    totals["copied"] += 1
                op._post("copied", Record(Key=key, DestKey=dest_key, ETag=etag))

    def body() -> Dict[str, Any]:
        fan_out(n, work, on_retry)
        return totals

    return start(op, fn, body)
