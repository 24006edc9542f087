"""Downloads from hostile stores (issue 11, items 2, 3, 4): never stitched, never short.

Against the fault server (test/servers/s3shaped.py), with 5 MiB ranges so a 12 MiB object
comes in three. Before this, knoxpy checked only the start of a later range: a store that
ignores If-Match served version A's first range and version B's later ones and the file was A
then B, reported as a success; a first answer naming another range (``bytes 1000-...``) was
written at offset 0; a chunked 200 without Content-Length was written as an empty file. The
objects here have multipart ETags (``...-3``), as most large objects do: no MD5 of the bytes
to catch a mix. Now every answer's Content-Range (start, end, total), Content-Length and ETag
must be the ones asked for and the first answer's, else ``IntegrityError`` naming both; a 200
without Content-Length is read to its end; no failure leaves a file under the final name.
knoxpy.fs's large reads (parallel parts) go through the same check (the last tests).
"""
from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from conftest import KEY, SECRET, fault_client
from servers.s3shaped import S3Server

import knoxpy
from knoxpy.transfer import PARTIAL_SUFFIX

MIB = 1024 * 1024
PART = 5 * MIB
SIZE = 12 * MIB  # three ranges: 0-5 MiB, 5-10 MiB, 10-12 MiB


def blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def make(srv: S3Server, **extra: Any) -> Any:
    return fault_client(srv, **{"partSize": PART, **extra})


def multipart_object(srv: S3Server, name: str, seed: int = 1, size: int = SIZE) -> bytes:
    """An object uploaded in parts: its ETag is no MD5 of its bytes."""
    data = blob(size, seed)
    etag = make(srv).upload(data, name).wait(60)["ETag"]
    assert etag.endswith('-3"'), etag
    return data


def first_range(r: Any) -> bool:
    return r.method == "GET" and r.headers.get("range") == f"bytes=0-{PART - 1}"


def later_range(r: Any) -> bool:
    return r.method == "GET" and r.headers.get("range") == f"bytes={PART}-{2 * PART - 1}"


