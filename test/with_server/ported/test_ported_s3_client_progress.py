"""Ported: andrewrk/node-s3-client, index.js as of release 0.3.1 (commit 472adad, 2013;
npm ``s3``, "high level amazon s3 client using knox as a backend", before it moved to
aws-sdk).

A friendlier client over knox: ``upload(localFile, remoteFile, headers)`` returns an emitter
that relays ``knoxUpload.on('progress', progress => uploader.emit('progress',
progress.written, progress.total))`` and emits ``'end'`` on a 200; ``download(remoteFile,
localFile)`` reads ``amountTotal = parseInt(resp.headers['content-length'], 10)``, writes
each chunk to a file, emits ``'progress'`` with ``amountDone, amountTotal`` and ``'end'``.
Ported literally (``progress.written`` read as an attribute).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List

from ported_support import needs_knox, prefix, run_js, stored

import knoxpy

BODY = bytes(range(256)) * 4096  # 1 MiB: several progress events each way


class Client:
    def __init__(self, knoxClient: Any) -> None:
        self.knox = knoxClient

    def upload(self, localFile: str, remoteFile: str, headers: Any = None) -> Any:
        if not isinstance(headers, dict):
            headers = {}
        uploader = knoxpy.Emitter()

        def done(err: Any, resp: Any = None) -> None:
            if err:
                uploader.emit("error", err)
            elif resp.statusCode == 200:
                resp.resume()
                uploader.emit("end")
            else:
                uploader.emit("error", Exception(f"s3 http status code {resp.statusCode}"))
        knoxUpload = self.knox.putFile(localFile, remoteFile, headers, done)
        knoxUpload.on("progress", lambda progress: uploader.emit(
            "progress", progress.written, progress.total))
        return uploader

    def download(self, remoteFile: str, localFile: str) -> Any:
        downloader = knoxpy.Emitter()
        state = {"amountDone": 0, "amountTotal": None}

        def got(err: Any, resp: Any = None) -> None:
            if err:
                return downloader.emit("error", err)
            if resp.statusCode != 200:
                resp.resume()
                return downloader.emit("error", Exception(f"s3 http status code "
                                                          f"{resp.statusCode}"))
            state["amountTotal"] = int(resp.headers["content-length"], 10)
            writeStream = open(localFile, "wb")

            def on_data(data: bytes) -> None:
                writeStream.write(data)
                state["amountDone"] += len(data)
                downloader.emit("progress", state["amountDone"], state["amountTotal"])

            def on_end() -> None:
                writeStream.close()
                downloader.emit("end")
            resp.on("data", on_data)
            resp.on("end", on_end)
        self.knox.getFile(remoteFile, got)
        return downloader


def _round_trip(knoxClient: Any, tmp_path: Path, remote: str) -> dict[str, List[Any]]:
    (tmp_path / "up.bin").write_bytes(BODY)
    client = Client(knoxClient)
    events: dict[str, List[Any]] = {"up": [], "down": []}
    uploader = client.upload(str(tmp_path / "up.bin"), remote, {"Content-Type": "x/bin"})
    uploader.on("progress", lambda done, total: events["up"].append((done, total)))
    uploader.on("end", lambda: events["up"].append("end"))
    uploader.on("error", lambda err: events["up"].append(err))
    knoxpy.run(timeout=60)
    downloader = client.download(remote, str(tmp_path / "down.bin"))
    downloader.on("progress", lambda done, total: events["down"].append((done, total)))
    downloader.on("end", lambda: events["down"].append("end"))
    downloader.on("error", lambda err: events["down"].append(err))
    knoxpy.run(timeout=60)
    return events


def _check(events: List[Any]) -> None:
    *progress, last = events
    assert last == "end", events
    assert len(progress) > 1
    done = [d for d, _ in progress]
    assert done == sorted(done) and done[-1] == len(BODY)  # grows to the whole size
    assert {t for _, t in progress} == {len(BODY)}


def test_progress_is_relayed_both_ways(client: Any, moto_port: int, bucket: str,
                                       tmp_path: Path) -> None:
    remote = "/" + prefix("s3client") + "/blob.bin"
    events = _round_trip(client, tmp_path, remote)
    _check(events["up"])
    _check(events["down"])
    assert stored(moto_port, bucket, remote) == BODY
    assert (tmp_path / "down.bin").read_bytes() == BODY


NODE = r"""
var fs = require('fs'), events = {up: [], down: []};
var up = client.putFile(cfg.file, cfg.remote, {'Content-Type': 'x/bin'}, function (err, resp) {
  resp.resume(); events.up.push(resp.statusCode === 200 ? 'end' : String(err));
  client.getFile(cfg.remote, function (err, resp) {
    var total = parseInt(resp.headers['content-length'], 10), done = 0;
    var out = fs.createWriteStream(cfg.back);
    resp.on('data', function (c) { out.write(c); done += c.length; events.down.push([done, total]); });
    resp.on('end', function () { out.end(function () { events.down.push('end'); finish(events); }); });
  });
});
up.on('progress', function (progress) { events.up.push([progress.written, progress.total]); });
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str, tmp_path: Path) -> None:
    from ported_support import knoxpy_client

    js_remote, py_remote = ("/" + prefix(n) + "/blob.bin" for n in ("s3c-js", "s3c-py"))
    (tmp_path / "js.bin").write_bytes(BODY)
    js = run_js(NODE, moto_port, bucket, file=str(tmp_path / "js.bin"), remote=js_remote,
                back=str(tmp_path / "js-back.bin"))
    py = _round_trip(knoxpy_client(moto_port, bucket), tmp_path, py_remote)
    for direction in ("up", "down"):
        js_events = [tuple(e) if isinstance(e, list) else e for e in js[direction]]
        _check(js_events)
        _check(py[direction])
        assert js_events[-2] == py[direction][-2] == (len(BODY), len(BODY))  # same last event
    assert stored(moto_port, bucket, js_remote) == stored(moto_port, bucket, py_remote)
    assert (tmp_path / "js-back.bin").read_bytes() == (tmp_path / "down.bin").read_bytes()
