"""knoxpy as an fsspec filesystem: ``knox://bucket/key`` for pandas, pyarrow, Dask and zarr.

A thin adapter (the model is obstore's ``obstore.fsspec``): each fsspec method is a few
lines over knoxpy's own operations, awaited natively on fsspec's event loop (a knoxpy
object made inside a running asyncio loop delivers there, docs/execution-model.md):

==========================  ==========================================================
fsspec                      knoxpy
==========================  ==========================================================
``info``                    the cached listing, else ``HEAD``, else a one-key listing
``ls`` / ``find`` / glob    ``listAll`` (with ``/`` as delimiter for ``ls``; ``find``
                            is one flat listing, not a walk)
``cat_file``/``cat_ranges`` ranged ``GET`` s; a large range in parallel parts;
                            ``cat_ranges`` merges ranges under 1 MiB apart
``open('rb')``              ranged read-ahead ``GET`` s, each ``If-Match`` the ETag;
                            a read over a block in parallel parts, past the cache
``open('wb')``, ``pipe``,   ``upload``: one ``PUT``, or a multipart upload with a part
``put_file``                per block, aborted on failure; ``'progress'`` feeds the
                            fsspec callback. ``xb`` / ``mode='create'``:
                            ``If-None-Match: *`` (an existing key: ``FileExistsError``)
``get_file``                ``download``: parallel ranges, verified, renamed into place
``cp_file``                 server-side copy (UploadPartCopy over 5 GiB)
``rm``                      ``deleteAll``: 1000 keys a request
``sign``                    ``signedUrl``
==========================  ==========================================================

Registered as ``knox`` through the ``fsspec.specs`` entry point, so
``fsspec.filesystem('knox')`` works without importing knoxpy. It serves ``s3://`` only
when asked (:func:`register`): installing knoxpy must never replace s3fs behind its back.

Options are :func:`knoxpy.createClient`'s (``key``, ``secret``, ``token``, ``region``,
``endpoint``, ``port``, ``secure``, ``style``, ``signatureVersion``, ``partSize``,
``concurrency``, ``checksum``, ``timeout``...) plus ``endpoint_url`` and ``profile``;
without a ``key`` the usual chain is searched (``AWS_*`` variables, ``~/.aws``). An
instance pickles as its options (no socket or loop travels) and rebuilds its clients in
a forked or spawned process. docs/ecosystem.md has the examples.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import numbers
import os
import queue
import threading
import time
from collections import defaultdict
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import fsspec
import fsspec.asyn
import fsspec.spec
from fsspec.callbacks import DEFAULT_CALLBACK

from . import _xml
from ._download import checked_range
from ._emitter import Operation
from ._streams import ClientRequest, IncomingMessage
from ._work import Session, key_target, quote_query, s3_error, start
from .bulk import COPY_CONCURRENCY, _Copier
from .client import Client, createClient
from .errors import KnoxError, S3Error

__all__ = ["KnoxFile", "KnoxFileSystem", "S3KnoxFileSystem", "register"]

Info = Dict[str, Any]

# fsspec's own options (the listing cache, the instance cache): not createClient's.
_FSSPEC_OPTIONS = ("use_listings_cache", "listings_expiry_time", "max_paths",
                   "skip_instance_cache", "default_block_size")
_MIN_PART = 5 * 1024 * 1024  # S3's smallest part: a write block is at least this big
_END = object()  # the end of a written file's blocks


def _os_error(err: BaseException, path: str, create: bool = False) -> BaseException:
    """The Python error for an S3 one, as pandas and pyarrow expect (else ``err`` itself)."""
    if not isinstance(err, S3Error):
        return err
    if err.statusCode == 404 or err.code in ("NoSuchKey", "NoSuchBucket", "NotFound"):
        return FileNotFoundError(errno.ENOENT, str(err), path)
    if err.statusCode == 403 or err.code == "AccessDenied":
        return PermissionError(errno.EACCES, str(err), path)
    if create and err.statusCode == 412:
        return FileExistsError(errno.EEXIST, str(err), path)
    return err


async def _exchange(req: ClientRequest, path: str) -> Tuple[IncomingMessage, bytes]:
    """Send ``req``, gather the body on this loop; an error answer raises (mapped)."""
    res: IncomingMessage = await req.end()
    return res, await _gather(res, path)


def _fill(res: IncomingMessage, view: memoryview) -> int:
    """Read ``res``'s body into ``view`` (blocking, on a worker): how many bytes came."""
    got = 0
    while got < len(view):
        n = res.readinto(view[got:])
        if not n:
            return got
        got += n
    if res.read(1):  # more than the range asked for: never a silent truncation
        raise OSError(errno.EIO, f"{res.url}: a longer body than the range asked for")
    return got