def nothing_left(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- item 2: two versions are never stitched -----------------------------------------------
@pytest.mark.parametrize("other", [
    {"size": SIZE},  # same size, another ETag
    {"size": SIZE + MIB, "same_etag": True},  # another size under the same ETag
], ids=["another-etag", "another-size"])
def test_a_store_ignoring_if_match_never_stitches_two_versions_into_a_file(
        srv: S3Server, tmp_path: Path, other: Dict[str, Any]) -> None:
    multipart_object(srv, "/v.bin", seed=1)
    etag = srv.buckets["bkt"].objects["v.bin"].etag
    params: Dict[str, Any] = {"data": blob(other["size"], seed=2)}
    if other.get("same_etag"):
        params["etag"] = etag
    srv.inject("swap_version", count=10, **params)  # the ranges after the first
    with pytest.raises(knoxpy.IntegrityError) as info:
        make(srv, concurrency=1).download("/v.bin", str(tmp_path / "v.bin")).wait(60)
    text = str(info.value)
    assert "v.bin" in text and ("changed" in text or "Content-Range" in text), text
    if not other.get("same_etag"):
        assert etag in text  # expected vs got
    nothing_left(tmp_path)


def test_a_store_ignoring_if_match_never_stitches_two_versions_into_a_writable(
        srv: S3Server) -> None:
    multipart_object(srv, "/w.bin", seed=3)
    srv.inject("swap_version", count=10, data=blob(SIZE, seed=4))
    out = io.BytesIO()
    with pytest.raises(knoxpy.IntegrityError, match="changed"):
        make(srv, concurrency=1).download("/w.bin", out).wait(60)
    assert len(out.getvalue()) <= PART  # nothing of the other version was written


def test_a_resumed_download_is_never_completed_with_another_version(
        srv: S3Server, tmp_path: Path) -> None:
    multipart_object(srv, "/r.bin", seed=5)
    dest = tmp_path / "r.bin"
    srv.inject("status", count=1, status=500, code="InternalError", match=lambda r: (
        r.method == "GET" and r.headers.get("range", "").startswith(f"bytes={2 * PART}-")))
    with pytest.raises(knoxpy.S3Error):  # the 3rd range fails: 0-10 MiB kept to resume
        make(srv, maxRetries=0, concurrency=1).download("/r.bin", str(dest),
                                                        resume=True).wait(60)
    assert os.path.exists(str(dest) + PARTIAL_SUFFIX + ".jsonl")
    srv.inject("swap_version", count=10, data=blob(SIZE, seed=6))  # HEAD still says A
    with pytest.raises(knoxpy.IntegrityError, match="changed"):
        make(srv).download("/r.bin", str(dest), resume=True).wait(60)
    nothing_left(tmp_path)  # no file, and neither partial file nor journal to resume from


# -- item 3: every Content-Range is the one asked for ----------------------------------------
@pytest.mark.parametrize("where, lie", [
    (first_range, {"first": 1000}),  # asked for 0-, answered as if 1000-
    (first_range, {"total": SIZE - PART}),  # a smaller object than it is
    (first_range, {"header": f"bytes 0-{PART - 1}/*"}),  # malformed: no total
    (first_range, {"header": "bytes=0-9"}),  # malformed
    (later_range, {"total": SIZE + PART}),  # another total than the first answer's
], ids=["first-start", "first-total", "first-star", "first-garbage", "later-total"])
def test_a_content_range_other_than_the_one_asked_for_is_refused(
        srv: S3Server, tmp_path: Path, where: Any, lie: Dict[str, Any]) -> None:
    multipart_object(srv, "/lie.bin", seed=7)
    srv.inject("lie_range", count=10, match=where, **lie)
    with pytest.raises(knoxpy.IntegrityError, match="Content-Range") as info:
        make(srv, concurrency=1).download("/lie.bin", str(tmp_path / "lie.bin")).wait(60)
    assert "asked for bytes" in str(info.value)
    nothing_left(tmp_path)


def test_a_first_answer_for_another_range_is_refused_into_a_writable(srv: S3Server) -> None:
    multipart_object(srv, "/lie.bin", seed=8)
    srv.inject("lie_range", count=1, match=first_range, first=1000)
    out = io.BytesIO()
    with pytest.raises(knoxpy.IntegrityError, match="bytes 1000-"):
        make(srv).download("/lie.bin", out).wait(60)
    assert out.getvalue() == b""


# -- item 4: a 200 without Content-Length, a 200 to a ranged GET ---------------------------
@pytest.mark.parametrize("size", [3 * MIB, SIZE])
def test_a_chunked_200_without_content_length_is_read_to_its_end(
        srv: S3Server, tmp_path: Path, size: int) -> None:
    data = blob(size, seed=9)
    srv.put("bkt", "chunked.bin", data)
    srv.inject("ignore_range", count=1, match="GET /bkt/chunked.bin")
    srv.inject("chunked_no_length", count=1, match="GET /bkt/chunked.bin")
    dest = tmp_path / "chunked.bin"
    result = make(srv).download("/chunked.bin", str(dest)).wait(60)
    assert result["size"] == size
    assert dest.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.bin"]
    assert [r.method for r in srv.requests if r.path.startswith("/bkt/chunked.bin")] == ["GET"]


def test_a_chunked_200_without_content_length_into_a_writable(srv: S3Server) -> None:
    data = blob(SIZE, seed=10)
    srv.put("bkt", "chunked.bin", data)
    srv.inject("ignore_range", count=1, match="GET /bkt/chunked.bin")
    srv.inject("chunked_no_length", count=1, match="GET /bkt/chunked.bin")
    out = io.BytesIO()
    assert make(srv).download("/chunked.bin", out).wait(60)["size"] == SIZE
    assert out.getvalue() == data


def test_a_chunked_200_cut_short_fails_and_leaves_no_file(srv: S3Server, tmp_path: Path) -> None:
    multipart_object(srv, "/cut.bin", seed=11)  # no MD5 to catch it
    for fault in ("ignore_range", "chunked_no_length", "short_body"):
        srv.inject(fault, count=1, match="GET /bkt/cut.bin")
    with pytest.raises(knoxpy.RequestError):
        make(srv).download("/cut.bin", str(tmp_path / "cut.bin"), resume=True).wait(60)
    nothing_left(tmp_path)


def test_knoxpy_get_of_a_chunked_200_writes_the_whole_object(srv: S3Server,
                                                             tmp_path: Path) -> None:
    data = blob(SIZE, seed=12)
    srv.put("bkt", "cli.bin", data)
    srv.inject("ignore_range", count=1, match="GET /bkt/cli.bin")
    srv.inject("chunked_no_length", count=1, match="GET /bkt/cli.bin")
    done = cli(srv, tmp_path, "get", "s3://bkt/cli.bin", "cli.bin")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli.bin").read_bytes() == data


def cli(srv: S3Server, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEBUG"}
    env.update(HOME=str(home), AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    return subprocess.run([sys.executable, "-m", "knoxpy", "--endpoint-url", srv.url, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


# -- knoxpy.fs's large reads: the same checks on every part ---------------------------------
FS_PART = 1 * MIB  # a read of 3 MiB + 5 comes in four parallel parts


def fs_range(first: int) -> Any:
    return lambda r: r.method == "GET" and r.headers.get("range", "").startswith(
        f"bytes={first}-")


@pytest.mark.parametrize("where, lie, caught", [
    (0, {"first": 1000}, 0),  # the first part answered as if it began at byte 1000
    # a smaller object: the read would stop short, unsaid; the next part's total says no
    (0, {"total": 2 * FS_PART}, FS_PART),
    (0, {"header": "bytes=0-9"}, 0),  # malformed
    (FS_PART, {"first": 0}, FS_PART),  # a later part answered as bytes 0-...
    (2 * FS_PART, {"total": 5 * FS_PART}, 2 * FS_PART),  # not the first answer's total
], ids=["first-start", "first-total", "first-garbage", "later-start", "later-total"])
@pytest.mark.parametrize("how", ["cat_file", "open-read"])
def test_an_fs_large_read_refuses_a_content_range_other_than_the_one_asked_for(
        srv: S3Server, where: int, lie: Dict[str, Any], caught: int, how: str) -> None:
    from knoxpy.fs import KnoxFileSystem

    fs = KnoxFileSystem(key=KEY, secret=SECRET, endpoint="localhost", port=srv.port,
                        style="path", maxRetries=0, skip_instance_cache=True)
    fs.read_part_size = FS_PART
    data = blob(3 * FS_PART + 5, seed=13)
    srv.put("bkt", "span.bin", data)
    srv.inject("lie_range", count=10, match=fs_range(where), **lie)
    with pytest.raises(knoxpy.IntegrityError, match="Content-Range") as info:
        if how == "cat_file":
            fs.cat_file("bkt/span.bin", 0, len(data))
        else:
            with fs.open("bkt/span.bin", "rb", block_size=FS_PART) as f:
                f.read()
    assert f"asked for bytes {caught}-" in str(info.value) and "span.bin" in str(info.value)
