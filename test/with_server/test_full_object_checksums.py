"""Checksums S3 now computes for every object: CRC64NVME, CRC32C, SHA-1, FULL_OBJECT multipart
uploads, downloads that check the stored checksum (issue 15, item 2).

Against moto where it does the feature: it stores the checksum a client gives
(x-amz-sdk-checksum-algorithm with the value, or the trailer), and at a multipart completion
computes the whole object's itself (CRC64NVME through awscrt), which GET/HEAD give back with
``x-amz-checksum-mode: ENABLED``; it verifies none of what it is sent. Against the project's
fault server (test/servers/s3shaped.py) for what moto does not do: verifying each body's
CRC64NVME/CRC32C, each part's checksum named at completion and the whole object's FULL_OBJECT
CRC, answering with a wrong checksum (``wrong_checksum``), and corrupt bytes under a
multipart ETag that no MD5 can catch.
"""
from __future__ import annotations

import base64
import os
import random
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest
from awscrt import checksums as crt
from conftest import fault_client
from servers.s3shaped import S3Server

import knoxpy
from knoxpy import _checksums
from knoxpy._download import PARTIAL_SUFFIX
from knoxpy.errors import IntegrityError

MIB = 1024 * 1024
PART = 5 * MIB


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def crc64(data: bytes) -> str:
    return base64.b64encode(crt.crc64nvme(data).to_bytes(8, "big")).decode()


def key(name: str) -> str:
    return f"/fullobj/{uuid.uuid4().hex[:8]}/{name}"


def make(srv: S3Server, **extra: Any) -> Any:
    return fault_client(srv, **{"partSize": PART, **extra})


def stored_checksum(client: Any, filename: str) -> Dict[str, str]:
    res = client.request("HEAD", filename, {"x-amz-checksum-mode": "ENABLED"}).end().wait(10)
    res.resume()
    return {k: v for k, v in res.headers.items() if k.startswith("x-amz-checksum-")}


def multipart_object(srv: S3Server, name: str, data: bytes) -> None:
    """An object as a FULL_OBJECT CRC64NVME multipart upload leaves it (by any client)."""
    srv.put("bkt", name, data)
    obj = srv.buckets["bkt"].objects[name]
    obj.etag = '"9b2cf535f27731c974343645a3985328-3"'
    obj.checksum, obj.checksum_type = ("crc64nvme", crc64(data)), "FULL_OBJECT"


def requests(srv: S3Server, method: str, query: str = "") -> List[Any]:
    return [r for r in srv.requests if r.method == method and query in r.path]


# -- moto ----------------------------------------------------------------------------------
def test_moto_a_multipart_crc64nvme_upload_is_full_object_and_downloads_verified(
        client_options: Dict[str, Any], tmp_path: Path) -> None:
    client = knoxpy.createClient(dict(client_options, partSize=PART))
    data = blob(11 * MIB, seed=1)
    name = key("big.bin")
    client.upload(data, name, checksum="crc64nvme").wait(60)
    # moto computed the CRC64NVME of the whole object from the parts we sent
    assert stored_checksum(client, name)["x-amz-checksum-crc64nvme"] == crc64(data)
    out = tmp_path / "big.bin"
    result = client.download(name, str(out)).wait(60)
    assert out.read_bytes() == data and result["size"] == len(data)


def test_moto_a_single_put_keeps_the_checksum_knoxpy_sent(client_options: Dict[str, Any],
                                                          tmp_path: Path) -> None:
    client = knoxpy.createClient(client_options)
    data = b"small and checksummed " * 100
    for algorithm in ("crc64nvme", "crc32c", "sha1"):
        name = key(f"small-{algorithm}.txt")
        client.upload(data, name, checksum=algorithm).wait(30)
        header = f"x-amz-checksum-{algorithm}"
        assert stored_checksum(client, name)[header] == _checksums.value_of(algorithm, data)
        out = tmp_path / f"{algorithm}.txt"
        client.download(name, str(out)).wait(30)
        assert out.read_bytes() == data


def test_moto_putfile_with_a_crc64nvme_trailer(client_options: Dict[str, Any], tmp_path: Path,
                                               forget_learned: None) -> None:
    client = knoxpy.createClient(client_options)
    path = tmp_path / "f.bin"
    data = blob(700_000, seed=2)
    path.write_bytes(data)
    name = key("trailer.bin")
    res = client.putFile(str(path), name, checksum="crc64nvme").wait(30)
    assert res.statusCode == 200
    assert res.req.getHeader("x-amz-trailer") == "x-amz-checksum-crc64nvme"
    assert stored_checksum(client, name)["x-amz-checksum-crc64nvme"] == crc64(data)
    # and the client option does the same for putStream
    opted = knoxpy.createClient(dict(client_options, checksum="crc64nvme"))
    with open(path, "rb") as f:
        opted.putStream(f, name + "2", {"Content-Length": len(data)}).wait(30)
    assert stored_checksum(client, name + "2")["x-amz-checksum-crc64nvme"] == crc64(data)


