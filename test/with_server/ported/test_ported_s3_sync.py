"""Ported: hughsk/s3-sync, index.js.

For each local file: an MD5 of its bytes, then ``client.headFile(relative, cb)``; when the
answer is a 404 or ``res.headers.etag !== '"' + md5 + '"'`` the file is uploaded with
``client.putFile(absolute, relative, {'x-amz-acl': 'public-read-write', 'Content-Type':
mime.lookup(absolute)}, cb)``, else it is left alone (``details.fresh`` says which).
Ported literally, ``mime.lookup`` as ``mimetypes.guess_type``.
"""
from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from typing import Any, Callable, Dict, List

from ported_support import needs_knox, prefix, run_js, stored, stored_head

import knoxpy


def hashFile(filename: str, callback: Callable[..., Any]) -> None:
    with open(filename, "rb") as f:
        callback(None, hashlib.md5(f.read()).hexdigest())


def syncFile(client: Any, details: Dict[str, Any], next_: Callable[..., Any]) -> None:
    absolute, relative = details["src"], details["dest"]

    def hashed(err: Any, md5: str) -> None:
        details["md5"] = md5
        details["fresh"] = False

        def checked(err: Any, res: Any = None) -> None:
            if err:
                return next_(err)
            res.resume()
            if res.statusCode == 404 or res.headers.get("etag") != '"' + md5 + '"':
                return uploadFile(client, details, next_)
            if res.statusCode >= 300:
                return next_(Exception(f"Bad status code: {res.statusCode}"))
            next_(None, details)
        client.headFile(relative, checked)

    hashFile(absolute, hashed)


def uploadFile(client: Any, details: Dict[str, Any], next_: Callable[..., Any]) -> None:
    details["fresh"] = True
    headers = {"x-amz-acl": "public-read-write",
               "Content-Type": mimetypes.guess_type(details["src"])[0]}

    def put(err: Any, res: Any = None) -> None:
        if not err:
            res.resume()
            if res.statusCode < 300:
                return next_(None, details)
            err = Exception(f"Bad status code: {res.statusCode}")
        next_(err)
    client.putFile(details["src"], details["dest"], headers, put)


def _sync_three_times(client: Any, local: Path, dest: str) -> List[Any]:
    fresh: List[Any] = []

    def once() -> None:
        syncFile(client, {"src": str(local), "dest": dest},
                 lambda err, d=None: fresh.append(err or d["fresh"]))
        knoxpy.run(timeout=30)

    local.write_text('{"v": 1}')
    once()
    once()  # unchanged: the ETag matches, nothing sent
    local.write_text('{"v": 2}')
    once()
    return fresh


def test_only_new_or_changed_files_are_uploaded(client: Any, moto_port: int, bucket: str,
                                                 tmp_path: Path) -> None:
    dest = "/" + prefix("sync") + "/site/data.json"
    assert _sync_three_times(client, tmp_path / "data.json", dest) == [True, False, True]
    assert stored(moto_port, bucket, dest) == b'{"v": 2}'
    assert stored_head(moto_port, bucket, dest)["content-type"] == "application/json"


NODE = r"""
var fs = require('fs'), crypto = require('crypto'), fresh = [];
function sync(then) {
  var md5 = crypto.createHash('md5').update(fs.readFileSync(cfg.file)).digest('hex');
  client.headFile(cfg.dest, (err, res) => {
    res.resume();
    if (res.statusCode === 404 || res.headers.etag !== '"' + md5 + '"') {
      client.putFile(cfg.file, cfg.dest, {'x-amz-acl': 'public-read-write',
                                          'Content-Type': 'application/json'}, (err, res) => {
        res.resume(); fresh.push(true); then(); });
    } else { fresh.push(false); then(); }
  });
}
fs.writeFileSync(cfg.file, '{"v": 1}');
sync(() => sync(() => { fs.writeFileSync(cfg.file, '{"v": 2}'); sync(() => finish(fresh)); }));
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str, tmp_path: Path) -> None:
    from ported_support import knoxpy_client

    js_dest, py_dest = ("/" + prefix(n) + "/data.json" for n in ("sync-js", "sync-py"))
    js = run_js(NODE, moto_port, bucket, file=str(tmp_path / "js.json"), dest=js_dest)
    py = _sync_three_times(knoxpy_client(moto_port, bucket), tmp_path / "py.json", py_dest)
    assert js == py == [True, False, True]
    assert stored(moto_port, bucket, js_dest) == stored(moto_port, bucket, py_dest)
    js_head, py_head = stored_head(moto_port, bucket, js_dest), stored_head(moto_port, bucket,
                                                                            py_dest)
    assert js_head["etag"] == py_head["etag"]
    assert js_head["content-type"] == py_head["content-type"]