_SCRATCH = threading.local()  # a worker's buffer for the bodies it reads into
_SCRATCH_SIZE = 1024 * 1024


def _pick(res: IncomingMessage, first: int, wanted: List[Tuple[int, int]]) -> List[bytes]:
    """Read ``res``'s body (its first byte at offset ``first``) through this worker's one
    reused buffer (blocking), keeping only the ``wanted`` ranges: the bytes between them
    cost a read into that buffer and no more (no copy, no fresh memory)."""
    view: Optional[memoryview] = getattr(_SCRATCH, "view", None)
    if view is None:
        view = _SCRATCH.view = memoryview(bytearray(_SCRATCH_SIZE))
    parts: List[List[bytes]] = [[] for _ in wanted]
    pos = first
    while True:
        n = res.readinto(view)
        if not n:
            return [b"".join(p) for p in parts]
        for part, (s, e) in zip(parts, wanted):
            a, b = max(s, pos), min(e, pos + n)
            if a < b:
                part.append(bytes(view[a - pos:b - pos]))
        pos += n


async def _gather(res: IncomingMessage, path: str) -> bytes:
    """``res``'s body, gathered on this loop; an error answer raises (mapped)."""
    body: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    parts: List[bytes] = []
    res.on("data", parts.append)

    def on_end() -> None:
        if not body.done():
            body.set_result(b"".join(parts))

    def on_error(err: BaseException) -> None:
        if not body.done():
            body.set_exception(err)

    res.on("end", on_end)
    res.on("error", on_error)
    data = await body
    if res.statusCode >= 300:
        err = s3_error(res, data)
        raise _os_error(err, path) from err
    return data


def _bounds(start: Any, end: Any) -> Optional[Tuple[int, int]]:
    """fsspec's ``[start, end)`` as offsets from the object's start, when it is given so
    (``start`` None or >= 0, ``end`` >= 0; ``start`` None only with ``end`` > 0): else None,
    the range depends on the object's size (negative: from the end; ``end`` None: to it)."""
    if not isinstance(end, numbers.Integral) or int(end) < 0:
        return None
    if start is None:
        return (0, int(end)) if int(end) > 0 else None
    if not isinstance(start, numbers.Integral) or int(start) < 0:
        return None
    return int(start), int(end)


def _file_info(bucket: str, entry: Any) -> Info:
    modified = entry.get("LastModified")
    return {"name": f"{bucket}/{entry['Key']}", "type": "file", "size": int(entry["Size"]),
            "ETag": entry.get("ETag"), "LastModified": modified, "mtime": modified,
            "StorageClass": entry.get("StorageClass", "STANDARD")}


def _dir_info(name: str) -> Info:
    return {"name": name, "type": "directory", "size": 0, "StorageClass": "DIRECTORY"}


def _progress_to(callback: Any) -> Callable[[Any], None]:
    """An upload's or download's ``'progress'`` as fsspec callback updates."""
    def on_progress(p: Any) -> None:
        if p["total"] is not None:
            callback.set_size(p["total"])
        callback.absolute_update(p["written"])
    return on_progress


