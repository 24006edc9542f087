"""Ported: snowmantw/Helium, run.js (client from lists3.js).

An Express app's S3 file list and upload: ``/fetchListFile`` calls
``client.get('/').on('response', ...).end()``, and on a ``'200' == fres.statusCode`` sets
``fres.setEncoding('utf8')`` and parses the XML of a ``'data'`` event into
``ListBucketResult.Contents`` to answer the ``Key``s as JSON; ``/uploadFile`` reads the
uploaded file and sends it with ``client.put('/' + name, {'Content-Length': buf.length,
'Content-Type': 'application/octet-stream'})`` and ``freq.end(buf)``. Ported literally,
``xml2json`` as ``ElementTree``. The original parses each ``'data'`` chunk as a whole
document, so it relies on a small listing arriving in one chunk, in knox and in knoxpy.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any, List

from ported_support import fresh_bucket, knoxpy_client, needs_knox, run_js, stored

import knoxpy

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
UPLOADS = {"notes.txt": b"some notes", "photo 1.jpg": b"\xff\xd8" + b"j" * 3000,
           "résumé.pdf": b"%PDF-1.4 " * 100}


def uploadFile(client: Any, name: str, buf: bytes, log: List[str]) -> None:
    freq = client.put("/" + name, {
        "Content-Length": len(buf),
        "Content-Type": "application/octet-stream",
    })

    def on_response(fres: Any) -> None:
        fres.resume()
        if 200 == fres.statusCode:
            log.append("saved to %s" % freq.url)  # noqa: UP031 (console.log(..., "%s"))
    freq.on("response", on_response)
    freq.end(buf)


def fetchListFile(client: Any, answer: List[str]) -> None:
    def on_response(fres: Any) -> None:
        if "200" == str(fres.statusCode):
            fres.setEncoding("utf8")

            def on_data(xml: str) -> None:
                finfos = ET.fromstring(xml).findall(NS + "Contents")
                fnames = []
                for finfo in finfos:
                    fnames.append(finfo.findtext(NS + "Key"))
                answer.append(json.dumps({"fnames": fnames}, ensure_ascii=False))
            fres.on("data", on_data)
    client.get("/").on("response", on_response).end()


def _upload_then_list(client: Any) -> tuple[List[str], List[str]]:
    log: List[str] = []
    answer: List[str] = []
    for name, buf in UPLOADS.items():
        uploadFile(client, name, buf, log)
    knoxpy.run(timeout=30)
    fetchListFile(client, answer)
    knoxpy.run(timeout=30)
    return log, answer


def test_uploads_then_a_listing_parsed_from_one_data_event(moto_port: int) -> None:
    bucket = fresh_bucket(moto_port)
    log, answer = _upload_then_list(knoxpy_client(moto_port, bucket))
    assert len(log) == 3 and all(line.startswith("saved to http://localhost:") for line in log)
    assert answer == [json.dumps({"fnames": sorted(UPLOADS)}, ensure_ascii=False)]
    for name, buf in UPLOADS.items():
        assert stored(moto_port, bucket, name) == buf


NODE = r"""
var fs = require('fs'), log = [], answer = [], left = cfg.names.length;
cfg.names.forEach(function (name) {
  var buf = fs.readFileSync(cfg.dir + '/' + name);
  var freq = client.put('/' + name, {'Content-Length': buf.length,
                                     'Content-Type': 'application/octet-stream'});
  freq.on('response', function (fres) { fres.resume();
    if (200 == fres.statusCode) log.push('saved to ' + freq.url);
    if (--left === 0) list(); });
  freq.end(buf);
});
function list() {
  client.get('/').on('response', function (fres) {
    if ('200' == fres.statusCode) {
      fres.setEncoding('utf8');
      fres.on('data', function (xml) {
        var keys = (xml.match(/<Key>[^<]*<\/Key>/g) || []).map(k => k.slice(5, -6));
        answer.push(JSON.stringify({fnames: keys}));
      });
      fres.on('end', () => finish({log: log.sort(), answer: answer}));
    }
  }).end();
}
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, tmp_path: Any) -> None:
    for name, buf in UPLOADS.items():
        (tmp_path / name).write_bytes(buf)
    js_bucket, py_bucket = fresh_bucket(moto_port), fresh_bucket(moto_port)
    js = run_js(NODE, moto_port, js_bucket, names=list(UPLOADS), dir=str(tmp_path))
    log, answer = _upload_then_list(knoxpy_client(moto_port, py_bucket))
    # knox's req.url escapes an escaped key again ("photo%25201.jpg"); knoxpy's is the URL
    # as it went on the wire ("photo%201.jpg"), which is what both sent
    py_as_knox_shows = sorted(line.replace(py_bucket, js_bucket).replace("%", "%25")
                              for line in log)
    assert js["log"] == py_as_knox_shows
    assert f"saved to http://localhost:{moto_port}/{js_bucket}/notes.txt" in js["log"]
    assert [json.loads(a) for a in js["answer"]] == [json.loads(a) for a in answer]
    for name in UPLOADS:
        assert stored(moto_port, js_bucket, name) == stored(moto_port, py_bucket, name)
