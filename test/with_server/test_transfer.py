"""upload and download of any size (issue 3, items 1, 2, 3 for parts, 7 and 8).

Against moto (both URL styles) for S3's behaviour, and against the project's fault server
(test/servers/s3shaped.py) for what moto cannot show: resets mid-part, 503 bursts, a part
that keeps failing, cut and corrupt bodies, interrupted transfers resumed, redirects.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import re
import threading
import uuid
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from conftest import fault_client
from servers.s3shaped import Obj, S3Server

import knoxpy
from knoxpy import _parts, _xml
from knoxpy import client as client_module
from knoxpy.transfer import PARTIAL_SUFFIX, UPLOAD_JOURNAL_SUFFIX

MIB = 1024 * 1024
PART = 5 * MIB


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def chunks_of(data: bytes, size: int = 300_000) -> Iterator[bytes]:
    """A generator: a stream whose length nobody knows in advance."""
    for i in range(0, len(data), size):
        yield data[i:i + size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key(name: str) -> str:
    return f"/transfer/{uuid.uuid4().hex[:8]}/{name}"


class Events:
    """Records what an operation emits, in order."""

    def __init__(self, op: Any) -> None:
        self.op = op
        self.seen: List[Tuple[str, Any]] = []
        for name in ("progress", "part", "retry", "redirect"):
            op.on(name, lambda info, name=name: self.seen.append((name, info)))

    def __getitem__(self, name: str) -> List[Any]:
        return [info for n, info in self.seen if n == name]

    def check_progress(self, total: int) -> None:
        progress = self["progress"]
        written = [p["written"] for p in progress]
        assert written == sorted(written), "progress must never go back"
        assert progress[-1] == {"written": total, "total": total, "percent": 100}


def multipart_uploads(c: Any) -> List[Dict[str, Any]]:
    res = c.request("GET", "/?uploads").end().wait(10)
    return list(_xml.parse_list_multipart_uploads(res.read())["Upload"])


# -- against moto -------------------------------------------------------------------------
def test_a_50_mb_stream_of_unknown_length_goes_in_parts_byte_exact(client: Any,
                                                                   tmp_path: Any) -> None:
    data = blob(50 * 10**6)
    name = key("stream.bin")
    op = client.upload(chunks_of(data), name, partSize=PART)
    ev = Events(op)
    result = op.wait(120)
    assert result["Bucket"] == client.bucket and result["Key"] == name[1:]
    assert re.fullmatch(r'"[0-9a-f]{32}-10"', result["ETag"])
    assert result["Location"]
    parts = ev["part"]
    assert sorted(p["partNumber"] for p in parts) == list(range(1, 11))
    assert sum(p["size"] for p in parts) == len(data)
    assert all(p["ETag"] for p in parts)
    ev.check_progress(len(data))
    assert all(p["total"] is None for p in ev["progress"][:-1] if p["written"] < PART)

    dest = tmp_path / "stream.bin"
    down = client.download(name, str(dest), partSize=PART)
    dev = Events(down)
    got = down.wait(120)
    assert got == {"Key": name[1:], "size": len(data), "ETag": result["ETag"], "path": str(dest)}
    assert sha(dest.read_bytes()) == sha(data)
    dev.check_progress(len(data))
    assert not os.path.exists(str(dest) + PARTIAL_SUFFIX)


def test_small_sources_of_any_kind_go_as_one_put(client: Any, tmp_path: Any) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello from a file")
    results = [
        client.upload(str(path), key("a.txt")).wait(20),
        client.upload(io.BytesIO(b"from a file object"), key("b.bin")).wait(20),
        client.upload(chunks_of(b"from a generator", 4), key("c.bin")).wait(20),
        client.upload(b"", key("empty")).wait(20),
    ]
    for r in results:  # one PUT: a plain MD5 ETag, never a multipart one
        assert re.fullmatch(r'"[0-9a-f]{32}"', r["ETag"]), r
    assert results[3]["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    res = client.head(results[0]["Key"]).end().wait(10)
    assert res.headers["content-type"] == "text/plain; charset=UTF-8"  # as knox's putFile


def test_upload_from_a_path_a_file_object_and_another_response(client: Any,
                                                               tmp_path: Any) -> None:
    data = blob(12 * MIB, seed=2)
    path = tmp_path / "twelve.bin"
    path.write_bytes(data)
    first = client.upload(str(path), key("from-path"), partSize=PART).wait(60)
    assert first["ETag"].endswith('-3"')
    with open(path, "rb") as f:
        second = client.upload(f, key("from-file"), partSize=PART).wait(60)
    assert second["ETag"] == first["ETag"]
    # a GET piped into an upload: its 'data' arrives on this loop, with backpressure
    res = client.get(first["Key"]).end().wait(10)
    third = client.upload(res, key("from-response"), partSize=PART).wait(60)
    assert third["ETag"] == first["ETag"]
    buf = io.BytesIO()
    assert client.download(third["Key"], buf, partSize=PART).wait(60)["path"] is None
    assert sha(buf.getvalue()) == sha(data)


def test_download_to_a_writable_gets_the_bytes_in_order(client: Any) -> None:
    data = blob(17 * MIB, seed=3)
    name = key("ordered.bin")
    client.upload(data, name, partSize=PART).wait(60)
    buf = io.BytesIO()
    op = client.download(name, buf, partSize=PART, concurrency=4)
    ev = Events(op)
    result = op.wait(60)
    assert result["size"] == len(data) and result["path"] is None
    assert sha(buf.getvalue()) == sha(data)
    ev.check_progress(len(data))


def test_download_of_a_missing_key_is_an_s3_error_and_leaves_no_file(client: Any,
                                                                    tmp_path: Any) -> None:
    dest = tmp_path / "missing.bin"
    with pytest.raises(knoxpy.S3Error) as info:
        client.download(key("missing"), str(dest)).wait(20)
    assert info.value.code == "NoSuchKey" and info.value.statusCode == 404
    assert list(tmp_path.iterdir()) == []


def test_a_failed_upload_is_aborted_no_parts_no_object(client: Any) -> None:
    name = key("broken.bin")

    def failing() -> Iterator[bytes]:
        yield from chunks_of(blob(12 * MIB, seed=4))
        raise OSError("the source broke")

    with pytest.raises(OSError, match="the source broke"):
        client.upload(failing(), name, partSize=PART).wait(60)
    assert [u for u in multipart_uploads(client) if u["Key"] == name[1:]] == []
    assert client.head(name).end().wait(10).statusCode == 404


def test_upload_and_download_call_back_on_the_loop(client: Any, tmp_path: Any) -> None:
    calls: List[Tuple[Any, Any]] = []
    name = key("cb.bin")
    client.upload(b"callback", name, lambda err, res: calls.append((err, res)))
    assert calls == []  # CONTRACT 2.1
    knoxpy.run(timeout=20)
    client.download(name, str(tmp_path / "cb.bin"), None,
                    lambda err, res: calls.append((err, res)))
    assert len(calls) == 1
    knoxpy.run(timeout=20)
    assert [err for err, _ in calls] == [None, None]
    assert calls[0][1]["Key"] == name[1:] and calls[1][1]["size"] == 8


# -- against the fault server ---------------------------------------------------------------
@pytest.fixture(autouse=True)
def _forget(forget_learned: None) -> None:
    """Each test starts knowing no bucket's region and no store's checksum support."""


def make(srv: S3Server, **extra: Any) -> Any:
    return fault_client(srv, **{"partSize": PART, **extra})


def part_puts(srv: S3Server, since: int = 0) -> List[int]:
    return sorted(int(r.query["partNumber"]) for r in srv.requests[since:]
                  if r.method == "PUT" and "partNumber" in r.query)


def bytes_served(srv: S3Server, since: int = 0) -> int:
    total = 0
    for r in srv.requests[since:]:
        if r.method == "GET":
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", r.headers.get("range", ""))
            assert m, "every GET of a download asks for a range"
            total += int(m[2]) - int(m[1]) + 1
    return total


def stored(srv: S3Server, name: str) -> bytes:
    data = srv.buckets["bkt"].objects[name].data
    assert data is not None
    return data


def test_a_small_upload_is_a_single_put(srv: S3Server) -> None:
    make(srv).upload(chunks_of(b"x" * 1000), "/small", checksum="crc32").wait(10)
    assert [(r.method, r.path) for r in srv.requests] == [("PUT", "/bkt/small")]
    # S3 checks it (the fault server too: a wrong one is 400 BadDigest)
    assert srv.requests[0].headers["x-amz-checksum-crc32"] == _parts.content_crc32(b"x" * 1000)


def test_over_plain_http_every_body_has_its_sha256_signed_and_verified() -> None:
    # Over HTTP a CRC32 could be forged by whoever sits on the path; a signed SHA-256
    # cannot, and S3 checks it (here: verify_sha256).
    data = blob(11 * MIB, seed=2)
    with S3Server(mode="store", record=True, verify_sha256=True) as plain:
        make(plain).upload(data, "/signed.bin").wait(30)
        make(plain).upload(b"z" * 1000, "/signed-small.bin").wait(10)
        assert stored(plain, "signed.bin") == data
        signed = sorted(r.headers["x-amz-content-sha256"] for r in plain.requests
                        if r.method == "PUT")
        want = [sha(data[i:i + PART]) for i in range(0, len(data), PART)] + [sha(b"z" * 1000)]
        assert signed == sorted(want)
        assert not any(h.startswith("x-amz-checksum-") or h == "content-md5"
                       for r in plain.requests for h in r.headers)


def test_the_checksum_is_crc32_over_https_and_content_md5_for_v2_over_http() -> None:
    from knoxpy.transfer import _Checksum
    tls = knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt")
    assert _Checksum(tls).kind == "crc32"
    v2 = knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt", port=8080,
                             signatureVersion=2)
    assert _Checksum(v2).kind == "md5"  # V2 signs Content-MD5; it has no payload hash
    assert _Checksum(v2, "sha256").kind == "md5"
    with pytest.raises(knoxpy.ValidationError, match="checksum must be one of"):
        tls.upload(b"x", "/x", checksum="crc64").wait(5)


def test_every_part_carries_a_crc32_the_upload_declared_and_completes_with(
        srv: S3Server) -> None:
    data = blob(11 * MIB, seed=3)
    make(srv).upload(data, "/crc.bin", checksum="crc32").wait(30)
    assert stored(srv, "crc.bin") == data  # every part's checksum was verified on arrival
    initiate, *parts, complete = srv.requests
    assert initiate.headers["x-amz-checksum-algorithm"] == "CRC32"
    sums = [_parts.content_crc32(data[i:i + PART]) for i in range(0, len(data), PART)]
    parts.sort(key=lambda r: int(r.query["partNumber"]))  # sent in parallel: any order
    assert [r.headers.get("x-amz-checksum-crc32") for r in parts] == sums
    assert not any("content-md5" in r.headers for r in srv.requests)
    # S3 refuses to complete an upload begun with CRC32 unless each part's is named
    assert complete.body is not None
    assert re.findall(rb"<ChecksumCRC32>([^<]+)</ChecksumCRC32>", complete.body) == \
        [v.encode() for v in sums]


def test_a_store_refusing_checksum_headers_gets_content_md5_warned_once(
        caplog: Any) -> None:
    data = blob(11 * MIB, seed=4)
    with S3Server(mode="store", record=True, reject_checksum_trailer=True) as old:
        c = make(old)
        with caplog.at_level("WARNING", logger="knoxpy"):
            # the initiate is refused, then sent again with Content-MD5 parts
            c.upload(data, "/old.bin", checksum="crc32").wait(30)
            c.upload(b"y" * 1000, "/old-small.bin", checksum="crc32").wait(10)
            make(old).upload(blob(6 * MIB), "/old2.bin", checksum="crc32").wait(30)  # the same
        assert stored(old, "old.bin") == data
        refused = [r for r in old.requests if any(h.startswith("x-amz-checksum-")
                                                   for h in r.headers)]
        assert [(r.method, r.query) for r in refused] == [("POST", {"uploads": ""})]
        puts = [r for r in old.requests if r.method == "PUT"]
        assert len(puts) == 3 + 1 + 2 and all(r.headers.get("content-md5") for r in puts)
        completes = [r for r in old.requests if r.method == "POST" and "uploadId" in r.query]
        assert len(completes) == 2 and not any(b"Checksum" in (r.body or b"") for r in completes)
        warnings = [r for r in caplog.records if "x-amz-checksum" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelname == "WARNING"


def test_a_refused_part_checksum_is_sent_again_with_content_md5(srv: S3Server) -> None:
    # A store that takes the algorithm at initiate but refuses it on a part.
    srv.inject("status", count=1, match="partNumber=2&", status=400, code="InvalidArgument",
               message="Unsupported header x-amz-checksum-crc32")
    data = blob(11 * MIB, seed=21)
    make(srv).upload(data, "/mixed.bin", checksum="crc32").wait(30)
    assert stored(srv, "mixed.bin") == data
    assert part_puts(srv) == [1, 2, 2, 3]
    complete = srv.requests[-1]
    assert complete.method == "POST" and b"Checksum" not in (complete.body or b"")


def test_a_reset_mid_part_is_retried_byte_exact(srv: S3Server) -> None:
    data = blob(16 * MIB, seed=5)
    srv.inject("reset_request_body", count=1, match="partNumber=2&", after=MIB)
    op = make(srv).upload(chunks_of(data), "/reset.bin")
    ev = Events(op)
    op.wait(60)
    assert stored(srv, "reset.bin") == data
    assert [r["reason"] for r in ev["retry"]] == ["ECONNRESET"]
    assert part_puts(srv) == [1, 2, 2, 3, 4]
    ev.check_progress(len(data))  # the retried part's bytes are not counted twice


def test_a_503_burst_on_upload_part_is_retried_with_retry_events(srv: S3Server) -> None:
    data = blob(11 * MIB, seed=6)
    srv.inject("status", count=2, match="partNumber=1&", status=503, code="SlowDown")
    op = make(srv).upload(data, "/slow.bin")
    ev = Events(op)
    op.wait(60)
    assert stored(srv, "slow.bin") == data
    retries = ev["retry"]
    assert [r["reason"] for r in retries] == ["503 SlowDown"] * 2
    assert all(r["delay"] >= 0 for r in retries)


def test_a_part_that_keeps_failing_aborts_the_upload(srv: S3Server) -> None:
    srv.inject("status", count=50, match="partNumber=2&", status=500, code="InternalError")
    with pytest.raises(knoxpy.S3Error) as info:
        make(srv, maxRetries=1).upload(blob(16 * MIB), "/doomed.bin").wait(60)
    assert info.value.code == "InternalError" and info.value.statusCode == 500
    assert srv.buckets["bkt"].uploads == {}  # aborted: no orphaned parts
    assert "doomed.bin" not in srv.buckets["bkt"].objects
    assert any(r.method == "DELETE" and "uploadId" in r.query for r in srv.requests)


def test_parts_are_read_while_the_initiate_is_on_its_way(srv: S3Server) -> None:
    """The first worker begins the upload; the others read their parts meanwhile, and no
    part goes before the upload id is known."""
    data = blob(8 * PART, seed=22)
    read = threading.Condition()
    total = [0]

    class Counted(io.BytesIO):
        def readinto(self, b: Any) -> int:
            n = super().readinto(b)
            with read:
                total[0] += n
                read.notify_all()
            return n

    srv.inject("gate", count=1, match="POST /bkt/early.bin?uploads", name="initiate")
    op = make(srv, concurrency=4).upload(Counted(data), "/early.bin")
    try:
        assert srv.wait_held("initiate"), "the upload did not begin"
        with read:  # three workers, a part each, while the fourth waits for the id
            assert read.wait_for(lambda: total[0] == 3 * PART, timeout=30), total[0]
        assert not any(r.method == "PUT" for r in srv.requests)
    finally:
        srv.release("initiate")
    op.wait(60)
    assert stored(srv, "early.bin") == data
    assert part_puts(srv) == list(range(1, 9))


def test_a_refused_initiate_sends_no_part_and_leaves_nothing(srv: S3Server,
                                                          tmp_path: Any) -> None:
    path = tmp_path / "refused.bin"
    path.write_bytes(blob(4 * PART, seed=23))
    srv.inject("status", count=1, match="?uploads", status=403, code="AccessDenied")
    with pytest.raises(knoxpy.S3Error) as info:
        make(srv).upload(str(path), "/refused.bin").wait(60)
    assert info.value.code == "AccessDenied"
    assert [(r.method, r.query) for r in srv.requests] == [("POST", {"uploads": ""})]
    bucket = srv.buckets.get("bkt")  # made by the first write, if any
    assert bucket is None or (bucket.uploads == {} and "refused.bin" not in bucket.objects)


def test_complete_answering_200_with_an_error_is_retried(srv: S3Server) -> None:
    data = blob(11 * MIB, seed=7)
    srv.inject("error_in_200", count=1, match=lambda r: r.method == "POST" and
               "uploadId" in r.query, code="InternalError")
    op = make(srv).upload(data, "/complete.bin")
    ev = Events(op)
    result = op.wait(60)
    assert stored(srv, "complete.bin") == data
    assert result["ETag"].endswith('-3"')
    assert [r["reason"] for r in ev["retry"]] == ["200 InternalError"]


def test_a_download_reset_mid_body_goes_on_from_where_it_stopped(srv: S3Server,
                                                                tmp_path: Any) -> None:
    data = blob(12 * MIB, seed=8)
    srv.put("bkt", "cut.bin", data)
    srv.inject("reset_response_body", count=1,
               match=lambda r: r.headers.get("range") == f"bytes={PART}-{2 * PART - 1}",
               after=MIB)
    dest = tmp_path / "cut.bin"
    op = make(srv).download("/cut.bin", str(dest))
    ev = Events(op)
    op.wait(60)
    assert dest.read_bytes() == data
    assert [r["reason"] for r in ev["retry"]] == ["ECONNRESET"]
    assert any(r.headers.get("range", "").startswith(f"bytes={PART + MIB}-")
               for r in srv.requests)  # only the rest of the range is asked for again
    ev.check_progress(len(data))


def test_a_download_stalled_mid_body_times_out_and_goes_on_from_where_it_stopped(
        srv: S3Server, tmp_path: Any) -> None:
    """Over plain HTTP a range's body goes socket to file by os.splice: the read timeout
    still holds there, and the retry asks for the rest only."""
    data = blob(12 * MIB, seed=18)
    srv.put("bkt", "stall.bin", data)
    srv.inject("stall_mid_body", count=1, seconds=60, after=3 * MIB,
               match=lambda r: r.headers.get("range") == f"bytes={PART}-{2 * PART - 1}")
    dest = tmp_path / "stall.bin"
    op = make(srv, timeout=(2, 0.5)).download("/stall.bin", str(dest))
    ev = Events(op)
    op.wait(60)
    assert dest.read_bytes() == data
    assert [r["reason"] for r in ev["retry"]] == ["ETIMEDOUT"]
    assert any(r.headers.get("range", "").startswith(f"bytes={PART + 3 * MIB}-")
               for r in srv.requests)
    ev.check_progress(len(data))


def test_a_download_cut_without_retries_leaves_no_file_under_the_final_name(
        srv: S3Server, tmp_path: Any) -> None:
    srv.put("bkt", "cut.bin", blob(12 * MIB, seed=9))
    srv.inject("short_body", count=1, match="GET /bkt/cut.bin", after=2 * MIB)
    dest = tmp_path / "cut.bin"
    with pytest.raises(knoxpy.RequestError) as info:
        make(srv, maxRetries=0).download("/cut.bin", str(dest)).wait(60)
    assert info.value.code == "ECONNRESET"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", [3 * MIB, 12 * MIB])  # one range; several ranges
def test_a_corrupt_body_is_an_integrity_error_and_no_file(srv: S3Server, tmp_path: Any,
                                                          size: int) -> None:
    srv.put("bkt", "bad.bin", blob(size, seed=10))  # one PUT: its ETag is its MD5
    srv.inject("corrupt_body", count=1, match="GET /bkt/bad.bin", at=1000)
    with pytest.raises(knoxpy.IntegrityError, match="do not match its ETag"):
        make(srv).download("/bad.bin", str(tmp_path / "bad.bin")).wait(60)
    assert list(tmp_path.iterdir()) == []


def test_a_one_put_object_in_many_ranges_is_md5_checked_as_its_prefix_completes(
        srv: S3Server, tmp_path: Any) -> None:
    data = blob(23 * MIB, seed=22)  # 5 ranges, fetched in any order
    srv.put("bkt", "one.bin", data)
    dest = tmp_path / "one.bin"
    make(srv).download("/one.bin", str(dest)).wait(60)
    assert dest.read_bytes() == data
    srv.inject("corrupt_body", count=1, at=123,  # the 4th range: hashed once 1-3 are in
               match=lambda r: r.headers.get("range") == f"bytes={3 * PART}-{4 * PART - 1}")
    with pytest.raises(knoxpy.IntegrityError, match="do not match its ETag"):
        make(srv).download("/one.bin", str(tmp_path / "bad.bin")).wait(60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.bin"]


def test_an_object_that_changes_mid_download_fails_rather_than_mixing(srv: S3Server,
                                                                     tmp_path: Any) -> None:
    srv.put("bkt", "moving.bin", blob(12 * MIB, seed=11))

    def replace_it(r: Any) -> bool:  # the object changes after the first range was served
        if r.method == "GET" and r.headers.get("range", "").startswith(f"bytes={PART}-"):
            new = blob(12 * MIB, seed=12)  # (called under the server's lock: no srv.put)
            srv.buckets["bkt"].put("moving.bin", Obj(new, len(new),
                                                     f'"{hashlib.md5(new).hexdigest()}"', {}))
        return False

    srv.inject("status", count=1, match=replace_it)
    with pytest.raises(knoxpy.S3Error) as info:
        make(srv, concurrency=1).download("/moving.bin", str(tmp_path / "m.bin")).wait(60)
    assert info.value.code == "PreconditionFailed"
    assert list(tmp_path.iterdir()) == []


def test_download_into_a_knoxpy_writable_respects_its_backpressure(srv: S3Server) -> None:
    data = blob(11 * MIB, seed=13)
    srv.put("bkt", "src.bin", data)
    c = make(srv)
    req = c.put("/dst.bin", {"Content-Length": len(data)})
    result = c.download("/src.bin", req).wait(60)
    assert result["path"] is None
    assert req.end().wait(30).statusCode == 200
    assert stored(srv, "dst.bin") == data


# -- resumable transfers (item 8) -----------------------------------------------------------
@pytest.mark.parametrize("checksum", [None, "crc32"])  # signed SHA-256 (HTTP) or CRC32
def test_a_resumed_upload_sends_only_the_missing_parts(srv: S3Server, tmp_path: Any,
                                                       checksum: Any) -> None:
    data = blob(23 * MIB, seed=14)  # 5 parts
    path = tmp_path / "resume.bin"
    path.write_bytes(data)
    journal = str(path) + UPLOAD_JOURNAL_SUFFIX
    srv.inject("status", count=1, match="partNumber=4&", status=500, code="InternalError")
    with pytest.raises(knoxpy.S3Error):
        make(srv, maxRetries=0).upload(str(path), "/resume.bin", resume=True,
                                       concurrency=1, checksum=checksum).wait(60)
    assert os.path.exists(journal) and len(srv.buckets["bkt"].uploads) == 1  # kept to resume
    mark = len(srv.requests)
    op = make(srv).upload(str(path), "/resume.bin", resume=True)  # as it was begun
    ev = Events(op)
    op.wait(60)
    assert part_puts(srv, mark) == [4, 5]
    resent = [r for r in srv.requests[mark:] if r.method == "PUT"]
    assert all(("x-amz-checksum-crc32" in r.headers) == (checksum == "crc32") for r in resent)
    complete = srv.requests[-1].body or b""
    assert complete.count(b"<ChecksumCRC32>") == (5 if checksum == "crc32" else 0)
    assert stored(srv, "resume.bin") == data
    assert not os.path.exists(journal) and srv.buckets["bkt"].uploads == {}
    ev.check_progress(len(data))


def test_a_resumed_upload_of_a_changed_file_starts_over(srv: S3Server, tmp_path: Any) -> None:
    path = tmp_path / "changing.bin"
    path.write_bytes(blob(23 * MIB, seed=15))
    srv.inject("status", count=1, match="partNumber=4&", status=500, code="InternalError")
    with pytest.raises(knoxpy.S3Error):
        make(srv, maxRetries=0).upload(str(path), "/changing.bin", resume=True,
                                       concurrency=1).wait(60)
    (old_id,) = srv.buckets["bkt"].uploads
    changed = blob(23 * MIB, seed=16)
    path.write_bytes(changed)
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    mark = len(srv.requests)
    make(srv).upload(str(path), "/changing.bin", resume=True).wait(60)
    assert part_puts(srv, mark) == [1, 2, 3, 4, 5]
    assert stored(srv, "changing.bin") == changed
    assert srv.buckets["bkt"].uploads == {}  # the old upload was aborted
    assert any(r.method == "DELETE" and r.query.get("uploadId") == old_id
               for r in srv.requests[mark:])


def _interrupted_download(srv: S3Server, dest: Any) -> None:
    """A download of 5 ranges whose 4th fails; resume=True keeps what was verified."""
    srv.inject("status", count=1, status=500, code="InternalError",
               match=lambda r: r.headers.get("range") == f"bytes={3 * PART}-{4 * PART - 1}")
    with pytest.raises(knoxpy.S3Error):
        make(srv, maxRetries=0).download("/obj.bin", str(dest), resume=True,
                                         concurrency=1).wait(60)
    assert not dest.exists() and os.path.exists(str(dest) + PARTIAL_SUFFIX)


def test_a_resumed_download_continues_from_what_is_verified(srv: S3Server,
                                                           tmp_path: Any) -> None:
    data = blob(23 * MIB, seed=17)
    srv.put("bkt", "obj.bin", data)
    dest = tmp_path / "obj.bin"
    _interrupted_download(srv, dest)
    mark = len(srv.requests)
    op = make(srv).download("/obj.bin", str(dest), resume=True)
    ev = Events(op)
    op.wait(60)
    assert bytes_served(srv, mark) == len(data) - 3 * PART  # ranges 4 and 5 only
    assert dest.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj.bin"]  # no partial, no journal
    ev.check_progress(len(data))


def test_a_resumed_download_of_a_changed_object_starts_over(srv: S3Server,
                                                           tmp_path: Any) -> None:
    srv.put("bkt", "obj.bin", blob(23 * MIB, seed=18))
    dest = tmp_path / "obj.bin"
    _interrupted_download(srv, dest)
    changed = blob(23 * MIB, seed=19)
    srv.put("bkt", "obj.bin", changed)
    mark = len(srv.requests)
    make(srv).download("/obj.bin", str(dest), resume=True).wait(60)
    assert bytes_served(srv, mark) == len(changed)
    assert dest.read_bytes() == changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj.bin"]


# -- region redirects (item 7) --------------------------------------------------------------
def test_upload_and_download_work_against_another_region_without_the_option(
        tmp_path: Any) -> None:
    with S3Server(mode="store", require_region="eu-west-2") as far:
        c = make(far)
        data = blob(11 * MIB, seed=20)
        op = c.upload(chunks_of(data), "/far.bin")
        ev = Events(op)
        op.wait(60)
        assert ev["redirect"][0]["region"] == "eu-west-2"
        assert stored(far, "far.bin") == data
        client_module._BUCKET_REGIONS.clear()  # the download learns the region for itself
        dest = tmp_path / "far.bin"
        down = c.download("/far.bin", str(dest))
        dev = Events(down)
        down.wait(60)
        assert dest.read_bytes() == data and dev["redirect"][0]["region"] == "eu-west-2"
