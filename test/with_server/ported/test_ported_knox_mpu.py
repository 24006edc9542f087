"""Ported: nathanoehlman/knox-mpu, lib/multipartupload.js.

A multipart uploader built on knox's raw ``client.request()``: ``POST objectName?uploads``
and the ``UploadId`` read from the XML answer, then each part of ``partSize`` bytes sent with
``PUT objectName?partNumber=N&uploadId=...`` and ``Content-Length`` (the ``etag`` read from
``res.headers``), then ``POST objectName?uploadId=...`` with a hand-written
``<CompleteMultipartUpload>`` body. Ported literally in its ``noDisk`` mode (parts in memory),
with its events: ``'initiated'``, ``'uploading'``, ``'uploaded'``, ``'completed'``.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Callable, Dict, List

from ported_support import needs_knox, prefix, run_js, stored

import knoxpy

PART = 5 * 1024 * 1024  # S3's smallest part but the last
BODY = bytes(range(256)) * (PART // 256) + b"tail of the upload"


def xmlResponse(req: Any, callback: Callable[..., Any]) -> None:
    """parse.js: the whole answer, its top-level elements as a dict."""
    def on_response(res: Any) -> None:
        chunks: List[bytes] = []
        res.on("data", chunks.append)

        def end() -> None:
            body = b"".join(chunks).decode()
            if res.statusCode != 200:
                return callback(Exception(f"{res.statusCode}: {body}"))
            callback(None, dict(re.findall(r"<(\w+)>([^<]*)</\1>", body)))
        res.on("end", end)
    req.on("response", on_response)
    req.on("error", callback)


class MultiPartUpload(knoxpy.Emitter):
    def __init__(self, opts: Dict[str, Any], callback: Callable[..., Any]) -> None:
        super().__init__()
        if not opts.get("client") or not opts.get("objectName"):
            raise ValueError("MultiPart upload must be created from a client and provide a "
                             "object name")
        self.objectName = opts["objectName"]
        self.headers = opts.get("headers") or {}
        self.client = opts["client"]
        self.partSize = opts.get("partSize") or 5242880
        self.uploadId = None
        self.parts: List[Dict[str, Any]] = []
        self._initiate(lambda err, uploadId=None: callback(err) if err else
                       self._putData(opts["data"], callback))

    def _initiate(self, callback: Callable[..., Any]) -> None:
        req = self.client.request("POST", self.objectName + "?uploads", self.headers)

        def got(err: Any, body: Any = None) -> None:
            if err:
                return callback(err)
            if not body.get("UploadId"):
                return callback("Invalid upload ID")
            self.uploadId = body["UploadId"]
            self.emit("initiated", body["UploadId"])
            callback(None, body["UploadId"])
        xmlResponse(req, got)
        req.end()

    def _putData(self, data: bytes, callback: Callable[..., Any]) -> None:
        chunks = [data[i:i + self.partSize] for i in range(0, len(data), self.partSize)]
        results: List[Any] = []

        def upload(i: int) -> None:
            if i == len(chunks):
                return self._completeUploads(results, callback)

            def done(err: Any, result: Any = None) -> None:
                if err:
                    return callback(err)
                results.append(result)
                upload(i + 1)
            self._uploadPart({"id": i + 1, "data": chunks[i], "length": len(chunks[i])}, done)
        upload(0)

    def _uploadPart(self, part: Dict[str, Any], callback: Callable[..., Any]) -> None:
        url = f"{self.objectName}?partNumber={part['id']}&uploadId={self.uploadId}"
        req = self.client.request("PUT", url, {"Content-Length": part["length"]})

        def on_response(res: Any) -> None:
            res.resume()
            if res.statusCode != 200:
                return callback({"part": part["id"],
                                 "message": f"Upload failed with status code {res.statusCode}"})
            result = {"part": part["id"], "etag": res.headers["etag"], "size": part["length"]}
            self.emit("uploaded", result)
            callback(None, result)
        req.on("response", on_response)
        req.on("error", lambda err: callback({"part": part["id"], "message": err}))
        req.write(part["data"])
        req.end()
        self.emit("uploading", part["id"])

    def _completeUploads(self, results: List[Any], callback: Callable[..., Any]) -> None:
        size = sum(r["size"] for r in results)
        parts = "".join(f"<Part><PartNumber>{r['part']}</PartNumber><ETag>{r['etag']}</ETag>"
                        "</Part>" for r in results)
        req = self.client.request("POST", f"{self.objectName}?uploadId={self.uploadId}")

        def got(err: Any, body: Any = None) -> None:
            if err:
                return callback(err)
            body["size"] = size
            self.emit("completed", body)
            callback(None, body)
        xmlResponse(req, got)
        req.write(f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
        req.end()


def _upload(client: Any, name: str) -> tuple[List[Any], List[Any]]:
    events: List[Any] = []
    result: List[Any] = []
    mpu = MultiPartUpload({"client": client, "objectName": name, "data": BODY,
                           "headers": {"Content-Type": "application/x-test"}},
                          lambda err, body=None: result.append((err, body)))
    for event in ("initiated", "uploading", "uploaded", "completed"):
        mpu.on(event, lambda arg, event=event: events.append(event))
    knoxpy.run(timeout=120)
    return events, result


def test_a_multipart_upload_on_raw_requests(client: Any, moto_port: int, bucket: str) -> None:
    name = "/" + prefix("mpu") + "/big.bin"
    events, result = _upload(client, name)
    [(err, body)] = result
    assert err is None, err
    assert body["size"] == len(BODY) and body["Key"] == name[1:]
    assert body["ETag"].strip('"').endswith("-2")  # two parts
    assert events == ["initiated", "uploading", "uploaded", "uploading", "uploaded",
                      "completed"]
    assert stored(moto_port, bucket, name) == BODY


NODE = r"""
var fs = require('fs'), body = fs.readFileSync(cfg.file), name = cfg.name, partSize = 5242880;
function xml(req, cb) {
  req.on('response', res => { var s = ''; res.setEncoding('utf8'); res.on('data', c => s += c);
    res.on('end', () => { var o = {}; s.replace(/<(\w+)>([^<]*)<\/\1>/g, (m, k, v) => o[k] = v);
      cb(res.statusCode === 200 ? null : new Error(s), o); }); });
}
var init = client.request('POST', name + '?uploads', {'Content-Type': 'application/x-test'});
xml(init, (err, o) => {
  var id = o.UploadId, results = [];
  (function part(i) {
    var data = body.slice((i - 1) * partSize, i * partSize);
    if (!data.length) return complete(id, results);
    var req = client.request('PUT', name + '?partNumber=' + i + '&uploadId=' + id,
                             {'Content-Length': data.length});
    req.on('response', res => { res.resume();
      results.push({part: i, etag: res.headers.etag, size: data.length}); part(i + 1); });
    req.write(data); req.end();
  })(1);
});
init.end();
function complete(id, results) {
  var req = client.request('POST', name + '?uploadId=' + id);
  xml(req, (err, o) => finish({err: err && String(err), ETag: o.ETag, Key: o.Key,
                               etags: results.map(r => r.etag)}));
  req.write('<CompleteMultipartUpload>' + results.map(r => '<Part><PartNumber>' + r.part +
    '</PartNumber><ETag>' + r.etag + '</ETag></Part>').join('') + '</CompleteMultipartUpload>');
  req.end();
}
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str, tmp_path: Any) -> None:
    from ported_support import knoxpy_client

    (tmp_path / "body").write_bytes(BODY)
    js_name, py_name = ("/" + prefix(n) + "/big.bin" for n in ("mpu-js", "mpu-py"))
    js = run_js(NODE, moto_port, bucket, file=str(tmp_path / "body"), name=js_name)
    events, [(err, body)] = _upload(knoxpy_client(moto_port, bucket), py_name)
    assert js["err"] is None and err is None
    assert js["ETag"] == body["ETag"]  # the same parts, so the same multipart ETag
    assert js["etags"] == [f'"{hashlib.md5(BODY[:PART]).hexdigest()}"',
                           f'"{hashlib.md5(BODY[PART:]).hexdigest()}"']
    assert stored(moto_port, bucket, js_name) == stored(moto_port, bucket, py_name) == BODY
    assert stored_type(moto_port, bucket, js_name) == stored_type(moto_port, bucket, py_name)


def stored_type(port: int, bucket: str, key: str) -> str:
    from ported_support import stored_head

    return stored_head(port, bucket, key)["content-type"]
