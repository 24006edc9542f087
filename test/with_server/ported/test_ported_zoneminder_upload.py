"""Ported: briantroy/Zoneminder-Alert-Image-Upload-to-Amazon-S3,
zoneminder-s3/zmAlarmImage/zmalarmimage.js (client from zmAlarmImage/s3-client.js).

Uploads a camera's alarm frame: the S3 name is built from the frame's ``Date`` parts
(``getFullYear()``, ``getMonth() + 1``, ``getDate()``, ``getHours()``...), then
``client.putFile(fileName, '/' + awsFolder + '/' + awsFile, {'Content-Type': 'image/jpeg',
'x-amz-acl': 'private', 'x-amz-storage-class': 'REDUCED_REDUNDANCY'}, function (err) {...})``,
a callback that takes only ``err``; the next frame is uploaded from that callback. Ported
literally, the ``Date`` a ``datetime`` (months from 1, so no ``+ 1``).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable, Dict, List

from ported_support import needs_knox, prefix, run_js, stored, stored_head

import knoxpy

FRAME = b"\xff\xd8\xff\xe0" + b"jpeg frame " * 800 + b"\xff\xd9"


def awsName(imgData: Dict[str, Any]) -> str:
    dtFrame = imgData["frame_timestamp"]
    awsFolder = (f"{imgData['monitor_name']}-{dtFrame.year}-{dtFrame.month}-{dtFrame.day}"
                 f"/hour-{dtFrame.hour}")
    if imgData["event_name"] == "New Event":
        imgData["event_name"] = "New_Event"
    awsFile = (f"{imgData['event_name']}-{imgData['eventid']}-frame{imgData['frameid']}-"
               f"{dtFrame.hour}-{dtFrame.minute}-{dtFrame.second}.jpg")
    return "/" + imgData["base"] + "/" + awsFolder + "/" + awsFile


def simpleUploadFile(client: Any, imgData: Dict[str, Any], fn: Callable[[], None],
                     log: List[str]) -> None:
    reqHead = {"Content-Type": "image/jpeg", "x-amz-acl": "private",
               "x-amz-storage-class": "REDUCED_REDUNDANCY"}
    name = awsName(imgData)

    def uploaded(err: Any) -> None:
        log.append(f"error {err}" if err else f"saved {name}")
        fn()  # the recursive call: the next frame
    client.putFile(imgData["fileName"], name, reqHead, uploaded)


def _frames(tmp_path: Path, base: str) -> List[Dict[str, Any]]:
    frames = []
    for i in range(3):
        path = tmp_path / f"{base.replace('/', '_')}-{i:03d}-capture.jpg"
        path.write_bytes(FRAME + bytes([i]))
        frames.append({"fileName": str(path), "base": base, "monitor_name": "Porch",
                       "event_name": "New Event", "eventid": 77, "frameid": i,
                       "frame_timestamp": dt.datetime(2026, 3, 4, 5, 6, 7 + i)})
    return frames


def _upload_all(client: Any, frames: List[Dict[str, Any]]) -> List[str]:
    log: List[str] = []

    def next_frame() -> None:
        if frames:
            simpleUploadFile(client, frames.pop(0), next_frame, log)
    next_frame()
    knoxpy.run(timeout=60)
    return log


def test_each_frame_goes_up_with_its_storage_class(client: Any, moto_port: int, bucket: str,
                                                   tmp_path: Path) -> None:
    base = prefix("zm")
    log = _upload_all(client, _frames(tmp_path, base))
    names = [f"/{base}/Porch-2026-3-4/hour-5/New_Event-77-frame{i}-5-6-{7 + i}.jpg"
             for i in range(3)]
    assert log == [f"saved {n}" for n in names]
    for i, name in enumerate(names):
        assert stored(moto_port, bucket, name) == FRAME + bytes([i])
        head = stored_head(moto_port, bucket, name)
        assert head["content-type"] == "image/jpeg"
        assert head["x-amz-storage-class"] == "REDUCED_REDUNDANCY"


NODE = r"""
var frames = cfg.frames, log = [];
function next() {
  if (!frames.length) return finish(log);
  var f = frames.shift(), d = new Date(f.frame_timestamp);
  var awsFolder = f.monitor_name + '-' + d.getFullYear() + '-' + (d.getMonth() + 1) + '-' +
                  d.getDate() + '/hour-' + d.getHours();
  var awsFile = 'New_Event-' + f.eventid + '-frame' + f.frameid + '-' + d.getHours() + '-' +
                d.getMinutes() + '-' + d.getSeconds() + '.jpg';
  var name = '/' + f.base + '/' + awsFolder + '/' + awsFile;
  client.putFile(f.fileName, name, {'Content-Type': 'image/jpeg', 'x-amz-acl': 'private',
                 'x-amz-storage-class': 'REDUCED_REDUNDANCY'}, function (err) {
    log.push(err ? 'error ' + err : 'saved ' + name); next();
  });
}
next();
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str, tmp_path: Path) -> None:
    from ported_support import knoxpy_client

    js_base, py_base = prefix("zm-js"), prefix("zm-py")
    js_frames = [dict(f, frame_timestamp=f["frame_timestamp"].isoformat())  # local time
                 for f in _frames(tmp_path, js_base)]
    js = run_js(NODE, moto_port, bucket, frames=js_frames)
    py = _upload_all(knoxpy_client(moto_port, bucket), _frames(tmp_path, py_base))
    assert [line.replace(js_base, "<base>") for line in js] == [
        line.replace(py_base, "<base>") for line in py]
    for line in py:
        name = line.split(" ", 1)[1]
        other = name.replace(py_base, js_base)
        assert stored(moto_port, bucket, name) == stored(moto_port, bucket, other)
        for header in ("content-type", "x-amz-storage-class", "etag"):
            assert stored_head(moto_port, bucket, name)[header] == stored_head(
                moto_port, bucket, other)[header]
