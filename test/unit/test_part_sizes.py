"""Part sizes and resume journals (knoxpy._parts): pure, no sockets (issue 3, items 1 and 8)."""
from __future__ import annotations

import base64
import io
import json
import os
import zlib
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import knoxpy
from knoxpy import _parts
from knoxpy._parts import (
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    MIN_PART_SIZE,
    Journal,
    Schedule,
    byte_ranges,
    check_part_size,
    check_size_hint,
    part_size_for,
    schedule_for_stream,
)
from knoxpy._sources import PartBuffer, Reader

TB = 10**12
part_sizes = st.integers(MIN_PART_SIZE, MAX_PART_SIZE)


def brute_capacity(s: Schedule) -> int:
    return sum(s.size_of(n) for n in range(1, MAX_PARTS + 1))


@given(size=st.integers(0, MAX_OBJECT_SIZE), part=part_sizes)
def test_any_known_size_up_to_50_tb_fits_in_10000_parts(size: int, part: int) -> None:
    chosen = part_size_for(size, part)
    assert part <= chosen <= MAX_PART_SIZE
    assert -(-size // chosen) <= MAX_PARTS


def test_known_sizes_keep_the_asked_part_size_until_10000_parts_need_more() -> None:
    assert part_size_for(50 * 10**6, 5 * MIB) == 5 * MIB
    assert part_size_for(10_000 * 5 * MIB, 5 * MIB) == 5 * MIB
    assert part_size_for(10_000 * 5 * MIB + 1, 5 * MIB) == 6 * MIB  # whole MiB, just enough
    assert part_size_for(MAX_PARTS * MAX_PART_SIZE) == MAX_PART_SIZE


def test_a_known_size_beyond_what_s3_accepts_is_refused() -> None:
    with pytest.raises(knoxpy.ValidationError, match="larger than S3 accepts"):
        part_size_for(MAX_PARTS * MAX_PART_SIZE + 1)


@settings(max_examples=60, deadline=None)
@given(part=part_sizes)
def test_a_stream_of_unknown_length_reaches_50_tb_within_10000_parts(part: int) -> None:
    s = schedule_for_stream(part)
    assert s.capacity() >= MAX_OBJECT_SIZE
    sizes = [s.size_of(n) for n in range(1, MAX_PARTS + 1, 7)]
    assert sizes == sorted(sizes)  # it only grows
    assert sizes[0] == part and max(sizes) <= MAX_PART_SIZE


def test_a_small_stream_keeps_small_parts() -> None:
    s = schedule_for_stream(5 * MIB)
    # the first ~870 MiB of a stream go in 5 MiB parts: memory stays 5 MiB x concurrency
    assert s.hold * 5 * MIB > 800 * MIB
    assert s.size_of(s.hold) == 5 * MIB and s.size_of(s.hold + 1) == 10 * MIB
    assert s.size_of(s.hold + 64) == 10 * MIB and s.size_of(s.hold + 65) == 20 * MIB


def test_doubling_only_every_1000_parts_would_not_reach_50_tb() -> None:
    # why the interval is 64: 1000 parts of each of 5 MiB, 10 MiB, ... 2.5 GiB hold ~5.4 TB
    assert sum(1000 * (5 * MIB << k) for k in range(10)) < 6 * TB


@pytest.mark.parametrize("schedule", [Schedule(5 * MIB, 0), Schedule(5 * MIB, 174),
                                      Schedule(7 * MIB, 3000), Schedule(MAX_PART_SIZE, 0),
                                      Schedule(300 * MIB, 10_000)])
def test_capacity_is_the_sum_of_the_part_sizes(schedule: Schedule) -> None:
    assert schedule.capacity() == brute_capacity(schedule)


def test_max_hold_is_the_longest_hold_that_still_reaches_50_tb() -> None:
    hold = _parts.max_hold(5 * MIB)
    assert Schedule(5 * MIB, hold).capacity() >= MAX_OBJECT_SIZE
    assert Schedule(5 * MIB, hold + 1).capacity() < MAX_OBJECT_SIZE


@settings(max_examples=60, deadline=None)
@given(hint=st.integers(0, MAX_OBJECT_SIZE), part=part_sizes)
def test_a_size_hint_fits_in_parts_of_one_size_and_leaves_room_to_grow(hint: int,
                                                                       part: int) -> None:
    s = schedule_for_stream(part, hint)
    assert s.base >= part
    assert s.base * min(s.hold, MAX_PARTS) >= hint  # the hinted size: parts of one size
    assert s.capacity() >= min(MAX_OBJECT_SIZE, hint + 20 * TB)


def test_a_1_tb_hint_gives_parts_for_1_tb_not_5_mib() -> None:
    s = schedule_for_stream(5 * MIB, TB)
    assert 190 * MIB <= s.base <= 200 * MIB and s.base * s.hold >= TB


@pytest.mark.parametrize("bad, message", [
    (5 * MIB - 1, "at least 5 MiB"), (MAX_PART_SIZE + 1, "at most 5 GiB"),
    ("8MB", "number of bytes"), (True, "number of bytes"), (8.0 * MIB, "number of bytes"),
])
def test_part_size_is_validated_with_a_clear_message(bad: Any, message: str) -> None:
    with pytest.raises(knoxpy.ValidationError, match=message):
        check_part_size(bad)


def test_size_hint_is_validated() -> None:
    assert check_size_hint(None) is None and check_size_hint(0) == 0
    for bad in (-1, "1GB", 1.5):
        with pytest.raises(knoxpy.ValidationError, match="sizeHint"):
            check_size_hint(bad)


def test_an_upload_with_a_bad_part_size_fails_on_a_later_tick() -> None:
    client = knoxpy.createClient(key="k", secret="s", bucket="bucket", partSize=1024)
    calls: list[Any] = []
    op = client.upload(b"x", "/k", lambda err, res: calls.append(err))
    assert calls == []  # CONTRACT 2.1: never inline
    with pytest.raises(knoxpy.ValidationError, match="at least 5 MiB"):
        op.wait(5)
    assert isinstance(calls[0], knoxpy.ValidationError)
    with pytest.raises(knoxpy.ValidationError, match="unknown option 'partsize'"):
        client.download("/k", "x", partsize=5 * MIB).wait(5)


@given(size=st.integers(0, 10**7), part=st.integers(10**4, 10**7), start=st.integers(0, 10**7))
def test_byte_ranges_cover_the_rest_of_an_object_once(size: int, part: int, start: int) -> None:
    ranges = byte_ranges(size, part, start)
    covered = sum(b - a + 1 for a, b in ranges)
    assert covered == max(0, size - start)
    assert all(b - a + 1 <= part for a, b in ranges)
    assert all(x[1] + 1 == y[0] for x, y in zip(ranges, ranges[1:]))


def test_md5_etags_are_told_from_multipart_ones() -> None:
    assert _parts.is_md5_etag('"9e107d9d372bb6826bd81d3542a419d6"')
    assert not _parts.is_md5_etag('"9e107d9d372bb6826bd81d3542a419d6-12"')
    assert not _parts.is_md5_etag(None) and not _parts.is_md5_etag("")


def test_content_md5_is_base64_of_the_digest() -> None:
    assert _parts.content_md5(b"") == ("1B2M2Y8AsgTpgAmY7PhCfg==",
                                      "d41d8cd98f00b204e9800998ecf8427e")


def test_content_crc32_is_base64_of_the_big_endian_crc() -> None:
    assert _parts.content_crc32(b"") == "AAAAAA=="
    data = bytes(range(256)) * 4096
    assert _parts.content_crc32(memoryview(data)) == base64.b64encode(
        zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.mark.parametrize("status, code, message, refused", [
    (400, "InvalidArgument", "Unsupported header x-amz-checksum-crc32", True),
    (400, "InvalidArgument", None, True),  # stores that do not say which header
    (501, "NotImplemented", "x-amz-checksum-algorithm is not implemented", True),
    (501, "NotImplemented", "Transfer-Encoding", False),
    (400, "BadDigest", "The CRC32 you specified did not match", False),  # a corrupt body
    (400, "InvalidRequest", "Checksum Type mismatch", True),
    (403, "AccessDenied", "Access Denied", False),
])
def test_a_refusal_of_checksum_headers_is_told_from_other_errors(
        status: int, code: str, message: Any, refused: bool) -> None:
    assert _parts.checksum_refused(status, code, message) is refused


# -- reading parts (knoxpy._sources.Reader): no copies where none are needed ---------------
def _read_all(reader: Reader, n: int) -> List[bytes]:
    buf = PartBuffer()
    out: List[bytes] = []
    while True:
        part = reader.read_part(n, buf)
        if not part:
            return out
        out.append(bytes(part))


def test_parts_of_bytes_are_slices_of_them_not_copies() -> None:
    data = bytes(range(256)) * 100
    reader = Reader(data=memoryview(data), size=len(data))
    part = reader.read_part(1000, PartBuffer())
    assert part.obj is data and bytes(part) == data[:1000]
    assert _read_all(reader, 10_000) == [data[1000:11_000], data[11_000:21_000],
                                         data[21_000:]]
    assert reader.at_end()


@pytest.mark.parametrize("kind", ["file", "iterator", "text"])
def test_parts_are_exact_whatever_the_source_gives_per_read(kind: str, tmp_path: Any) -> None:
    data = bytes(range(256)) * 1000
    if kind == "file":
        path = tmp_path / "f"
        path.write_bytes(data)
        f = open(path, "rb")  # noqa: SIM115 - closed below
        reader = Reader(file=f, size=len(data))
    elif kind == "iterator":
        reader = Reader(chunks=(data[i:i + 777] for i in range(0, len(data), 777)))
    else:  # read() gives str: sent as UTF-8
        data = ("é" * 50_000).encode()
        reader = Reader(file=io.StringIO("é" * 50_000))
    buf = PartBuffer()
    first = reader.read_part(30_000, buf)
    assert first.obj is not data and bytes(first) == data[:30_000]
    assert not reader.at_end()  # peeks one chunk ahead, which the next part still gets
    rest = _read_all(reader, 30_000)
    assert b"".join([data[:30_000]] + rest) == data
    assert all(len(p) == 30_000 for p in rest[:-1])
    assert reader.at_end()
    if kind == "file":
        f.close()


def test_a_part_buffer_is_reused_and_grows_for_larger_parts() -> None:
    buf = PartBuffer()
    a = buf.view(100)
    assert buf.view(50).obj is a.obj  # the same memory: no allocation per part
    assert len(buf.view(200)) == 200


def test_a_large_part_buffer_is_writable_memory_that_keeps_what_was_read(tmp_path: Any) -> None:
    """From 1 MiB a buffer is mapped memory on Linux (pages in one call); parts read into it
    from a file are exact, and a part's view stays valid while the buffer grows."""
    data = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    with open(path, "rb") as f:
        reader = Reader(file=f, size=len(data))
        buf = PartBuffer()
        first = reader.read_part(1024 * 1024, buf)
        assert buf.view(10).obj is first.obj and not first.readonly
        second = reader.read_part(2 * 1024 * 1024 + 5, buf)  # grows: a new buffer
        assert second.obj is not first.obj
        assert bytes(first) == data[:1024 * 1024] and bytes(second) == data[1024 * 1024:]
        assert reader.at_end()


def test_a_journal_round_trips_and_ignores_a_torn_last_line(tmp_path: Any) -> None:
    j = Journal(str(tmp_path / "f.knoxpy-upload.jsonl"))
    assert j.load() is None
    j.start({"uploadId": "u1", "size": 10})
    j.add({"part": 1, "ETag": '"e1"'})
    j.add({"part": 2, "ETag": '"e2"'})
    with open(j.path, "a") as f:
        f.write('{"part": 3, "ET')  # the process died mid-line
    header, entries = j.load()  # type: ignore[misc]
    assert header == {"uploadId": "u1", "size": 10, "version": 1}
    assert [e["part"] for e in entries] == [1, 2]
    j.start({"uploadId": "u2"})  # a new journal replaces the old one
    assert j.load() == ({"uploadId": "u2", "version": 1}, [])
    j.remove()
    assert j.load() is None and not (tmp_path / "f.knoxpy-upload.jsonl").exists()


def test_a_journal_of_another_version_is_not_read(tmp_path: Any) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"version": 2}) + "\n")
    assert Journal(str(path)).load() is None