def test_moto_a_composite_sha1_upload_downloads_without_a_false_alarm(
        client_options: Dict[str, Any], tmp_path: Path) -> None:
    client = knoxpy.createClient(dict(client_options, partSize=PART))
    data = blob(11 * MIB, seed=3)
    name = key("sha1.bin")
    client.upload(data, name, checksum="sha1").wait(60)
    assert "x-amz-checksum-sha1" in stored_checksum(client, name)
    out = tmp_path / "sha1.bin"
    client.download(name, str(out)).wait(60)
    assert out.read_bytes() == data


# -- the fault server ----------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["crc64nvme", "crc32", "crc32c"])
def test_a_multipart_crc_upload_is_full_object_with_the_combined_crc(
        srv: S3Server, algorithm: str) -> None:
    data = blob(11 * MIB, seed=4)
    make(srv).upload(data, "/crc.bin", checksum=algorithm).wait(60)
    obj = srv.buckets["bkt"].objects["crc.bin"]
    assert obj.data == data  # each part's checksum, and the whole object's, were verified
    assert obj.checksum == (algorithm, _checksums.value_of(algorithm, data))
    assert obj.checksum_type == "FULL_OBJECT"
    initiate, = requests(srv, "POST", "?uploads")
    assert initiate.headers["x-amz-checksum-algorithm"] == algorithm.upper()
    assert initiate.headers["x-amz-checksum-type"] == "FULL_OBJECT"
    parts = sorted(requests(srv, "PUT", "partNumber="), key=lambda r: int(r.query["partNumber"]))
    sums = [_checksums.value_of(algorithm, data[i:i + PART]) for i in range(0, len(data), PART)]
    assert [r.headers[f"x-amz-checksum-{algorithm}"] for r in parts] == sums
    complete, = requests(srv, "POST", "?uploadId=")
    tag = f"Checksum{algorithm.upper()}"
    assert re.findall(rf"<{tag}>([^<]+)</{tag}>".encode(), complete.body) == \
        [v.encode() for v in sums]
    assert complete.headers[f"x-amz-checksum-{algorithm}"] == \
        _checksums.value_of(algorithm, data)
    assert complete.headers["x-amz-checksum-type"] == "FULL_OBJECT"


def test_a_multipart_sha1_upload_is_composite(srv: S3Server) -> None:
    data = blob(11 * MIB, seed=5)
    make(srv).upload(data, "/sha1.bin", checksum="sha1").wait(60)
    obj = srv.buckets["bkt"].objects["sha1.bin"]
    assert obj.data == data and obj.checksum_type == "COMPOSITE"
    assert obj.checksum is not None and obj.checksum[1].endswith("-3")
    initiate, = requests(srv, "POST", "?uploads")
    assert initiate.headers["x-amz-checksum-algorithm"] == "SHA1"
    assert "x-amz-checksum-type" not in initiate.headers
    complete, = requests(srv, "POST", "?uploadId=")
    assert complete.body.count(b"<ChecksumSHA1>") == 3
    assert "x-amz-checksum-sha1" not in complete.headers


def test_the_client_option_chooses_every_upload_s_checksum(srv: S3Server) -> None:
    data = blob(6 * MIB, seed=6)
    make(srv, checksum="crc64nvme").upload(data, "/opt.bin").wait(60)
    assert srv.buckets["bkt"].objects["opt.bin"].checksum == ("crc64nvme", crc64(data))
    make(srv, checksum="crc64nvme").upload(b"tiny", "/tiny.bin").wait(10)
    put = requests(srv, "PUT", "/bkt/tiny.bin")[0]
    assert put.headers["x-amz-checksum-crc64nvme"] == crc64(b"tiny")
    assert put.headers["x-amz-sdk-checksum-algorithm"] == "CRC64NVME"


def test_a_wrong_stored_checksum_fails_the_download_and_leaves_nothing(
        srv: S3Server, tmp_path: Path) -> None:
    data = blob(11 * MIB, seed=7)
    multipart_object(srv, "w.bin", data)
    srv.inject("wrong_checksum", match="HEAD ")  # the HEAD that asks a ranged download's
    out = tmp_path / "w.bin"
    with pytest.raises(IntegrityError) as info:
        make(srv).download("/w.bin", str(out)).wait(60)
    message = str(info.value)
    assert "CRC64NVME" in message and crc64(data) in message  # both values named
    wrong = re.search(r"S3 gave (\S+),", message)
    assert wrong is not None and wrong[1] != crc64(data)
    assert not out.exists() and not os.path.exists(str(out) + PARTIAL_SUFFIX)
    assert os.listdir(tmp_path) == []