class KnoxFileSystem(fsspec.asyn.AsyncFileSystem):  # type: ignore[misc]
    """``knox://bucket/key``: S3 through knoxpy, for everything that speaks fsspec.

    >>> import fsspec
    >>> fs = fsspec.filesystem('knox', key='AKID', secret='s3cr3t')
    >>> fs.sign('my-bucket/hello.txt', expiration=3600).startswith(
    ...     'https://my-bucket.s3.amazonaws.com/hello.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256')
    True
    >>> fs.pipe_file('my-bucket/hello.txt', b'hi')            # doctest: +SKIP
    >>> fs.cat_file('my-bucket/hello.txt')                    # doctest: +SKIP
    b'hi'
    """

    protocol: Tuple[str, ...] = ("knox",)
    root_marker = ""
    cachable = True
    default_block_size = 8 * 1024 * 1024  # knoxpy's partSize: a written block is a part
    # fsspec gathers up to 1280 coroutines at once for bulk calls (pipe, cat, put). That
    # many no longer hangs (a driver runs its own I/O: docs/execution-model.md), but 128
    # keep every link busy without 1280 threads, buffers and connections.
    default_batch_size = 128
    # Reading: a span over two parts comes as parallel ranged GETs of a part each (an
    # open file's large reads, as pyarrow's column chunks, and big cat_file calls); the
    # options partSize and concurrency set them, with download's defaults.
    read_part_size = 8 * 1024 * 1024
    read_concurrency = 4
    # cat_ranges: ranges of one object less than coalesce_gap apart are one GET (object_store's
    # 1 MiB: a round trip costs more than reading that many bytes), up to coalesce_max each;
    # cat_concurrency GETs at once.
    coalesce_gap = 1024 * 1024
    coalesce_max = 16 * 1024 * 1024
    cat_concurrency = 32
    _pid: int  # fsspec's: the process the instance was made in

    def __init__(self, *, asynchronous: bool = False, loop: Any = None,
                 batch_size: Optional[int] = None, **options: Any) -> None:
        super().__init__(asynchronous=asynchronous, loop=loop,
                         batch_size=batch_size or self.default_batch_size, **options)
        if options.get("default_block_size"):
            self.default_block_size = int(options["default_block_size"])
        # a client's partSize and concurrency shape its large reads as they do its transfers
        if isinstance(options.get("partSize"), int) and options["partSize"] > 0:
            self.read_part_size = options["partSize"]
        if isinstance(options.get("concurrency"), int) and options["concurrency"] > 0:
            self.read_concurrency = options["concurrency"]
        self._options = {k: v for k, v in options.items() if k not in _FSSPEC_OPTIONS}
        self._clients: Dict[str, Client] = {}
        self._clients_pid = os.getpid()

    @property
    def loop(self) -> Any:
        """fsspec's IO loop; in a forked child, the child's own (fsspec makes a new one)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            if not self.asynchronous:
                self._loop = fsspec.asyn.get_loop()
        return self._loop

    def _client(self, bucket: str) -> Client:
        """The client of ``bucket``, made on first use in this process (never a parent's)."""
        if self._clients_pid != os.getpid():
            self._clients, self._clients_pid = {}, os.getpid()
        client = self._clients.get(bucket)
        if client is None:
            client = self._clients[bucket] = createClient(dict(self._options, bucket=bucket))
        return client

    def _split(self, path: str) -> Tuple[str, str]:
        bucket, _, key = self._strip_protocol(path).partition("/")
        return bucket, key

    def invalidate_cache(self, path: Optional[str] = None) -> None:
        """Forget cached listings of ``path`` and of every directory above it (all: None)."""
        if path is None:
            self.dircache.clear()
            return
        path = self._strip_protocol(path)
        while path:
            self.dircache.pop(path, None)
            path = self._parent(path)
        self.dircache.pop("", None)

    # -- listing -------------------------------------------------------------------------------
    async def _listing(self, bucket: str, prefix: str, delimiter: Optional[str] = None
                       ) -> List[Info]:
        """Every entry under ``prefix`` (``listAll``), as fsspec info dicts."""
        params: Dict[str, Any] = {"prefix": prefix}
        if delimiter:
            params["delimiter"] = delimiter
        lister = self._client(bucket).listAll(params)
        entries: List[Any] = []
        lister.on("data", entries.append)
        try:
            await lister
        except KnoxError as err:
            raise _os_error(err, f"{bucket}/{prefix}") from err
        return [_dir_info(f"{bucket}/{e['Prefix'].rstrip('/')}") if "Prefix" in e
                else _file_info(bucket, e) for e in entries if e.get("Key") != prefix]

    async def _probe(self, bucket: str, prefix: str) -> bool:
        """Whether anything lies under ``prefix`` (one key asked for)."""
        query = f"?list-type=2&max-keys=1&prefix={quote_query(prefix)}"
        _, body = await _exchange(self._client(bucket).request("GET", "/" + query),
                                  f"{bucket}/{prefix}")
        return bool(_xml.parse_list(body).get("Contents"))

    async def _ls(self, path: str, detail: bool = True, refresh: bool = False,
                  **kwargs: Any) -> List[Any]:
        path = self._strip_protocol(path)
        bucket, key = self._split(path)
        if not bucket:
            raise NotImplementedError("knox:// lists a bucket, not the buckets of an account")
        entries = None if refresh else self.dircache.get(path)
        if entries is None:
            entries = sorted(await self._listing(bucket, key + "/" if key else "", "/"),
                             key=lambda e: e["name"])
            if entries:
                self.dircache[path] = entries
        if not entries and key:  # a file lists as itself, an empty folder as nothing
            info = await self._info(path)
            entries = [info] if info["type"] == "file" else []
        return entries if detail else [e["name"] for e in entries]

    async def _info(self, path: str, refresh: bool = False, **kwargs: Any) -> Info:
        path = self._strip_protocol(path)
        bucket, key = self._split(path)
        if not bucket:
            return _dir_info("")
        if not refresh:
            cached = self._ls_from_cache(path)  # FileNotFoundError if its listing lacks it
            if cached is not None:
                return next((e for e in cached if e["name"] == path), _dir_info(path))
        if key:
            try:
                res, _ = await _exchange(self._client(bucket).head(key_target(key)), path)
            except FileNotFoundError:
                pass
            else:
                h = res.headers
                modified = parsedate_to_datetime(h["last-modified"]) if h.get(
                    "last-modified") else None
                info = {"name": path, "type": "file", "size": int(h.get("content-length", 0)),
                        "ETag": h.get("etag"), "LastModified": modified, "mtime": modified,
                        "StorageClass": h.get("x-amz-storage-class", "STANDARD"),
                        "ContentType": h.get("content-type")}
                if h.get("x-amz-version-id"):
                    info["VersionId"] = h["x-amz-version-id"]
                return info
        if await self._probe(bucket, key + "/" if key else "") or not key:
            return _dir_info(path)
        raise FileNotFoundError(errno.ENOENT, "no such key or prefix", path)

    def _remember_tree(self, root: str, listing: List[Info]) -> None:
        """A whole flat listing of ``root`` holds the listing of every directory under it:
        cache them (as ``ls`` would), so the ``info``/``isdir`` calls that follow a ``find``
        (in ``glob``, ``cp``, ``get``, ``rm``) need no request."""
        tree: Dict[str, Dict[str, Info]] = {}
        for entry in listing:
            name = entry["name"]
            child = entry if not name.endswith("/") else _dir_info(name.rstrip("/"))
            if name.endswith("/"):
                tree.setdefault(child["name"], {})  # a folder marker: an empty directory
            while child["name"] != root:
                parent = self._parent_of(child["name"])
                tree.setdefault(parent, {})[child["name"]] = child
                child = _dir_info(parent)
        for directory, children in tree.items():
            self.dircache[directory] = sorted(children.values(), key=lambda e: e["name"])

    def _parent_of(self, name: str) -> str:
        """fsspec's ``_parent`` of a name this filesystem made, without its protocol
        stripping where there is none to strip (a listing calls it once per key)."""
        if name.endswith("/") or ":" in name:
            return str(self._parent(name))
        return name.rpartition("/")[0]

    async def _isdir(self, path: str) -> bool:
        """One listing of a key (not a HEAD and a listing): is anything under ``path/``?"""
        path = self._strip_protocol(path)
        bucket, key = self._split(path)
        if not key:
            return bool(await self._exists(path))
        try:
            cached = self._ls_from_cache(path)
        except FileNotFoundError:
            return False
        if cached is not None:
            return any(e["name"] == path and e["type"] == "directory" for e in cached) or (
                path in self.dircache)
        try:
            return await self._probe(bucket, key + "/")
        except FileNotFoundError:
            return False

    async def _find(self, path: str, maxdepth: Optional[int] = None, withdirs: bool = False,
                    detail: bool = False, **kwargs: Any) -> Any:
        """Every object under ``path`` from one flat listing (directories inferred)."""
        path = self._strip_protocol(path)
        bucket, key = self._split(path)
        prefix = key + "/" if key else ""
        found: Dict[str, Info] = {}
        listing = await self._listing(bucket, prefix)
        if maxdepth is None:
            self._remember_tree(path, listing)
        if maxdepth is None and not withdirs:  # every file (a folder marker is none)
            found = {e["name"]: e for e in listing if not e["name"].endswith("/")}
        else:
            for entry in listing:
                rel = entry["name"][len(bucket) + 1 + len(prefix):]
                parts = rel.rstrip("/").split("/")
                # a file's parent directories; a key ending in "/" (a console's folder) too
                for depth in range(1, len(parts) + rel.endswith("/")):
                    if withdirs and (maxdepth is None or depth <= maxdepth):
                        name = f"{bucket}/{prefix}{'/'.join(parts[:depth])}"
                        found.setdefault(name, _dir_info(name))
                if not rel.endswith("/") and (maxdepth is None or len(parts) <= maxdepth):
                    found[entry["name"]] = entry
        if found and withdirs and key:
            found[path] = _dir_info(path)
        if not found and key:
            try:
                info = await self._info(path)
            except FileNotFoundError:
                info = None
            if info is not None and info["type"] == "file":
                found[path] = info
        names = sorted(found)
        return {n: found[n] for n in names} if detail else names

    # -- reading ---------------------------------------------------------------------------------
    async def _answer(self, path: str, start: int, end: int, if_match: Optional[str]
                      ) -> Optional[IncomingMessage]:
        """Send a ``GET`` of bytes ``[start, end)``; its answer, body unread (None: the range
        lies past the end). An error answer raises (mapped)."""
        bucket, key = self._split(path)
        headers: Dict[str, Any] = {"Range": f"bytes={start}-{end - 1}"}
        if if_match:
            headers["If-Match"] = if_match  # a ranged read never mixes two versions
        res: IncomingMessage = await self._client(bucket).get(key_target(key), headers).end()
        if res.statusCode >= 300:
            try:
                await _gather(res, path)
            except S3Error as err:
                if err.statusCode == 416:  # a range past the end: nothing there
                    return None
                raise
        return res

    async def _read_span(self, path: str, start: int, end: int, if_match: Optional[str]
                         ) -> Union[bytes, bytearray]:
        """Bytes ``[start, end)`` as parallel ranged ``GET`` s of ``read_part_size`` each,
        ``read_concurrency`` at once, every one ``If-Match`` one ETag (the one given, else
        the first answer's), each read on a worker straight into one buffer (returned).
        Every answer must be exactly the range asked for, of the first answer's total and
        with that ETag (:func:`knoxpy._download.checked_range`), else ``IntegrityError``."""
        loop = asyncio.get_running_loop()
        part = self.read_part_size
        res = await self._answer(path, start, min(start + part, end), if_match)
        if res is None:
            return b""
        if res.statusCode == 200:  # a store that ignored the Range sent it all
            return (await _gather(res, path))[start:end]
        _, total = checked_range(res, start, min(start + part, end) - 1, None, if_match,
                                 repr(path), "read")
        if_match = if_match or res.headers.get("etag")
        if not if_match:  # no ETag to hold parallel ranges to one version: the rest in one
            data = await _gather(res, path)
            return data + await self._cat_file(path, start + len(data), end)
        stop = min(end, total)
        buf = bytearray(stop - start)
        view = memoryview(buf)
        gate = asyncio.Semaphore(self.read_concurrency)

        async def fetch(a: int, b: int, answer: Optional[IncomingMessage]) -> None:
            async with gate:
                if answer is None:
                    answer = await self._answer(path, a, b, if_match)
                    if answer is not None:
                        checked_range(answer, a, b - 1, total, if_match, repr(path), "read")
                got = await loop.run_in_executor(None, _fill, answer,
                                                 view[a - start:b - start]) if answer else 0
            if got != b - a:
                raise OSError(errno.EIO, f"bytes {a}-{b - 1}: {got} came, not {b - a}", path)

        cuts = [(a, min(a + part, stop)) for a in range(start, stop, part)]
        done = await asyncio.gather(*(fetch(a, b, res if a == start else None)
                                      for a, b in cuts), return_exceptions=True)
        failed = next((d for d in done if isinstance(d, BaseException)), None)
        if failed is not None:
            raise failed
        return buf

    async def _cat_file(self, path: str, start: Optional[int] = None,
                        end: Optional[int] = None, if_match: Optional[str] = None,
                        **kwargs: Any) -> bytes:
        """Bytes ``[start, end)`` of ``path`` (fsspec's limits: None, negative from the end).
        A span over ``2 * read_part_size`` comes as parallel ranged ``GET`` s
        (:meth:`_read_span`), else as one ``GET``."""
        if start is not None and end is not None and 0 <= end <= start:
            return b""
        bounds = _bounds(start, end)
        if bounds is not None and bounds[1] - bounds[0] > 2 * self.read_part_size:
            return bytes(await self._read_span(path, *bounds, if_match))
        bucket, key = self._split(path)
        headers: Dict[str, Any] = {}
        if start or end is not None:
            headers["Range"] = await self._process_limits(path, start, end)
        if if_match:
            headers["If-Match"] = if_match  # a ranged read never mixes two versions
        try:
            _, data = await _exchange(self._client(bucket).get(key_target(key), headers), path)
        except S3Error as err:
            if err.statusCode == 416:  # a range past the end: nothing there
                return b""
            raise
        return data

    async def _cat_ranges(self, paths: List[str], starts: Any, ends: Any,
                          max_gap: Optional[int] = None, batch_size: Optional[int] = None,
                          on_error: str = "return", **kwargs: Any) -> List[Any]:
        """Byte ranges of one or more objects, as fsspec's (same results, same errors), in
        fewer ``GET`` s: ranges of one object closer than ``max_gap`` bytes (default
        ``coalesce_gap``, 1 MiB, object_store's) are fetched as one ``GET`` of at most
        ``coalesce_max`` bytes (unless one range alone is larger) and sliced back;
        ``batch_size`` (default ``cat_concurrency``) ``GET`` s at once. Ranges given from
        the end (negative) or to it (``None``) are each fetched alone, as ``cat_file``."""
        if not isinstance(paths, list):
            raise TypeError("cat_ranges: paths must be a list")
        if not isinstance(starts, Iterable):
            starts = [starts] * len(paths)
        if not isinstance(ends, Iterable):
            ends = [ends] * len(paths)
        starts, ends = list(starts), list(ends)
        if len(starts) != len(paths) or len(ends) != len(paths):
            raise ValueError("cat_ranges: paths, starts and ends differ in length")
        gap = self.coalesce_gap if max_gap is None else int(max_gap)
        out: List[Any] = [b""] * len(paths)
        spans: Dict[str, List[Tuple[int, int, int]]] = defaultdict(list)
        alone: List[int] = []
        for i, (p, s, e) in enumerate(zip(paths, starts, ends)):
            bounds = _bounds(s, e)
            if bounds is None:
                alone.append(i)
            elif bounds[1] > bounds[0]:
                spans[self._strip_protocol(p)].append((*bounds, i))
            # else: an empty range, b"" as cat_file gives it without a request
        gate = asyncio.Semaphore(batch_size or self.cat_concurrency)
        loop = asyncio.get_running_loop()

        async def fetch(path: str, start: Any, end: Any) -> Any:
            async with gate:
                try:
                    return await self._cat_file(path, start, end, **kwargs)
                except Exception as err:  # noqa: BLE001 - per range, as fsspec's
                    return err

        async def merged(path: str, lo: int, hi: int, members: List[Tuple[int, int, int]]
                         ) -> None:
            got: List[Any] = [b""] * len(members)  # past the end: nothing there
            async with gate:
                try:
                    res = await self._answer(path, lo, hi, kwargs.get("if_match"))
                    if res is not None:  # a store that ignored the Range sent it all
                        got = await loop.run_in_executor(
                            None, _pick, res, lo if res.statusCode == 206 else 0,
                            [(s, e) for s, e, _ in members])
                except Exception as err:  # noqa: BLE001 - per range, as fsspec's
                    got = [err] * len(members)
            for (_, _, i), data in zip(members, got):
                out[i] = data

        async def single(i: int) -> None:
            out[i] = await fetch(paths[i], starts[i], ends[i])

        jobs = [single(i) for i in alone]
        for path, ranges in spans.items():
            ranges.sort()
            lo, hi, members = ranges[0][0], ranges[0][1], [ranges[0]]
            for rng in ranges[1:]:
                s, e, _ = rng
                if s - hi <= gap and max(hi, e) - lo <= self.coalesce_max:
                    hi = max(hi, e)
                    members.append(rng)
                else:
                    jobs.append(merged(path, lo, hi, members))
                    lo, hi, members = s, e, [rng]
            jobs.append(merged(path, lo, hi, members))
        await asyncio.gather(*jobs)
        if on_error != "return":
            failed = next((x for x in out if isinstance(x, Exception)), None)
            if failed is not None:
                raise failed
        return out

    async def _get_file(self, rpath: str, lpath: str, callback: Any = DEFAULT_CALLBACK,
                        **kwargs: Any) -> None:
        if os.path.isdir(lpath):
            return  # a directory: S3 has none to fetch
        bucket, key = self._split(rpath)
        op = self._client(bucket).download(key, lpath)
        op.on("progress", _progress_to(callback))
        try:
            await op
        except KnoxError as err:
            raise _os_error(err, rpath) from err

    # -- writing ---------------------------------------------------------------------------------
    async def _upload(self, path: str, source: Any, create: bool, callback: Any = None,
                      **options: Any) -> Any:
        """``upload`` ``source`` to ``path``; ``create``: only if no such key exists."""
        bucket, key = self._split(path)
        if not key:
            raise IsADirectoryError(errno.EISDIR, "a bucket is not an object", path)
        op = self._client(bucket).upload(source, key, {"If-None-Match": "*"} if create else {},
                                         **options)
        if callback is not None:
            op.on("progress", _progress_to(callback))
        try:
            return await op
        except KnoxError as err:
            raise _os_error(err, path, create) from err
        finally:
            self.invalidate_cache(path)  # after the write: a listing made during it is stale

    async def _pipe_file(self, path: str, value: Any, mode: str = "overwrite",
                         **kwargs: Any) -> None:
        await self._upload(path, bytes(value), mode == "create")

    def touch(self, path: str, truncate: bool = True, **kwargs: Any) -> None:
        """An empty object (one ``PUT``); S3 cannot touch an existing one's time."""
        if not truncate and self.exists(path):
            raise NotImplementedError("S3 cannot change an object's modification time")
        self.pipe_file(path, b"")

    async def _put_file(self, lpath: str, rpath: str, callback: Any = DEFAULT_CALLBACK,
                        mode: str = "overwrite", **kwargs: Any) -> None:
        if os.path.isdir(lpath):
            return  # S3 has no directories to make
        await self._upload(rpath, lpath, mode == "create", callback)

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """A server-side copy (knoxpy's, as ``copyAll`` makes: UploadPartCopy over 5 GiB)."""
        info = await self._info(path1)
        if info["type"] != "file":
            raise FileNotFoundError(errno.ENOENT, "a directory, not an object", path1)
        (b1, k1), (b2, k2) = self._split(path1), self._split(path2)
        source, dest = self._client(b1), self._client(b2)
        copier = _Copier(source, dest, int(source.options.get("concurrency") or
                                           COPY_CONCURRENCY), lambda _info: None)
        op = start(Operation(), None, lambda: copier.copy(Session(), k1, k2, info["size"]))
        try:
            await op
        except KnoxError as err:
            raise _os_error(err, path1) from err
        finally:
            self.invalidate_cache(path2)

    async def _rm(self, path: Any, recursive: bool = False, maxdepth: Optional[int] = None,
                  **kwargs: Any) -> None:
        """Delete with ``deleteAll``: 1000 keys a request, batches in parallel."""
        paths = await self._expand_path(path, recursive=recursive, maxdepth=maxdepth)
        keys: Dict[str, List[str]] = defaultdict(list)
        for p in paths:
            bucket, key = self._split(p)
            if key:  # a bucket itself is never deleted
                keys[bucket].append(key)
        try:
            for bucket, batch in keys.items():
                result = await self._client(bucket).deleteAll(batch)
                if result["errors"]:
                    e = result["errors"][0]
                    err = S3Error(e["Code"], e["Message"], 0, key=e["Key"])
                    raise _os_error(err, f"{bucket}/{e['Key']}") from err
        finally:
            for p in paths:
                self.invalidate_cache(p)

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        await self._rm(path)

    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        pass  # S3 has no directories: a key makes its prefixes appear

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        pass

    def _open(self, path: str, mode: str = "rb", block_size: Optional[int] = None,
              autocommit: bool = True, cache_options: Optional[Dict[str, Any]] = None,
              **kwargs: Any) -> KnoxFile:
        if mode not in ("rb", "wb", "xb"):
            raise NotImplementedError(f"knox:// opens files 'rb', 'wb' or 'xb', not {mode!r}")
        if not autocommit:
            raise NotImplementedError("knox:// commits a written file when it is closed; "
                                      "fsspec transactions are not supported")
        return KnoxFile(self, path, mode, block_size or self.default_block_size,
                        cache_options=cache_options, **kwargs)

    # -- the rest of what s3fs users expect --------------------------------------------------
    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        """A presigned URL (``signedUrl``) valid for ``expiration`` seconds; ``kwargs`` are
        signedUrl's options (``verb``, ``contentType``, ``qs``, ``extraHeaders``)."""
        bucket, key = self._split(path)
        return self._client(bucket).signedUrl(key, time.time() + expiration, kwargs or None)

    def ukey(self, path: str) -> str:
        """The object's ETag, unquoted: it changes whenever the object does."""
        etag = self.info(path).get("ETag")
        if not etag:
            raise FileNotFoundError(errno.ENOENT, "not an object", path)
        return str(etag).strip('"')

    def checksum(self, path: str) -> int:
        return int(hashlib.sha256(self.ukey(path).encode()).hexdigest(), 16)

    def modified(self, path: str) -> Any:
        info = self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(errno.EISDIR, "a directory has no modification time", path)
        return info["LastModified"]


class S3KnoxFileSystem(KnoxFileSystem):
    """knoxpy for ``s3://`` and ``s3a://`` URLs, once :func:`register` is called."""

    protocol = ("s3", "s3a")


def register(*protocols: str) -> None:
    """Serve ``s3://`` (and/or ``s3a://``) with knoxpy instead of s3fs, in this process.

    Opt-in, because fsspec entry points clobber: installing knoxpy never does it.

    >>> import knoxpy.fs
    >>> knoxpy.fs.register('s3')                              # doctest: +SKIP
    >>> pd.read_parquet('s3://my-bucket/data.parquet')        # doctest: +SKIP
    """
    for protocol in protocols or ("s3",):
        if protocol not in S3KnoxFileSystem.protocol:
            raise ValueError(f"knoxpy.fs.register serves 's3' or 's3a', not {protocol!r} "
                             "('knox' is registered already)")
        fsspec.register_implementation(protocol, S3KnoxFileSystem, clobber=True)


def _blocks(inbox: queue.Queue[Any]) -> Iterator[bytes]:
    """A written file's blocks, as ``upload``'s source (read on a knoxpy worker)."""
    while True:
        item = inbox.get()
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item  # the writer failed: the upload aborts, nothing is committed
        yield item


class KnoxFile(fsspec.spec.AbstractBufferedFile):  # type: ignore[misc]
    """A file of a :class:`KnoxFileSystem`.

    Reading: ranged ``GET`` s through fsspec's read-ahead cache, each ``If-Match`` the ETag
    seen at open (an object replaced meanwhile fails the read instead of mixing versions);
    a read over a block (pyarrow's column chunks) as parallel ranged ``GET`` s, past it.
    Writing: one ``upload`` fed block by block (one ``PUT`` if it all fits in a part, else a
    part per block, ``concurrency`` in flight); the object appears only when the file closes.
    An exception inside ``with`` aborts it: no object, no parts left behind.
    """

    def __init__(self, fs: KnoxFileSystem, path: str, mode: str = "rb",
                 block_size: Any = "default", **kwargs: Any) -> None:
        if mode == "xb" and fs.exists(path):
            raise FileExistsError(errno.EEXIST, "the key exists", path)
        super().__init__(fs, path, mode, block_size, **kwargs)
        self._inbox: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._task: Optional[asyncio.Task[Any]] = None

    def read(self, length: int = -1) -> bytes:
        """Up to ``length`` bytes (all the rest: -1). A read over a block (pyarrow's column
        chunks) is fetched exactly, as parallel ranged ``GET`` s, past the read-ahead
        cache (which would fetch a block more, and keep a copy); smaller ones go through it."""
        data = self._read_past_cache(length)
        if data is not None:
            return bytes(data)
        out: bytes = super().read(length)
        return out

    def read_buffer(self, length: int = -1) -> Union[bytes, bytearray]:
        """:meth:`read`, for pyarrow (whose ``PythonFile`` calls it where it exists): a large
        read's buffer as it was filled, without a copy into ``bytes``."""
        data = self._read_past_cache(length)
        return self.read(length) if data is None else data

    def _read_past_cache(self, length: Optional[int]) -> Optional[Union[bytes, bytearray]]:
        """A read over a block, fetched exactly (None: a smaller one, for the cache)."""
        if self.mode != "rb" or self.closed:
            return None
        length = -1 if length is None else int(length)
        stop = self.size if length < 0 else min(self.size, self.loc + length)
        if stop - self.loc <= self.blocksize:
            return None
        data: Union[bytes, bytearray] = fsspec.asyn.sync(
            self.fs.loop, self.fs._read_span, self.path, self.loc, stop,
            self.details.get("ETag"))
        self.loc += len(data)
        return data

    def _fetch_range(self, start: int, end: int) -> bytes:
        data: bytes = fsspec.asyn.sync(self.fs.loop, self.fs._cat_file, self.path, start, end,
                                       if_match=self.details.get("ETag"))
        return data

    def _initiate_upload(self) -> None:
        async def begin() -> asyncio.Task[Any]:
            return asyncio.ensure_future(self.fs._upload(
                self.path, _blocks(self._inbox), self.mode == "xb",
                partSize=max(int(self.blocksize), _MIN_PART)))

        self._task = fsspec.asyn.sync(self.fs.loop, begin)

    def _hand(self, item: Any) -> None:
        """Give the upload ``item``; if the upload has failed meanwhile, raise its error."""
        task = self._task
        assert task is not None
        while True:
            try:
                self._inbox.put(item, timeout=0.1)  # a hang guard: the upload may have ended
                return
            except queue.Full:
                if task.done():
                    self._result()

    def _result(self) -> Any:
        async def outcome() -> Any:
            return await self._task  # type: ignore[misc]

        return fsspec.asyn.sync(self.fs.loop, outcome)

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getvalue()
        if data:
            self._hand(data)
        if final:
            self._hand(_END)
            self._result()
        return True

    def discard(self) -> None:
        """Give up the write: an upload under way is aborted, nothing is committed."""
        if getattr(self, "_closed", True) or self.readable():
            return
        self.closed = True
        if self._task is not None:
            try:
                self._hand(OSError("the file was discarded before it was closed"))
                self._result()
            except Exception:  # noqa: BLE001 - its failure is the abort we asked for
                pass

    def __del__(self) -> None:
        """A written file that is never closed is never committed (where a local file would
        be flushed): its upload, if begun, aborts in the background; nothing blocks here."""
        if not hasattr(self, "_inbox"):  # __init__ failed (xb on a key that exists)
            return
        if not self.writable():
            super().__del__()
            return
        self.closed = True
        if self._task is not None:
            with contextlib.suppress(queue.Empty):
                self._inbox.get_nowait()  # the one block that may wait: room for the end
            self._inbox.put_nowait(OSError("the file was never closed"))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and self.writable():
            self.discard()
        else:
            self.close()


# The entry point registers ``knox`` for an installed knoxpy; this covers a source checkout.
fsspec.register_implementation("knox", KnoxFileSystem, clobber=True)
