"""knoxpy._checksums: the CRCs S3 computes, their combination over GF(2), stored checksums.

No sockets. The check values are the published ones (the CRC catalogue's ``check``: the CRC
of b"123456789"); the combination is tested against the CRC of the concatenation.
"""
from __future__ import annotations

import random
import subprocess
import sys
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import knoxpy
from knoxpy import _checksums, _chunked
from knoxpy._sources import Options
from knoxpy.errors import ValidationError

CHECK = b"123456789"
CHECK_VALUES = {"crc32": 0xCBF43926, "crc32c": 0xE3069283, "crc64nvme": 0xAE8B14860A799888}


@pytest.mark.parametrize("name", sorted(CHECK_VALUES))
def test_the_published_check_values(name: str) -> None:
    assert _checksums.reference_crc(name, CHECK) == CHECK_VALUES[name]
    running = _checksums.Running(name)  # the fast one: zlib, or awscrt
    running.update(CHECK[:4])
    running.update(memoryview(CHECK)[4:])
    assert running.value() == CHECK_VALUES[name]


def test_crc64nvme_and_crc32c_as_s3_writes_them() -> None:
    assert _checksums.value_of("crc64nvme", CHECK) == "rosUhgp5mIg="  # 0xAE8B14860A799888
    assert _checksums.value_of("crc32c", CHECK) == "4waSgw=="  # 0xE3069283
    assert _checksums.decode("crc64nvme", "rosUhgp5mIg=") == 0xAE8B14860A799888


@pytest.mark.parametrize("name", sorted(CHECK_VALUES))
def test_fast_and_reference_agree_on_random_bytes(name: str) -> None:
    data = random.Random(7).randbytes(5000)
    fast = _checksums.Running(name)
    fast.update(data)
    assert fast.value() == _checksums.reference_crc(name, data)


@pytest.mark.parametrize("name", sorted(CHECK_VALUES))
@settings(max_examples=60, deadline=None)
@given(a=st.binary(max_size=300), b=st.binary(max_size=300))
def test_combine_is_the_crc_of_the_concatenation(name: str, a: bytes, b: bytes) -> None:
    crc = _checksums.reference_crc
    assert _checksums.combine(name, crc(name, a), crc(name, b), len(b)) == crc(name, a + b)


@pytest.mark.parametrize("name", sorted(CHECK_VALUES))
def test_combine_all_of_parts_in_order_as_a_multipart_upload_does(name: str) -> None:
    data = random.Random(11).randbytes(3 * 1024 * 1024 + 17)
    part = 1024 * 1024
    pieces = []
    for i in range(0, len(data), part):
        running = _checksums.Running(name)
        running.update(data[i:i + part])
        pieces.append((int(running.value()), len(data[i:i + part])))
    whole = _checksums.Running(name)
    whole.update(data)
    assert _checksums.combine_all(name, pieces) == whole.value()
    assert _checksums.combine_all(name, reversed(pieces)) != whole.value()  # order matters


def test_combine_over_lengths_past_two_to_the_32() -> None:
    # x^(8 * 2^33) needs table entries beyond zlib's 32: the identity still holds
    # (crc(A + zeros) from crc(zeros) computed by combining halves).
    zeros = bytes(1024)
    crc = zlib.crc32(zeros)
    doubled = _checksums.combine("crc32", crc, crc, len(zeros))
    assert doubled == zlib.crc32(zeros * 2)
    big = _checksums.combine("crc32", 0x12345678, 0, 1 << 33)
    assert 0 <= big < 1 << 32


def test_decode_refuses_what_is_not_a_crc() -> None:
    with pytest.raises(ValueError, match="not a CRC32"):
        _checksums.decode("crc32", "rosUhgp5mIg=")
    with pytest.raises(ValueError, match="not base64"):
        _checksums.decode("crc32", "!!!!")


