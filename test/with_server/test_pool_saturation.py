"""More operations at once than the worker pool has threads (knoxpy._loop, knoxpy._work).

Each transfer or bulk operation has a driver on a knoxpy-io worker, and each driver sends
its requests through a Session, a loop of that worker's own. If a driver handed its
requests' I/O (a part's body, a listing page) to another worker and waited, a pool whose
every thread is a waiting driver would wait for ever: this is what 1,280 concurrent
``pipe_file`` calls from fsspec did with the 512-thread pool. A worker's own loop runs its
own I/O, streams too, and a listing's consumer fetches the page no worker has started.

The pool here has 4 threads, so a dozen operations saturate it at once. Timeouts are hang
guards only (the operations take seconds; a deadlock never ends).
"""
from __future__ import annotations

from typing import Any, Iterator, List

import pytest
from conftest import fault_client

from knoxpy import _loop

HANG = 120  # seconds: a hang guard, never a measure
MIB = 1 << 20


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[_loop._Pool]:
    """A fresh pool of 4 threads in place of the process's (whose threads stay as they are)."""
    pool = _loop._Pool()
    pool.MAX_THREADS = 4
    monkeypatch.setattr(_loop, "_POOL", pool)
    yield pool


def _settle_all(ops: List[Any]) -> List[Any]:
    results: List[Any] = []
    for op in ops:
        results.append(op.wait(HANG))
    return results


def test_more_multipart_uploads_than_threads_all_finish(srv: Any, small_pool: Any) -> None:
    client = fault_client(srv)
    data = bytes(range(256)) * (11 * MIB // 256)  # three parts of 5 MiB, 5 MiB and 1 MiB
    ops = [client.upload(data, f"/up/{i}", partSize=5 * MIB) for i in range(12)]
    _settle_all(ops)
    assert small_pool.threads <= 4
    for i in range(12):
        assert srv.buckets["bkt"].objects[f"up/{i}"].data == data


def test_more_copy_alls_than_threads_all_finish(srv: Any, small_pool: Any) -> None:
    client = fault_client(srv)
    for i in range(5):
        client.putBuffer(f"body {i}", f"/src/{i}").wait(HANG)
    ops = [client.copyAll("src/", {"prefix": f"dst{j}/"}) for j in range(12)]
    results = _settle_all(ops)
    assert all(result["copied"] == 5 for result in results), results
    for j in range(12):
        for i in range(5):
            assert srv.buckets["bkt"].objects[f"dst{j}/{i}"].data == f"body {i}".encode()


def test_listings_iterated_on_a_saturated_pool_fetch_their_own_pages(
        srv: Any, small_pool: Any) -> None:
    client = fault_client(srv)
    for j in range(8):
        for i in range(7):
            client.putBuffer("x", f"/many{j}/{i}").wait(HANG)
    # Every worker busy with a driver that iterates its listing in pages of 2 keys: each
    # listing asks for its later pages while no worker is free to fetch them.
    ops = [client.deleteAll(client.listAll({"prefix": f"many{j}/", "max-keys": 2}))
           for j in range(8)]
    assert [r["deleted"] for r in _settle_all(ops)] == [7] * 8
    assert not [k for k in srv.buckets["bkt"].objects if k.startswith("many")]
