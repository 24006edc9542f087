"""Ported: pifantastic/grunt-s3, tasks/lib/s3.js.

The grunt task's three verbs on knox: ``upload`` (``client.putFile(src, dest, headers, cb)``,
then the ``res.headers.etag`` with its quotes stripped compared with the local MD5),
``download`` (``client.getFile(src, cb)``, each ``'data'`` chunk written to a local file, on
``'end'`` the file's MD5 compared with the ETag) and ``del`` (``client.deleteFile(src, cb)``,
anything but a 204 an error). Ported literally, the deferreds as callbacks.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Callable, List

from ported_support import needs_knox, prefix, run_js, stored_keys

import knoxpy


def upload(client: Any, src: str, dest: str, headers: Any, cb: Callable[..., Any]) -> None:
    def put(err: Any, res: Any = None) -> None:
        if err or res.statusCode != 200:
            return cb(Exception(f"Upload error: {src} ({err or res.statusCode})"))
        res.resume()
        remoteHash = re.sub('"', "", res.headers["etag"])
        localHash = hashlib.md5(Path(src).read_bytes()).hexdigest()
        if remoteHash == localHash:
            cb(None, f"Uploaded: {src} ({localHash})")
        else:
            cb(Exception(f"Upload error: expected hash: {localHash} but found {remoteHash}"))
    client.putFile(src, dest, headers, put)


def download(client: Any, src: str, dest: str, cb: Callable[..., Any]) -> None:
    file = open(dest, "wb")

    def got(err: Any, res: Any = None) -> None:
        if err or res.statusCode != 200:
            file.close()
            return cb(Exception(f"Download error: {src} ({err or res.statusCode})"))

        def end() -> None:
            file.close()
            remoteHash = re.sub('"', "", res.headers["etag"])
            localHash = hashlib.md5(Path(dest).read_bytes()).hexdigest()
            if remoteHash == localHash:
                cb(None, f"Downloaded: {src} ({localHash})")
            else:
                cb(Exception(f"Download error: expected hash: {localHash} but found {remoteHash}"))
        res.on("data", lambda chunk: file.write(chunk))
        res.on("error", lambda err: cb(Exception(f"Download error: {src} ({err})")))
        res.on("end", end)
    client.getFile(src, got)


def delete(client: Any, src: str, cb: Callable[..., Any]) -> None:
    def deleted(err: Any, res: Any = None) -> None:
        if err or res.statusCode != 204:
            return cb(Exception(f"Delete error: {src} ({err or res.statusCode})"))
        res.resume()
        cb(None, f"Deleted: {src}")
    client.deleteFile(src, deleted)


BODY = b"grunt-s3 " * 20000  # a few chunks on the way down


def _round_trip(client: Any, tmp_path: Path, dest: str, name: str) -> List[Any]:
    src, back = tmp_path / f"{name}.txt", tmp_path / f"{name}-back.txt"
    src.write_bytes(BODY)
    out: List[Any] = []
    record = lambda err, msg=None: out.append(str(err) if err else msg.split(":")[0])  # noqa: E731
    upload(client, str(src), dest, {"x-amz-acl": "public-read"}, record)
    knoxpy.run(timeout=30)
    download(client, dest, str(back), record)
    knoxpy.run(timeout=30)
    assert back.read_bytes() == BODY
    download(client, dest + ".missing", str(back), record)
    knoxpy.run(timeout=30)
    delete(client, dest, record)
    knoxpy.run(timeout=30)
    return out


def test_upload_download_and_delete_check_what_s3_says(client: Any, moto_port: int,
                                                        bucket: str, tmp_path: Path) -> None:
    dest = "/" + prefix("grunt") + "/asset.txt"
    out = _round_trip(client, tmp_path, dest, "py")
    assert out[:2] == ["Uploaded", "Downloaded"]
    assert out[2].startswith("Download error:") and out[2].endswith("(404)")
    assert out[3] == "Deleted"
    assert stored_keys(moto_port, bucket, dest.lstrip("/")) == []


NODE = r"""
var fs = require('fs'), crypto = require('crypto'), out = [];
var md5 = f => crypto.createHash('md5').update(fs.readFileSync(f)).digest('hex');
client.putFile(cfg.src, cfg.dest, {'x-amz-acl': 'public-read'}, (err, res) => {
  res.resume();
  out.push(res.headers.etag.replace(/"/g, '') === md5(cfg.src) ? 'Uploaded' : 'bad');
  var file = fs.createWriteStream(cfg.back);
  client.getFile(cfg.dest, (err, res) => {
    res.on('data', c => file.write(c)).on('end', () => { file.end(() => {
      out.push(res.headers.etag.replace(/"/g, '') === md5(cfg.back) ? 'Downloaded' : 'bad');
      client.getFile(cfg.dest + '.missing', (err, res) => { res.resume(); out.push(res.statusCode);
        client.deleteFile(cfg.dest, (err, res) => { out.push(res.statusCode); finish(out); });
      });
    }); });
  });
});
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str, tmp_path: Path) -> None:
    from ported_support import knoxpy_client

    js_dest, py_dest = ("/" + prefix(n) + "/asset.txt" for n in ("grunt-js", "grunt-py"))
    (tmp_path / "js.txt").write_bytes(BODY)
    js = run_js(NODE, moto_port, bucket, src=str(tmp_path / "js.txt"), dest=js_dest,
                back=str(tmp_path / "js-back.txt"))
    py = _round_trip(knoxpy_client(moto_port, bucket), tmp_path, py_dest, "py")
    assert js == ["Uploaded", "Downloaded", 404, 204]
    assert py[:2] == js[:2] and py[2].endswith("(404)") and py[3] == "Deleted"
    assert (tmp_path / "js-back.txt").read_bytes() == BODY  # py: checked in _round_trip
    assert stored_keys(moto_port, bucket, js_dest[1:]) == stored_keys(moto_port, bucket,
                                                                      py_dest[1:]) == []

