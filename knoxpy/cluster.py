"""Bulk work across a Dask cluster: copyAll, deleteAll and sync on ``dask.distributed``.

Nothing here is a cluster engine of its own: the listing is cut into partitions of
``partition_keys`` keys as it goes (start-after ranges, page by page, so the first
partition's copies start at once), each partition is a ``distributed`` task, and on
the worker it runs knoxpy's own bulk engine (``bulk.copy_all`` / ``bulk.delete_all``
on the partition's keys, ``concurrency`` at once). The ``knoxpy[dask]`` extra.

Where each piece runs (docs/bulk.md, *Bulk work on a cluster*)::

    your thread (its Loop)       threads in your process     Dask workers (processes)
    ──────────────────────       ───────────────────────     ────────────────────────────
    op = copy_all(..., dask) ─▶  lister: listAll page by ──▶ task: Client(options) rebuilt,
                                 page, a partition every       bulk.copy_all(entries=...),
                                 N keys, submitted             counts sent by log_event
    op.wait(): 'progress', ◀post─ collector (knoxpy-io): ◀── {counts, bytes, errors}
      'partition', 'keyError'    results, manifest, progress

Workers rebuild the client from its options (no socket or loop travels; the options,
credentials included, go to the workers as task arguments: run the scheduler with
TLS off loopback). This module depends on ``client``, ``bulk`` and ``_work`` only;
nothing in the core imports it (``client.copyAll(..., cluster=...)`` imports it when
asked).
"""
from __future__ import annotations

import bisect
import collections
import contextlib
import hashlib
import json
import os
import tempfile
import threading
import uuid
import weakref
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
    Optional,
    Set,
    Tuple,
    TypedDict,
    Union,
)

try:
    import distributed
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError("knoxpy.cluster needs dask.distributed: pip install 'knoxpy[dask]'"
                      ) from exc

from . import _cancel, bulk
from ._emitter import Operation
from ._js import Record
from ._work import concurrency_option, fail_later, start
from .client import Client, _Options
from .errors import Cancelled, ValidationError

__all__ = ["PARTITION_KEYS", "Cancelled", "ClusterOperation", "ClusterProgress", "connect",
           "copy_all", "delete_all", "differs", "sync"]

PARTITION_KEYS = 1000  # keys per partition: one listing page, a few seconds of copies
PROGRESS_STEPS = 10  # live progress reports per partition, from the worker
MANIFEST_FORMAT = "knoxpy-cluster-manifest/1"

Callback = Callable[[Optional[BaseException], Any], Any]
# distributed is typed in part only (its Future is generic, many calls untyped): its
# Client and Future are handled as Any here.
DaskClient = Any
Future = Any
Entry = Dict[str, Any]
Item = Tuple[str, int]  # (key, size) of one listed object
Partition = Tuple[Optional[str], List[Item]]  # (start-after, items)
PathLike = Union[str, "os.PathLike[str]"]


class ClusterProgress(TypedDict):
    """The ``'progress'`` payload: counts across the whole cluster."""

    keys: int  # keys done (copied or deleted, or failed)
    bytes: int  # bytes of the keys copied or deleted
    listed: int  # keys listed so far
    listedBytes: int
    partitions: int  # partitions finished
    skipped: int  # keys the manifest said a previous run had finished
    listing: bool  # the listing is still going (``listed`` may grow)


# -- on the workers ---------------------------------------------------------------------------
_CLIENTS: Dict[str, Client] = {}
_CLIENTS_LOCK = threading.Lock()


