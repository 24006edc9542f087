"""Ported: drob/s3-deleter, src/index.coffee.

An object-mode writable that takes keys (strings, or knox list entries: ``file.Key ? file``),
queues them, and deletes them ``batchSize`` at a time with
``client.deleteMultiple(toDelete, (err) -> callback err)``, a callback that takes only
``err``; ``end()`` flushes what is left. Ported literally, the writable a small class.
"""
from __future__ import annotations

from typing import Any, Callable, List

from ported_support import needs_knox, prefix, run_js, stored_keys

import knoxpy

MAX_BATCH_SIZE = 1000


class S3Deleter(knoxpy.Emitter):
    def __init__(self, client: Any, options: Any = None) -> None:
        super().__init__()
        self.client = client
        self.deleteQueue: List[str] = []
        self.batchSize = (options or {}).get("batchSize", MAX_BATCH_SIZE)
        if self.batchSize > MAX_BATCH_SIZE:
            raise ValueError(f"Not allowed to delete more than {MAX_BATCH_SIZE} items at once.")
        self.batches = 0

    def write(self, file: Any, callback: Callable[..., Any] = lambda err=None: None) -> None:
        if file is None:  # all done: delete whatever is left in the queue
            while self.deleteQueue:
                self._deleteBatch(callback)
            return
        key = getattr(file, "Key", file)  # direct strings or knox results
        self.deleteQueue.append(key)
        if len(self.deleteQueue) < self.batchSize:
            callback()
        else:
            self._deleteBatch(callback)

    def _deleteBatch(self, callback: Callable[..., Any]) -> None:
        toDelete = self.deleteQueue[:self.batchSize]
        self.deleteQueue = self.deleteQueue[self.batchSize:]
        self.batches += 1
        self.client.deleteMultiple(toDelete, lambda err: callback(err))

    def end(self) -> None:
        def done(err: Any = None) -> None:
            if err:
                self.emit("error", err)
        self.write(None, done)
        self.emit("finish")


def _fill(client: Any, under: str, n: int) -> List[str]:
    keys = [f"{under}/old-{i}.log" for i in range(n)]
    for key in keys:
        client.putBuffer(b"stale", "/" + key).wait(15).resume()
    return keys


def test_list_entries_and_strings_are_deleted_in_batches(client: Any, moto_port: int,
                                                          bucket: str) -> None:
    under = prefix("deleter")
    keys = _fill(client, under, 5)
    keep = _fill(client, under + "/keep", 1)
    errors: List[Any] = []
    deleter = S3Deleter(client, {"batchSize": 2})
    deleter.on("error", errors.append)
    entries = client.list({"prefix": under + "/old"}).wait(15).Contents
    for entry in entries[:4]:  # knox results, read as file.Key
        deleter.write(entry, lambda err=None: errors.append(err) if err else None)
    deleter.write(keys[4])  # and a plain string
    deleter.end()
    knoxpy.run(timeout=30)
    assert errors == []
    assert deleter.batches == 3
    assert stored_keys(moto_port, bucket, under + "/") == keep


def test_a_batch_larger_than_s3_allows_is_refused(client: Any) -> None:
    try:
        S3Deleter(client, {"batchSize": 1001})
    except ValueError as e:
        assert "1000" in str(e)
    else:
        raise AssertionError("accepted a batch of 1001")


NODE = r"""
var keys = cfg.keys, batchSize = 2, queue = [], batches = 0, errs = [];
function deleteBatch(cb) {
  var toDelete = queue.slice(0, batchSize); queue = queue.slice(batchSize); batches++;
  client.deleteMultiple(toDelete, function (err) { cb(err); });
}
var pending = 0;
function cb(err) { errs.push(err ? String(err) : null); if (--pending === 0) done(); }
keys.forEach(function (file) {
  queue.push(file.Key != null ? file.Key : file);
  if (queue.length >= batchSize) { pending++; deleteBatch(cb); }
});
while (queue.length) { pending++; deleteBatch(cb); }
function done() { finish({batches: batches, errs: errs}); }
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str) -> None:
    from ported_support import knoxpy_client

    client = knoxpy_client(moto_port, bucket)
    under_js, under_py = prefix("deleter-js"), prefix("deleter-py")
    js_keys, py_keys = _fill(client, under_js, 5), _fill(client, under_py, 5)

    js = run_js(NODE, moto_port, bucket, keys=[{"Key": k} for k in js_keys[:3]] + js_keys[3:])
    errors: List[Any] = []
    deleter = S3Deleter(client, {"batchSize": 2})
    for key in py_keys:
        deleter.write(key, lambda err=None: errors.append(err))
    deleter.end()
    knoxpy.run(timeout=30)

    assert js == {"batches": 3, "errs": [None, None, None]}
    assert deleter.batches == 3 and errors == [None, None, None, None, None]
    assert stored_keys(moto_port, bucket, under_js) == stored_keys(moto_port, bucket,
                                                                   under_py) == []
