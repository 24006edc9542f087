"""Ported: segmentio/s3-lister, lib/index.js.

A readable stream of a bucket's objects: it calls ``s3.list()`` with ``prefix``, ``marker``,
``delimiter`` and ``max-keys`` taken straight from its options (so ``undefined`` when not
given), pushes each of ``data.Contents`` and, while ``data.IsTruncated``, carries on from the
last ``Key`` as the next ``marker``. Ported literally: ``undefined`` becomes ``None``, the
stream an emitter with ``'data'`` and ``'end'``.
"""
from __future__ import annotations

from typing import Any, List

from ported_support import needs_knox, prefix, run_js, stored_keys

import knoxpy


class S3Lister(knoxpy.Emitter):
    def __init__(self, s3: Any, options: Any = None) -> None:
        super().__init__()
        options = options or {}
        self.s3 = s3
        self.marker = options.get("start")
        self.options = options
        self.connecting = False
        self.ended = False
        self.filter = options.get("filter") or (lambda file: True)
        self.pages = 0

    def _read(self) -> None:
        if self.connecting or self.ended:
            return
        options = {
            "prefix": self.options.get("prefix"),
            "marker": self.marker,
            "delimiter": self.options.get("delimiter"),
            "max-keys": self.options.get("maxKeys"),
        }
        self._list(options)

    def _list(self, options: Any) -> None:
        self.connecting = True

        def on_list(err: Any, data: Any) -> None:
            self.connecting = False
            self.pages += 1
            if err:
                return self.emit("error", err)
            files = data.Contents
            if data.IsTruncated:
                self.marker = files[len(files) - 1].Key
            else:
                self.ended = True
            for file in filter(self.filter, files):
                self.emit("data", file)
            if self.ended:
                self.emit("end")
            else:
                self._read()

        self.s3.list(options, on_list)


def _fill(client: Any, under: str, n: int) -> List[str]:
    keys = [f"{under}/file-{i:02d}.txt" for i in range(n)]
    for key in keys:
        client.putBuffer(key[len(under):].encode(), "/" + key).wait(15).resume()
    return keys


def test_the_lister_pages_with_marker_through_every_key(client: Any, moto_port: int,
                                                         bucket: str) -> None:
    under = prefix("lister")
    keys = _fill(client, under, 5)
    _fill(client, under + "-sibling", 1)  # after the prefix: must not show

    seen: List[Any] = []
    ended: List[bool] = []
    lister = S3Lister(client, {"prefix": under + "/", "maxKeys": 2})
    lister.on("data", lambda file: seen.append(file))
    lister.on("end", lambda: ended.append(True))
    lister.on("error", lambda err: seen.append(err))
    lister._read()
    knoxpy.run(timeout=30)

    assert [f.Key for f in seen] == keys == stored_keys(moto_port, bucket, under + "/")
    assert [f.Size for f in seen] == [len(k) - len(under) for k in keys]
    assert ended == [True] and lister.pages == 3  # 2 + 2 + 1, each after the last Key


def test_a_filter_and_a_start_key_are_honoured(client: Any) -> None:
    under = prefix("lister-start")
    keys = _fill(client, under, 4)
    seen: List[str] = []
    lister = S3Lister(client, {"prefix": under + "/", "start": keys[0],
                               "filter": lambda f: not f.Key.endswith("03.txt")})
    lister.on("data", lambda file: seen.append(file.Key))
    lister._read()
    knoxpy.run(timeout=30)
    assert seen == keys[1:3]


NODE = r"""
const Readable = require('stream').Readable, util = require('util');
function S3Lister(s3, options) {
  options || (options = {}); options.objectMode = true;
  Readable.call(this, options);
  this.s3 = s3; this.marker = options.start; this.options = options;
  this.connecting = false; this.pages = 0;
  this.filter = options.filter || function () { return true; };
}
util.inherits(S3Lister, Readable);
S3Lister.prototype._read = function () {
  if (this.connecting || this.ended) return;
  this._list({prefix: this.options.prefix, marker: this.marker,
              delimiter: this.options.delimiter, 'max-keys': this.options.maxKeys});
};
S3Lister.prototype._list = function (options) {
  var self = this; this.connecting = true;
  this.s3.list(options, function (err, data) {
    self.connecting = false; self.pages++;
    if (err) return self.emit('error', err);
    var files = data.Contents;
    if (data.IsTruncated) self.marker = files[files.length - 1].Key; else self.ended = true;
    files.filter(self.filter).forEach(function (file) { self.push(file); });
    if (self.ended) self.push(null);
  });
};
var seen = [], lister = new S3Lister(client, {prefix: cfg.under + '/', maxKeys: 2});
lister.on('data', f => seen.push({Key: f.Key, Size: f.Size, ETag: f.ETag}))
  .on('error', e => { throw e; })
  .on('end', () => finish({seen: seen, pages: lister.pages}));
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str) -> None:
    from ported_support import knoxpy_client

    client = knoxpy_client(moto_port, bucket)
    under_js, under_py = prefix("lister-js"), prefix("lister-py")
    _fill(client, under_js, 5)
    _fill(client, under_py, 5)

    js = run_js(NODE, moto_port, bucket, under=under_js)
    seen: List[Any] = []
    lister = S3Lister(client, {"prefix": under_py + "/", "maxKeys": 2})
    lister.on("data", lambda f: seen.append({"Key": f.Key, "Size": f.Size, "ETag": f.ETag}))
    lister._read()
    knoxpy.run(timeout=30)

    def neutral(files: List[Any], under: str) -> List[Any]:
        return [dict(f, Key=f["Key"][len(under):]) for f in files]

    assert js["pages"] == lister.pages == 3
    assert neutral(js["seen"], under_js) == neutral(seen, under_py)  # same keys, sizes, ETags