def _worker_client(options: Mapping[str, Any]) -> Client:
    """One client per set of options in each worker process, so connections are reused
    across partitions (the cache key is a digest: the options hold the secret)."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=repr).encode()
                            ).hexdigest()
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(digest)
        if client is None:
            client = _CLIENTS[digest] = Client(dict(options))
        return client


class _Meter:
    """Counts one partition's keys and bytes on the worker, reported now and then."""

    def __init__(self, topic: str, index: int, items: List[Item]) -> None:
        self.topic, self.index = topic, index
        self.sizes = dict(items)
        self.every = max(1, len(items) // PROGRESS_STEPS)
        self.keys = self.bytes = 0
        try:
            self.worker: Optional[distributed.Worker] = distributed.get_worker()
        except ValueError:  # called outside a task (a test calling it directly)
            self.worker = None

    def done(self, key: str, moved: bool) -> None:
        """``key`` is done; ``moved``: its bytes were copied or deleted."""
        self.keys += 1
        if moved:
            self.bytes += self.sizes.get(key, 0)
        if self.worker is not None and self.keys % self.every == 0:
            self.worker.log_event(self.topic, {"partition": self.index, "keys": self.keys,
                                               "bytes": self.bytes})

    def address(self) -> str:
        return str(self.worker.address) if self.worker is not None else ""


def _copy_partition(options: Mapping[str, Any], prefix: str, dest: Mapping[str, Any],
                    items: List[Item], concurrency: Optional[int], topic: str, index: int,
                    headers: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """A Dask task: copy one partition with knoxpy's bulk engine."""
    meter = _Meter(topic, index, items)
    op = bulk.copy_all(_worker_client(options), prefix, dest, concurrency=concurrency,
                       entries=[{"Key": key, "Size": size} for key, size in items],
                       headers=headers)
    op.on("copied", lambda e: meter.done(str(e["Key"]), True))
    op.on("keyError", lambda e: meter.done(str(e["Key"]), False))
    result = op.wait()
    return {"counts": {"copied": int(result["copied"])}, "bytes": meter.bytes,
            "worker": meter.address(), "errors": [dict(e) for e in result["errors"]]}


def _delete_partition(options: Mapping[str, Any], items: List[Item],
                      concurrency: Optional[int], topic: str, index: int) -> Dict[str, Any]:
    """A Dask task: delete one partition (exact keys) with knoxpy's bulk engine."""
    meter = _Meter(topic, index, items)
    result = bulk.delete_all(_worker_client(options), [{"Key": key} for key, _ in items],
                             concurrency=concurrency).wait()
    errors = [dict(e) for e in result["errors"]]
    failed = {e["Key"] for e in errors}
    for key, _ in items:
        meter.done(key, key not in failed)
    return {"counts": {"deleted": int(result["deleted"])}, "bytes": meter.bytes,
            "worker": meter.address(), "errors": errors}


def _key_range(client: Client, prefix: str, after: Optional[str], last: Optional[str]
               ) -> Iterator[Entry]:
    """The objects under ``prefix`` with ``after < key <= last`` (None: no bound)."""
    params = {"prefix": prefix} if after is None else {"prefix": prefix, "start-after": after}
    for entry in bulk.list_all(client, params):
        if "Key" not in entry:
            continue
        if last is not None and str(entry["Key"]) > last:
            return
        yield entry


def differs(source: Mapping[str, Any], copy: Optional[Mapping[str, Any]]) -> bool:
    """Whether sync copies ``source`` over ``copy`` (its listing entries): no copy, another
    size, or another ETag on a source modified since (a copy's ETag may differ by its
    parts: a copy at least as new as its source with the same size is the same).

    >>> from datetime import datetime as t
    >>> differs({'Size': 1, 'ETag': '"a"', 'LastModified': t(2024, 1, 2)},
    ...         {'Size': 1, 'ETag': '"b-2"', 'LastModified': t(2024, 1, 3)})
    False
    """
    if copy is None or int(copy.get("Size", -1)) != int(source.get("Size", -2)):
        return True
    if copy.get("ETag") == source.get("ETag"):
        return False
    made, copied = source.get("LastModified"), copy.get("LastModified")
    return made is None or copied is None or bool(made > copied)


def _sync_partition(options: Mapping[str, Any], prefix: str, dest: Mapping[str, Any],
                    items: List[Item], after: Optional[str], delete: bool,
                    concurrency: Optional[int], topic: str, index: int) -> Dict[str, Any]:
    """A Dask task: bring the destination's copy of the source range ``(after, last
    item]`` (no items: to the end) up to date: both ranges listed, what differs copied
    with knoxpy's bulk engine, with ``delete`` what the source lacks deleted."""
    meter = _Meter(topic, index, items)
    client = _worker_client(options)
    plan = bulk.copy_target(client, prefix, dest)
    last = items[-1][0] if items else None

    def mapped(key: Optional[str]) -> Optional[str]:
        return None if key is None else plan.dest_prefix + key[len(prefix):]

    copies = {str(e["Key"]): e for e in _key_range(plan.dest_client, plan.dest_prefix,
                                                   mapped(after), mapped(last))}
    sources = list(_key_range(client, prefix, after, last))
    wanted = [e for e in sources if differs(e, copies.get(str(mapped(str(e["Key"])))))]
    for key in {str(e["Key"]) for e in sources} - {str(e["Key"]) for e in wanted}:
        meter.done(key, False)  # already the same
    op = bulk.copy_all(client, prefix, dest, concurrency=concurrency, entries=wanted)
    op.on("copied", lambda e: meter.done(str(e["Key"]), True))
    op.on("keyError", lambda e: meter.done(str(e["Key"]), False))
    copied = op.wait()
    errors = [dict(e) for e in copied["errors"]]
    deleted = 0
    if delete:
        have = {mapped(str(e["Key"])) for e in sources}
        gone = [{"Key": key} for key in copies if key not in have]
        if gone:
            result = bulk.delete_all(plan.dest_client, gone, concurrency=concurrency).wait()
            deleted = int(result["deleted"])
            errors.extend(dict(e) for e in result["errors"])
    return {"counts": {"copied": int(copied["copied"]), "deleted": deleted,
                       "unchanged": len(sources) - len(wanted)},
            "bytes": meter.bytes, "worker": meter.address(), "errors": errors}


# -- partitions and the manifest (pure) ---------------------------------------------------
class _Finished:
    """Key ranges ``(after, last]`` that earlier runs finished; ``after`` None: from the
    start. S3 lists in UTF-8 byte order, which is Python's ``str`` order."""

    def __init__(self, ranges: Iterable[Tuple[Optional[str], str]]) -> None:
        self._ranges = sorted(ranges, key=lambda r: r[1])
        self._lasts = [last for _, last in self._ranges]

    def covering(self, key: str) -> Optional[str]:
        """The last key of a finished range holding ``key``, or None. (The ranges never
        overlap: a run's partitions stop at every range already finished.)"""
        i = bisect.bisect_left(self._lasts, key)
        if i == len(self._ranges):
            return None
        after, last = self._ranges[i]
        return last if after is None or key > after else None


def partitions(listing: Callable[[Optional[str]], Iterable[Any]], size: int,
               finished: _Finished) -> Iterator[Partition]:
    """``(start-after, [(key, size), ...])`` partitions of up to ``size`` keys, cut as
    ``listing(start_after)`` goes; where it reaches a finished range, the listing starts
    again after that range (its keys are neither listed nor copied again)."""
    after: Optional[str] = None
    while True:
        resume: Optional[str] = None
        batch: List[Item] = []
        batch_after = after
        for entry in listing(after):
            if entry is None:
                continue
            if isinstance(entry, Mapping):
                if "Key" not in entry:
                    continue  # a common prefix
                key, nbytes = str(entry["Key"]), int(entry.get("Size") or 0)
            else:
                key, nbytes = str(entry), 0
            resume = finished.covering(key)
            if resume is not None:
                break
            batch.append((key, nbytes))
            if len(batch) == size:
                yield batch_after, batch
                batch_after, batch = key, []
        if batch:
            yield batch_after, batch
        if resume is None:
            return
        after = resume


class _Manifest:
    """A local JSON file of the partitions finished, rewritten (atomically) after each; a
    rerun with the same file skips their key ranges."""

    def __init__(self, path: PathLike, job: Dict[str, Any]) -> None:
        self.path = os.fspath(path)
        self.job = job
        self.done: List[Dict[str, Any]] = []
        if os.path.exists(self.path):
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"no {MANIFEST_FORMAT!r} format field")
            done = data["done"]
            for d in done:
                if not isinstance(d["last"], str) or not isinstance(d["after"], (str, type(None))):
                    raise ValueError("a range that is not keys")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValidationError(f"manifest {self.path}: not a knoxpy cluster manifest "
                                  f"({err})") from None
        if data.get("job") != self.job:
            raise ValidationError(f"manifest {self.path} records another run "
                                  f"({data.get('job')!r}, not {self.job!r})")
        self.done = list(done)

    def finished(self) -> _Finished:
        return _Finished((d["after"], d["last"]) for d in self.done)

    def skipped(self) -> int:
        return sum(int(d.get("keys", 0)) for d in self.done)

    def add(self, after: Optional[str], last: str, keys: int, nbytes: int) -> None:
        self.done.append({"after": after, "last": last, "keys": keys, "bytes": nbytes})
        data = {"format": MANIFEST_FORMAT, "job": self.job, "done": self.done}
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".knoxpy-manifest.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


# -- in the caller ------------------------------------------------------------------------
class ClusterOperation(Operation):
    """An :class:`~knoxpy._emitter.Operation` whose work runs on a Dask cluster.

    ``cancel()`` cancels the cluster's tasks; a ``KeyboardInterrupt`` (Ctrl-C) while
    ``wait()`` waits cancels them too, then goes on up.
    """

    _run: Optional[_Run] = None

    def cancel(self) -> None:
        """Stop listing and cancel every partition not finished; the operation fails with
        :class:`knoxpy.Cancelled` (given to ``fn``, ``'error'`` listeners and waiters,
        never raised out of a later loop run)."""
        if self._run is not None:
            self._run.cancel()

    def wait(self, timeout: Optional[float] = None) -> Any:
        try:
            return super().wait(timeout)  # a KeyboardInterrupt cancels knoxpy's local work
        except KeyboardInterrupt:
            self.cancel()  # and this, the cluster's
            raise


# Ctrl-C anywhere (knoxpy._cancel) cancels the runs going on then, as it does local work.
_RUNNING: weakref.WeakSet[_Run] = weakref.WeakSet()


def _cancel_running() -> None:
    for run in list(_RUNNING):
        run.cancel()


_cancel.on_cancel(_cancel_running)

Submit = Callable[[int, Optional[str], List[Item]], Future]  # (index, start-after, items)


class _Run:
    """One cluster operation in the caller: a lister that submits partitions (at most
    ``max_pending`` at once) and a collector of their results."""

    def __init__(self, op: ClusterOperation, dask: DaskClient,
                 parts: Iterator[Partition], submit: Submit, topic: str, max_pending: int,
                 manifest: Optional[_Manifest]) -> None:
        self.op, self.dask, self.parts, self.submit = op, dask, parts, submit
        self.topic, self.max_pending, self.manifest = topic, max_pending, manifest
        self.cond = threading.Condition()
        self.pending: Set[Future] = set()
        self.finished: Deque[Future] = collections.deque()
        self.meta: Dict[Any, Tuple[int, Optional[str], List[Item]]] = {}
        self.listing_done = self.stop = False
        self.failure: Optional[BaseException] = None
        self.live: Dict[int, Tuple[int, int]] = {}  # partition -> (keys, bytes) so far
        self.final: Set[int] = set()
        self.counts = {"listed": 0, "listedBytes": 0, "partitions": 0}
        self.totals: Dict[str, Any] = {"counts": collections.Counter(), "errors": [],
                                       "bytes": 0}
        self.skipped = manifest.skipped() if manifest is not None else 0
        self.submitted: List[Any] = []  # every task's key
        self.lister: Optional[threading.Thread] = None

    # the caller's thread, and Dask's: what stops the run
    def cancel(self) -> None:
        """Stop the lister and cancel what it submitted; once this returns (from any
        thread but the lister's), nothing more is submitted."""
        with self.cond:
            self.stop = True
            futures = list(self.pending)
            self.cond.notify_all()
        if futures:
            self.dask.cancel(futures)
        lister = self.lister
        if lister is not None and lister is not threading.current_thread():
            lister.join()  # it cancels a partition it was submitting, then returns

    def _fail(self, exc: BaseException) -> None:
        with self.cond:
            self.failure = self.failure or exc
        self.cancel()

    # Dask's client thread
    def _on_done(self, future: Future) -> None:
        with self.cond:
            self.finished.append(future)
            self.cond.notify_all()

    def _on_event(self, event: Tuple[float, Dict[str, Any]]) -> None:
        msg = event[1]
        index = int(msg["partition"])
        with self.cond:
            if index in self.final:
                return
            keys, nbytes = self.live.get(index, (0, 0))
            self.live[index] = (max(keys, int(msg["keys"])), max(nbytes, int(msg["bytes"])))
        self._progress()

    def _progress(self) -> None:
        with self.cond:  # posted under the lock, so the snapshots arrive in order
            progress: ClusterProgress = {
                "keys": sum(k for k, _ in self.live.values()),
                "bytes": sum(b for _, b in self.live.values()),
                "listed": self.counts["listed"], "listedBytes": self.counts["listedBytes"],
                "partitions": self.counts["partitions"], "skipped": self.skipped,
                "listing": not self.listing_done,
            }
            self.op._post("progress", Record(progress))

    # the lister thread: list and submit
    def _list(self) -> None:
        index = 0
        try:
            for after, items in self.parts:
                with self.cond:
                    while len(self.pending) >= self.max_pending and not self.stop:
                        self.cond.wait()
                    if self.stop:
                        return
                future = self.submit(index, after, items)
                with self.cond:
                    self.submitted.append(future.key)
                    self.meta[future.key] = (index, after, items)
                    self.pending.add(future)
                    self.counts["listed"] += len(items)
                    self.counts["listedBytes"] += sum(size for _, size in items)
                    stopped = self.stop
                if stopped:  # cancel() came while it was being submitted
                    self.dask.cancel([future])
                    return
                future.add_done_callback(self._on_done)
                index += 1
                self._progress()
        except BaseException as exc:  # noqa: BLE001 - a failed listing fails the operation
            self._fail(exc)
        finally:
            close = getattr(self.parts, "close", None)
            if close is not None:  # a generator left early lets its listing go now
                close()
            with self.cond:
                self.listing_done = True
                self.cond.notify_all()
            self._progress()

    # the driver (a knoxpy-io thread): collect results, keep the manifest
    def run(self) -> Dict[str, Any]:
        self.dask.subscribe_topic(self.topic, self._on_event)
        lister = threading.Thread(target=self._list, name="knoxpy-cluster-lister", daemon=True)
        self.lister = lister
        _RUNNING.add(self)
        lister.start()
        try:
            while True:
                with self.cond:
                    while not (self.finished or self.stop
                               or (self.listing_done and not self.pending)):
                        self.cond.wait()
                    if self.stop:
                        break
                    if not self.finished:
                        return self.totals
                    future = self.finished.popleft()
                    self.pending.discard(future)
                    self.cond.notify_all()  # room for another partition
                try:
                    self._collect(future)
                except BaseException as exc:  # noqa: BLE001 - e.g. NoSuchBucket on a worker
                    self._fail(exc)
            raise self.failure or Cancelled(
                f"cancelled after {self.counts['partitions']} partitions "
                f"({sum(self.totals['counts'].values())} keys)"
                + (f"; {self.manifest.path} records them" if self.manifest else ""))
        finally:
            if self.stop:
                self.cancel()
            self.dask.unsubscribe_topic(self.topic)
            lister.join()
            _RUNNING.discard(self)
            with self.cond:  # no future left to keep its result on the cluster
                self.finished.clear()
                self.pending.clear()

    def _collect(self, future: Future) -> None:
        index, after, items = self.meta.pop(future.key)
        if future.status == "cancelled":
            raise Cancelled(f"partition {index} was cancelled on the cluster")
        result: Dict[str, Any] = future.result()  # raises the task's error
        errors: List[Dict[str, Any]] = result["errors"]
        with self.cond:
            self.final.add(index)
            self.live[index] = (len(items), int(result["bytes"]))
            self.counts["partitions"] += 1
            self.totals["counts"].update(result["counts"])
            self.totals["bytes"] += int(result["bytes"])
            self.totals["errors"].extend(errors)
        last = items[-1][0] if items else None  # no items: the open end (sync's tail)
        if self.manifest is not None and not errors and last is not None:
            # partitions with errors run again
            self.manifest.add(after, last, len(items), sum(size for _, size in items))
        for error in errors:
            self.op._post("keyError", Record(error))
        self.op._post("partition", Record(result["counts"], index=index, after=after, last=last,
                                        keys=len(items), errors=len(errors),
                                        worker=result["worker"]))
        self._progress()


def _source_listing(client: Client, prefix: str) -> Callable[[Optional[str]], Iterable[Any]]:
    """``listing(start_after)`` of the keys under ``prefix``."""
    def listing(after: Optional[str]) -> Iterable[Any]:
        params = {"prefix": prefix} if after is None else {"prefix": prefix, "start-after": after}
        return bulk.list_all(client, params)
    return listing


def _own_copies_left_out(listing: Callable[[Optional[str]], Iterable[Any]], prefix: str,
                         dest_prefix: str) -> Callable[[Optional[str]], Iterable[Any]]:
    """``listing`` without the copies this copyAll makes, by ``bulk._CopyPlan`` (one plan
    across the listing's restarts: they only move forward, as its queue needs)."""
    plan = bulk._CopyPlan(iter(()), prefix, dest_prefix, True)

    def without(after: Optional[str]) -> Iterable[Any]:
        plan._listing = iter(listing(after))
        return ({"Key": key, "Size": size} for key, _, size in plan)
    return without


def _exact_key(item: Any) -> Optional[Entry]:
    """A key given to deleteAll as the listing entry S3 would list (knox's rule: one
    leading ``/`` dropped from strings; ``ValidationError`` for what is no key)."""
    key = bulk._delete_key(item)
    if key is None:
        return None
    if not isinstance(key, str):
        raise ValidationError("deleteAll on a cluster deletes keys, not versions: use "
                              "deleteAll without a cluster for a version listing")
    size = item.get("Size") if isinstance(item, Mapping) else None
    return {"Key": key[1:] if key.startswith("/") else key, "Size": size}


def _portable(options: Mapping[str, Any]) -> Dict[str, Any]:
    """Options as they travel to the workers: less what cannot travel (a pool, a
    function), in a dict whose repr masks the secret and token (Dask may show task
    arguments in its errors and dashboard)."""
    return _Options({k: v for k, v in options.items() if k != "agent" and not callable(v)})


def _settings(dask: DaskClient, partition_keys: int, max_pending: Optional[int]) -> int:
    """Checks the shared settings; returns how many partitions may be in flight."""
    if not isinstance(dask, distributed.Client) or dask.asynchronous:
        raise ValidationError("cluster must be a distributed.Client, not asynchronous "
                              f"(not {type(dask).__name__})")
    if type(partition_keys) is not int or partition_keys < 1:
        raise ValidationError("partition_keys must be a positive integer")
    if max_pending is None:  # every worker thread busy, and as many waiting
        scheduler: Any = dask  # (narrowed to distributed.Client, whose nthreads is untyped)
        threads: Dict[str, int] = scheduler.nthreads()
        return max(2, 2 * sum(threads.values()))
    if type(max_pending) is not int or max_pending < 1:
        raise ValidationError("max_pending must be a positive integer")
    return max_pending


def _launch(op: ClusterOperation, fn: Optional[Callback], dask: DaskClient,
            parts: Iterator[Partition], submit: Submit, topic: str, max_pending: int,
            manifest: Optional[_Manifest], counted: Tuple[str, ...]) -> ClusterOperation:
    run = _Run(op, dask, parts, submit, topic, max_pending, manifest)
    op._run = run

    def body() -> Dict[str, Any]:
        totals = run.run()
        counts = {name: int(totals["counts"][name]) for name in counted}
        return {**counts, "errors": totals["errors"],
                "bytes": totals["bytes"], "partitions": run.counts["partitions"],
                "skipped": run.skipped}

    start(op, fn, body)
    return op


def copy_all(client: Client, prefix: str, dest: Mapping[str, Any], cluster: Any,
             fn: Optional[Callback] = None, *, partition_keys: int = PARTITION_KEYS,
             manifest: Optional[PathLike] = None, concurrency: Optional[int] = None,
             max_pending: Optional[int] = None, headers: Optional[Mapping[str, Any]] = None
             ) -> ClusterOperation:
    """``client.copyAll(prefix, dest, cluster=dask_client)``: copyAll on a Dask cluster.

    The listing of ``prefix`` is cut into partitions of ``partition_keys`` keys as it
    goes; each is copied on a worker by knoxpy's bulk engine, ``concurrency`` objects
    at once (the client option by default). With ``manifest`` (a local JSON file)
    finished partitions are recorded, and a rerun with the same file skips them.
    Events: ``'progress'`` (:class:`ClusterProgress`), ``'partition'``, ``'keyError'``,
    ``'end'``. Result: ``{'copied', 'errors', 'bytes', 'partitions', 'skipped'}``.
    ``headers`` go on every copy, as :func:`knoxpy.bulk.copy_all`'s (checked here, before
    anything is sent; SSE-C keys travel to the workers in a dict whose repr masks them).

    >>> import distributed                                              # doctest: +SKIP
    >>> with distributed.Client('tcp://scheduler:8786') as dask:         # doctest: +SKIP
    ...     client.copyAll('2024/', {'prefix': 'archive/2024/'}, cluster=dask).wait()
    {'copied': 250000, 'errors': [], 'bytes': ..., 'partitions': 250, 'skipped': 0}
    """
    op = ClusterOperation()
    try:
        pending = _settings(cluster, partition_keys, max_pending)
        concurrency_option(client, concurrency, bulk.COPY_CONCURRENCY)
        plan = bulk.copy_target(client, prefix, dest)
        copy_headers = _Options(bulk.copy_headers(headers)) if headers else None
        nested = plan.same_name and plan.dest_prefix.startswith(prefix)
        if nested and manifest is not None:
            raise ValidationError(
                "copyAll on a cluster: a manifest cannot go with a destination inside the "
                f"source prefix ({plan.dest_prefix!r} in {prefix!r}): a rerun could not "
                "tell the earlier copies from the sources")
        book = None if manifest is None else _Manifest(manifest, {
            "operation": "copy", "endpoint": client.endpoint, "bucket": client.bucket,
            "prefix": prefix, "destBucket": plan.dest_client.bucket,
            "destPrefix": plan.dest_prefix})
    except ValidationError as err:
        fail_later(op, fn, err)
        return op
    options, topic = _portable(client.options), f"knoxpy-{uuid.uuid4().hex}"
    dest_options = _portable(dest or {})

    def submit(index: int, after: Optional[str], items: List[Item]) -> Future:
        return cluster.submit(_copy_partition, options, prefix, dest_options, items,
                              concurrency, topic, index, copy_headers,
                              key=f"{topic}-copy-{index}", pure=False)

    listing = _source_listing(client, prefix)
    if plan.same_name:  # its copies may be listed: the bulk engine's plan leaves them out
        listing = _own_copies_left_out(listing, prefix, plan.dest_prefix)
    parts = partitions(listing, partition_keys,
                       book.finished() if book is not None else _Finished(()))
    return _launch(op, fn, cluster, parts, submit, topic, pending, book, ("copied",))


def delete_all(client: Client, keys: Any, cluster: Any, fn: Optional[Callback] = None, *,
               partition_keys: int = PARTITION_KEYS, manifest: Optional[PathLike] = None,
               concurrency: Optional[int] = None, max_pending: Optional[int] = None
               ) -> ClusterOperation:
    """``client.deleteAll(keys, cluster=dask_client)``: deleteAll on a Dask cluster.

    ``keys``: a ``listAll`` listing (its pages are cut into partitions of
    ``partition_keys`` keys; a ``manifest`` may record them), or a list or iterator of
    keys (partitions of consecutive keys; no manifest). Each partition is deleted on a
    worker by knoxpy's bulk engine. Events as :func:`copy_all`'s. Result:
    ``{'deleted', 'errors', 'bytes', 'partitions', 'skipped'}``.

    >>> client.deleteAll(client.listAll({'prefix': 'tmp/'}), cluster=dask).wait()  # doctest: +SKIP
    """
    op = ClusterOperation()
    try:
        pending = _settings(cluster, partition_keys, max_pending)
        concurrency_option(client, concurrency, bulk.DELETE_CONCURRENCY)
        if isinstance(keys, bulk.VersionLister):
            raise ValidationError("deleteAll on a cluster deletes keys, not versions: use "
                                  "deleteAll without a cluster for a version listing")
        listed = isinstance(keys, bulk.Lister)
        if listed and keys._mode == "flowing":
            raise ValidationError("deleteAll: this listing already emits 'data' events")
        if not listed and (isinstance(keys, (str, bytes, Mapping))
                           or not isinstance(keys, Iterable)):
            raise ValidationError("deleteAll: keys must be a list, an iterator or a listing")
        if manifest is not None and not listed:
            raise ValidationError("deleteAll: a manifest needs a listAll listing (key ranges)")
        params = {k: v for k, v in keys._query.items()
                  if k not in ("list-type", "continuation-token")} if listed else {}
        book = None if manifest is None else _Manifest(manifest, {
            "operation": "delete", "endpoint": client.endpoint, "bucket": client.bucket,
            "list": params})
    except ValidationError as err:
        fail_later(op, fn, err)
        return op
    options, topic = _portable(client.options), f"knoxpy-{uuid.uuid4().hex}"

    def listing(after: Optional[str]) -> Iterable[Any]:
        if not listed:
            return map(_exact_key, keys)
        return bulk.list_all(client, params if after is None
                             else dict(params, **{"start-after": after}))

    def submit(index: int, after: Optional[str], items: List[Item]) -> Future:
        return cluster.submit(_delete_partition, options, items, concurrency, topic,
                              index, key=f"{topic}-delete-{index}", pure=False)

    parts = partitions(listing, partition_keys,
                       book.finished() if book is not None else _Finished(()))
    return _launch(op, fn, cluster, parts, submit, topic, pending, book, ("deleted",))


def sync(client: Client, prefix: str, dest: Mapping[str, Any], cluster: Any,
         fn: Optional[Callback] = None, *, delete: bool = False,
         partition_keys: int = PARTITION_KEYS, manifest: Optional[PathLike] = None,
         concurrency: Optional[int] = None, max_pending: Optional[int] = None
         ) -> ClusterOperation:
    """Make ``dest`` (copyAll's ``{'bucket': ..., 'prefix': ...}``) a copy of ``prefix``, on
    a Dask cluster: ``knoxpy sync s3://... s3://... --scheduler``.

    The source listing is cut into partitions as for :func:`copy_all`; for each, a
    worker lists the matching destination range and copies what :func:`differs`; with
    ``delete``, it deletes the destination keys the source lacks (a last partition
    covers the destination past the last source key). The two prefixes must not
    overlap in one bucket. Result: ``{'copied', 'deleted', 'unchanged', 'errors',
    'bytes', 'partitions', 'skipped'}``.

    >>> knoxpy.cluster.sync(client, 'site/', {'bucket': 'backup'}, dask).wait()  # doctest: +SKIP
    """
    op = ClusterOperation()
    try:
        pending = _settings(cluster, partition_keys, max_pending)
        concurrency_option(client, concurrency, bulk.COPY_CONCURRENCY)
        plan = bulk.copy_target(client, prefix, dest)
        if plan.dest_client.bucket == client.bucket and plan.dest_client.endpoint == \
                client.endpoint and (plan.dest_prefix.startswith(prefix)
                                     or prefix.startswith(plan.dest_prefix)):
            raise ValidationError(f"sync: the prefixes {prefix!r} and {plan.dest_prefix!r} "
                                  "overlap in one bucket")
        book = None if manifest is None else _Manifest(manifest, {
            "operation": "sync", "endpoint": client.endpoint, "bucket": client.bucket,
            "prefix": prefix, "destBucket": plan.dest_client.bucket,
            "destPrefix": plan.dest_prefix, "delete": bool(delete)})
    except ValidationError as err:
        fail_later(op, fn, err)
        return op
    options, topic = _portable(client.options), f"knoxpy-{uuid.uuid4().hex}"
    dest_options = _portable(dest or {})

    def submit(index: int, after: Optional[str], items: List[Item]) -> Future:
        return cluster.submit(_sync_partition, options, prefix, dest_options, items, after,
                              bool(delete), concurrency, topic, index,
                              key=f"{topic}-sync-{index}", pure=False)

    def with_tail(parts: Iterator[Partition]) -> Iterator[Partition]:
        """The partitions, then the open end past the last source key (no items)."""
        last: Optional[str] = None
        for after, items in parts:
            last = items[-1][0]
            yield after, items
        yield last, []

    parts = partitions(_source_listing(client, prefix), partition_keys,
                       book.finished() if book is not None else _Finished(()))
    return _launch(op, fn, cluster, with_tail(parts), submit, topic, pending, book,
                   ("copied", "deleted", "unchanged"))


@contextlib.contextmanager
def connect(address: str) -> Generator[DaskClient, None, None]:
    """A ``distributed.Client`` of a running scheduler (``'tcp://host:8786'``), or, for
    ``'local:N'``, of a LocalCluster of N worker processes started for the ``with``
    block (one thread each: a worker's concurrency is knoxpy's own). The CLI's
    ``--scheduler``.

    >>> with knoxpy.cluster.connect('local:4') as dask:                  # doctest: +SKIP
    ...     client.copyAll('2024/', {'prefix': 'old/'}, cluster=dask).wait()
    """
    if not isinstance(address, str) or not address:
        raise ValidationError("the scheduler address must be a string such as "
                              "tcp://host:8786 or local:N")
    if not address.startswith("local:"):
        with distributed.Client(address) as dask:
            yield dask
        return
    count = address[len("local:"):]
    if not count.isdigit() or int(count) < 1:
        raise ValidationError(f"local:N takes a number of worker processes, not {count!r}")
    with distributed.LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as dask:
        yield dask