def test_stored_checksum_kinds() -> None:
    single = '"5d41402abc4b2a76b9719d911017c592"'
    multi = '"0b6f0d5c7c9f0e1e9b8f6c3a2d1e0f9a-3"'
    stored = _checksums.stored_checksum
    assert stored({}, single) is None
    assert stored({"x-amz-checksum-crc32": "NhCmhg=="}, single).kind == "FULL_OBJECT"
    assert stored({"x-amz-checksum-crc64nvme": "rosUhgp5mIg="}, multi).kind == "FULL_OBJECT"
    assert stored({"x-amz-checksum-crc32": "NhCmhg==", "x-amz-checksum-type": "FULL_OBJECT"},
                  multi).kind == "FULL_OBJECT"
    assert stored({"x-amz-checksum-crc32": "NhCmhg==-3"}, multi).kind == "COMPOSITE"
    assert stored({"x-amz-checksum-sha1": "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
                   "x-amz-checksum-type": "COMPOSITE"}, multi).kind == "COMPOSITE"
    # moto's HEAD of a composite upload: no type, no -N; not checked rather than failed
    unknown = stored({"x-amz-checksum-crc32": "NhCmhg=="}, multi)
    assert unknown.kind == "unknown" and not unknown.verifiable


def test_a_crc64nvme_trailer_frames_a_streamed_body() -> None:
    framed = b"".join(_chunked.frame([b"1234", b"56789"], 9, "crc64nvme", chunk_size=4))
    assert framed.endswith(b"0\r\nx-amz-checksum-crc64nvme:rosUhgp5mIg=\r\n\r\n")
    assert len(framed) == _chunked.encoded_length(9, chunk_size=4, algorithm="crc64nvme")


def test_without_awscrt_crc64nvme_and_crc32c_are_refused_naming_the_extra(
        monkeypatch: Any) -> None:
    monkeypatch.setitem(_checksums._FAST, "crc64nvme", None)
    monkeypatch.setitem(_checksums._FAST, "crc32c", None)
    client = knoxpy.createClient(key="k", secret="s", bucket="bkt")
    for name in ("crc64nvme", "crc32c"):
        with pytest.raises(ValidationError, match=r"pip install 'knoxpy\[crc\]'"):
            Options(client, {"checksum": name})
        with pytest.raises(ValidationError, match=r"knoxpy\[crc\]"):
            knoxpy.createClient(key="k", secret="s", bucket="bkt", checksum=name)
        with pytest.raises(ValidationError, match=r"knoxpy\[crc\]"):
            client.putStream(iter([b"x"]), "/k", {"Content-Length": 1},
                             checksum=name).wait(5)
    Options(client, {"checksum": "crc32"})  # zlib's: always there
    Options(client, {"checksum": "sha1"})


def test_an_unknown_checksum_is_refused() -> None:
    client = knoxpy.createClient(key="k", secret="s", bucket="bkt")
    with pytest.raises(ValidationError, match="checksum must be one of"):
        Options(client, {"checksum": "crc16"})
    with pytest.raises(ValidationError, match="a trailer S3 checks"):
        client.putStream(iter([b"x"]), "/k", {"Content-Length": 1}, checksum="md5").wait(5)


@settings(max_examples=200)
@given(pieces=st.lists(st.binary(max_size=70_000), max_size=5), start=st.integers(0, 2**32 - 1))
def test_zlib_ngs_crc32_is_zlibs(pieces: Any, start: int) -> None:
    """knoxpy takes zlib-ng's CRC32 when it is installed (knoxpy[crc]): the same function as
    zlib's, for any bytes, memoryviews and running values (the SIMD path starts at 64 bytes)."""
    zlib_ng = pytest.importorskip("zlib_ng.zlib_ng")
    assert _checksums._fast("crc32") is zlib_ng.crc32
    fast, slow = start, start
    for piece in pieces:
        fast = _checksums._fast("crc32")(memoryview(piece), fast)  # type: ignore[misc]
        slow = zlib.crc32(piece, slow)
    assert fast == slow


def test_without_zlib_ng_crc32_is_zlibs() -> None:
    """Without zlib-ng (a plain ``pip install knoxpy``) CRC32 is zlib's, and nothing but the
    first CRC32 looks for zlib-ng."""
    code = ("import sys, zlib; sys.modules['zlib_ng'] = None\n"
            "import knoxpy\n"
            "from knoxpy import _checksums\n"
            "assert 'crc32' not in _checksums._FAST\n"
            "assert _checksums.value_of('crc32', b'hello') == 'NhCmhg=='\n"
            "assert _checksums._fast('crc32') is zlib.crc32\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
