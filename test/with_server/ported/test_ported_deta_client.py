"""Ported: tuefekci/deta-s3-server, client/index.js.

A knox script written against a local S3 server (``endpoint: 'localhost', style: 'path',
port``): ``client.put(objPath, {'Content-Length': Buffer.byteLength(string),
'Content-Type': 'application/json'})``, ``'saved to %s'`` with ``req.url`` on a 200, then
``req.end(string)``; and ``client.list({}, cb)``, whose ``data`` the script prints (its
comment lists ``Prefix``, ``IsTruncated``, ``MaxKeys``, ``Contents`` with ``Key``,
``LastModified``, ``ETag``, ``Size``, ``Owner``, ``StorageClass``). Ported literally, against
a bucket of its own since it lists the whole bucket.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, List

from ported_support import fresh_bucket, knoxpy_client, needs_knox, run_js, stored

import knoxpy


def script(client: Any) -> Dict[str, Any]:
    log: List[str] = []
    lists: List[Any] = []
    obj = {"foo": "bar", "note": "ünïcode"}
    string = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    objPath = "/json_files/obj-test.json"
    req = client.put(objPath, {
        "Content-Length": len(string.encode()),
        "Content-Type": "application/json",
    })

    def on_response(res: Any) -> None:
        res.resume()
        if 200 == res.statusCode:
            log.append("saved to %s" % req.url)  # noqa: UP031 (console.log(..., "%s"))
    req.on("response", on_response)
    req.end(string)
    knoxpy.run(timeout=30)  # the list below must see the object: Node's order of answers

    client.list({}, lambda err, data: lists.append((err, data)))
    knoxpy.run(timeout=30)
    return {"log": log, "list": lists[0]}


def test_put_then_list_a_bucket(moto_port: int) -> None:
    bucket = fresh_bucket(moto_port)
    out = script(knoxpy_client(moto_port, bucket))
    assert out["log"] == [f"saved to http://localhost:{moto_port}/{bucket}/json_files/obj-test.json"]
    err, data = out["list"]
    assert err is None
    assert data.IsTruncated is False and data.MaxKeys == 1000 and data.Name == bucket
    [entry] = data.Contents
    assert entry.Key == "json_files/obj-test.json" and entry.Size == len(
        '{"foo":"bar","note":"ünïcode"}'.encode())
    assert isinstance(entry.LastModified, dt.datetime) and entry.LastModified.tzinfo
    assert json.loads(stored(moto_port, bucket, entry.Key)) == {"foo": "bar", "note": "ünïcode"}


NODE = r"""
var object = {foo: 'bar', note: 'ünïcode'}, string = JSON.stringify(object), log = [];
var objPath = '/json_files/obj-test.json';
var req = client.put(objPath, {'Content-Length': Buffer.byteLength(string),
                               'Content-Type': 'application/json'});
req.on('response', function (res) {
  res.resume();
  if (200 == res.statusCode) log.push('saved to ' + req.url);
  client.list({}, function (err, data) { finish({log: log, err: err, data: data}); });
});
req.end(string);
"""


def _shape(value: Any) -> Any:
    """The result with its values' types, LastModified as JSON.stringify writes a Date."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dt.datetime):
        return "date"
    if isinstance(value, str) and value.endswith("Z") and value[:4].isdigit():
        return "date"
    return value


@needs_knox
def test_side_by_side_with_knox(moto_port: int) -> None:
    js_bucket, py_bucket = fresh_bucket(moto_port), fresh_bucket(moto_port)
    js = run_js(NODE, moto_port, js_bucket)
    py = script(knoxpy_client(moto_port, py_bucket))
    assert js["log"] == [line.replace(py_bucket, js_bucket) for line in py["log"]]  # same req.url
    err, data = py["list"]
    assert js["err"] is None and err is None
    neutral = lambda d, b: json.loads(json.dumps(_shape(d)).replace(b, "<bucket>"))  # noqa: E731
    assert neutral(js["data"], js_bucket) == neutral(data, py_bucket)  # same names and values
    assert stored(moto_port, js_bucket, "json_files/obj-test.json") == stored(
        moto_port, py_bucket, "json_files/obj-test.json")
