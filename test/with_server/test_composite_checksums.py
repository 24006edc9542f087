"""COMPOSITE checksums checked part by part on download (issue 15, item 2).

An object uploaded multipart with a COMPOSITE checksum answers ``x-amz-checksum-<alg>:
<b64>-N``: a checksum of the parts' binary checksums. S3's documentation: a GET or HEAD with
``partNumber=k`` and ``x-amz-checksum-mode: ENABLED`` gives part k's length and checksum.
moto (5.2) does not: its GET ``?partNumber`` of a multipart object is a TODO answered with the
whole object, and its HEAD gives no part's checksum (and no ``-N``, no type), so against moto
the download only must not fail falsely (test_full_object_checksums has that test). What is
checked here is against the project's fault server (test/servers/s3shaped.py), extended to
answer ``?partNumber=k`` as S3's documentation shows.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path
from typing import Any, List, Sequence

import pytest
from conftest import fault_client
from servers.s3shaped import Bucket, Obj, S3Server

from knoxpy import _checksums
from knoxpy.errors import IntegrityError

MIB = 1024 * 1024


def blob(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def composite_object(srv: S3Server, name: str, data: bytes, algorithm: str,
                     sizes: Sequence[int]) -> str:
    """An object as a COMPOSITE multipart upload of parts of ``sizes`` leaves it in S3."""
    assert sum(sizes) == len(data)
    parts, pos = [], 0
    for n in sizes:
        parts.append((n, _checksums.value_of(algorithm, data[pos:pos + n])))
        pos += n
    value = _checksums.composite_of(algorithm, [v for _, v in parts])
    srv.buckets.setdefault("bkt", Bucket()).put(
        name, Obj(data, len(data), f'"{hashlib.md5(data).hexdigest()}-{len(sizes)}"', {},
                  (algorithm, value), checksum_type="COMPOSITE", parts=parts))
    return value


def ranges(srv: S3Server) -> List[str]:
    return [r.headers["range"] for r in srv.requests if r.method == "GET" and "range" in r.headers]


class Writable:
    def __init__(self) -> None:
        self.chunks: List[bytes] = []

    def write(self, chunk: Any) -> None:
        self.chunks.append(bytes(chunk))


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "sha1", "sha256"])
def test_each_part_and_the_composite_are_checked(srv: S3Server, tmp_path: Path,
                                                 algorithm: str) -> None:
    # parts of unequal sizes, and a download part size that is none of them: the ranges
    # after the first follow the part boundaries
    sizes = [5 * MIB + 7, 5 * MIB, MIB + 3]
    data = blob(sum(sizes), seed=1)
    composite_object(srv, "c.bin", data, algorithm, sizes)
    out = tmp_path / "c.bin"
    fault_client(srv, partSize=6 * MIB).download("/c.bin", str(out)).wait(60)
    assert out.read_bytes() == data
    heads = [r for r in srv.requests if r.method == "HEAD" and "partNumber" in r.query]
    assert sorted(r.query["partNumber"] for r in heads) == ["1", "2", "3"]
    assert all(r.headers["x-amz-checksum-mode"] == "ENABLED" and "if-match" in r.headers
               for r in heads)
    b1, b2 = sizes[0], sizes[0] + sizes[1]
    # the first range spans part 1 and the start of part 2; then the rest of part 2, part 3
    assert sorted(ranges(srv)) == sorted([f"bytes=0-{6 * MIB - 1}", f"bytes={6 * MIB}-{b2 - 1}",
                                          f"bytes={b2}-{len(data) - 1}"])
    assert b1 < 6 * MIB < b2
    sink = Writable()  # to a writable, the bytes are checked in order as they are written
    fault_client(srv, partSize=6 * MIB).download("/c.bin", sink).wait(60)
    assert b"".join(sink.chunks) == data


def test_a_wrong_part_checksum_fails_and_leaves_nothing(srv: S3Server, tmp_path: Path) -> None:
    sizes = [5 * MIB, 5 * MIB, 2 * MIB]
    data = blob(sum(sizes), seed=2)
    composite_object(srv, "w.bin", data, "crc32", sizes)
    srv.inject("wrong_checksum", match="partNumber=2")  # part 2's HEAD says another value
    out = tmp_path / "w.bin"
    with pytest.raises(IntegrityError, match=r"part 2 of 'w.bin' \(bytes 5242880-10485759\) "
                                             "does not match its CRC32 checksum"):
        fault_client(srv, partSize=5 * MIB).download("/w.bin", str(out)).wait(60)
    assert os.listdir(tmp_path) == []


def test_corrupt_bytes_of_a_part_are_caught(srv: S3Server, tmp_path: Path) -> None:
    sizes = [5 * MIB, 5 * MIB, 2 * MIB]
    data = blob(sum(sizes), seed=3)
    composite_object(srv, "x.bin", data, "sha1", sizes)
    part3 = lambda r: r.method == "GET" and r.headers.get("range", "").startswith(  # noqa: E731
        f"bytes={10 * MIB}-")
    srv.inject("corrupt_body", match=part3, at=100)
    out = tmp_path / "x.bin"
    with pytest.raises(IntegrityError, match="part 3 of 'x.bin'.*SHA1"):
        fault_client(srv, partSize=5 * MIB).download("/x.bin", str(out)).wait(60)
    assert os.listdir(tmp_path) == []
    srv.inject("corrupt_body", match=part3, at=5)
    with pytest.raises(IntegrityError, match="part 3"):
        fault_client(srv, partSize=5 * MIB).download("/x.bin", Writable()).wait(60)


def test_part_checksums_that_do_not_make_the_stored_composite_fail(srv: S3Server,
                                                                   tmp_path: Path) -> None:
    sizes = [5 * MIB, MIB]
    data = blob(sum(sizes), seed=4)
    value = composite_object(srv, "m.bin", data, "crc32", sizes)
    # the parts are right, the whole object's HEAD says another composite
    srv.inject("wrong_checksum", match=lambda r: r.method == "HEAD" and "partNumber" not in r.query)
    out = tmp_path / "m.bin"
    with pytest.raises(IntegrityError, match=f"parts make {re.escape(value)}"):
        fault_client(srv, partSize=5 * MIB).download("/m.bin", str(out)).wait(60)
    assert os.listdir(tmp_path) == []


def test_a_store_that_gives_no_part_checksum_is_not_checked_nor_failed(
        srv: S3Server, tmp_path: Path) -> None:
    sizes = [5 * MIB, MIB]
    data = blob(sum(sizes), seed=5)
    composite_object(srv, "n.bin", data, "crc32", sizes)
    srv.inject("status", count=2, match="partNumber=", status=400, code="InvalidArgument")
    out = tmp_path / "n.bin"
    fault_client(srv, partSize=5 * MIB).download("/n.bin", str(out)).wait(60)
    assert out.read_bytes() == data