def test_corrupt_bytes_under_a_multipart_etag_are_caught_by_the_crc(
        srv: S3Server, tmp_path: Path) -> None:
    # A multipart ETag is no MD5 of the bytes: before stored checksums only the length was
    # checked, and a flipped byte was written under the final name.
    data = blob(11 * MIB, seed=8)
    multipart_object(srv, "c.bin", data)
    srv.inject("corrupt_body", match=lambda r: r.method == "GET"
               and r.headers.get("range", "").startswith("bytes=5242880-"), at=1000)
    out = tmp_path / "c.bin"
    with pytest.raises(IntegrityError, match="do not match their stored CRC64NVME checksum"):
        make(srv).download("/c.bin", str(out)).wait(60)
    assert os.listdir(tmp_path) == []
    sink: List[bytes] = []

    class Writable:
        def write(self, chunk: bytes) -> None:
            sink.append(bytes(chunk))

    srv.inject("corrupt_body", match=lambda r: r.method == "GET"
               and r.headers.get("range", "").startswith("bytes=10485760-"), at=10)
    with pytest.raises(IntegrityError, match="CRC64NVME"):
        make(srv).download("/c.bin", Writable()).wait(60)


def test_a_single_range_object_s_checksum_is_checked_directly(srv: S3Server,
                                                              tmp_path: Path) -> None:
    # stored by another client with its CRC64NVME and a KMS (non-MD5) ETag: the first,
    # whole-object GET gives no checksum (a Range), so a HEAD asks it, and it decides
    srv.put("bkt", "k.bin", b"kms bytes", **{"x-amz-server-side-encryption": "aws:kms"})
    obj = srv.buckets["bkt"].objects["k.bin"]
    obj.etag, obj.checksum = '"opaque-kms-etag"', ("crc64nvme", crc64(b"kms bytes"))
    out = tmp_path / "k.bin"
    make(srv).download("/k.bin", str(out)).wait(30)
    assert out.read_bytes() == b"kms bytes"
    srv.inject("wrong_checksum", match="HEAD ")
    with pytest.raises(IntegrityError, match="CRC64NVME"):
        make(srv).download("/k.bin", str(tmp_path / "k2.bin")).wait(30)
    assert sorted(os.listdir(tmp_path)) == ["k.bin"]


def test_a_resumed_download_checks_the_kept_ranges_too(srv: S3Server, tmp_path: Path) -> None:
    data = blob(16 * MIB, seed=9)
    multipart_object(srv, "r.bin", data)
    out = tmp_path / "r.bin"
    srv.inject("status", count=1, match=lambda r: r.method == "GET"
               and r.headers.get("range", "").startswith("bytes=15728640-"), status=403,
               code="AccessDenied")
    with pytest.raises(knoxpy.S3Error):
        make(srv, concurrency=1).download("/r.bin", str(out), resume=True).wait(60)
    partial = str(out) + PARTIAL_SUFFIX
    assert os.path.exists(partial)
    with open(partial, "r+b") as f:  # a kept range's bytes changed on disk meanwhile
        f.seek(100)
        f.write(b"\0" if data[100] else b"\1")
    with pytest.raises(IntegrityError, match="CRC64NVME"):
        make(srv).download("/r.bin", str(out), resume=True).wait(60)
    assert not out.exists() and not os.path.exists(partial)
    make(srv).download("/r.bin", str(out), resume=True).wait(60)
    assert out.read_bytes() == data


def test_a_store_refusing_checksum_mode_downloads_as_before(srv: S3Server,
                                                            tmp_path: Path) -> None:
    from knoxpy import _download
    learned = getattr(_download, "_NO_CHECKSUM_MODE", set())
    learned.clear()
    srv.put("bkt", "plain.bin", b"plain")
    srv.inject("status", match=lambda r: "x-amz-checksum-mode" in r.headers, status=400,
               code="InvalidArgument", message="Unsupported header x-amz-checksum-mode")
    out = tmp_path / "plain.bin"
    try:
        make(srv).download("/plain.bin", str(out)).wait(30)
        assert out.read_bytes() == b"plain"
        first, second = srv.requests
        assert first.headers["x-amz-checksum-mode"] == "ENABLED"
        assert "x-amz-checksum-mode" not in second.headers
    finally:
        learned.clear()
