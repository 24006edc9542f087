"""Streamed uploads carry a CRC32 trailer S3 checks; stores that refuse it still work.

Issue 5, items 3 and 4. ``putFile``/``putStream`` bodies cannot be hashed before they are
sent, so knoxpy frames them ``aws-chunked`` with an ``x-amz-checksum-crc32`` trailer
(knoxpy._chunked). The fault server decodes the framing and checks the CRC32, as S3 does;
with ``reject_checksum_trailer`` it refuses the framing as MinIO, R2 and Ceph did when
boto3 turned such trailers on, and knoxpy must fall back, say so once, and store the
bytes (never the framing).
"""
from __future__ import annotations

import io
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import fault_client
from hypothesis import given
from hypothesis import strategies as st
from servers.s3shaped import S3Server

import knoxpy
from knoxpy import _chunked
from knoxpy.errors import ValidationError

pytestmark = pytest.mark.usefixtures("forget_learned")


def make(srv: S3Server, **extra: Any) -> Any:
    return fault_client(srv, **{"checksum": "crc32", **extra})


def puts(srv: S3Server, key: str) -> List[Any]:
    return [r for r in srv.requests if r.method == "PUT" and r.key == key]


def stored(srv: S3Server, key: str) -> bytes:
    data = srv.buckets["bkt"].objects[key].data
    assert data is not None
    return data


@given(st.integers(min_value=0, max_value=3 * 65536 + 7), st.integers(min_value=1, max_value=5000))
def test_the_framing_is_as_long_as_announced_and_its_crc_is_the_bodys(size: int, piece: int) -> None:
    data = os.urandom(size)
    framed = b"".join(_chunked.frame_crc32(
        (data[i:i + piece] for i in range(0, size, piece)), size, chunk_size=65536))
    assert len(framed) == _chunked.encoded_length(size, chunk_size=65536)
    crc = zlib.crc32(data).to_bytes(4, "big")
    assert framed.endswith(b"x-amz-checksum-crc32:" + __import__("base64").b64encode(crc)
                           + b"\r\n\r\n")


@pytest.mark.parametrize("given_size", [9, 11])
def test_a_source_of_another_length_than_promised_is_refused(given_size: int) -> None:
    with pytest.raises(ValidationError, match="bytes"):
        b"".join(_chunked.frame_crc32([b"0123456789"], given_size, chunk_size=4))


def test_put_file_is_framed_with_a_crc32_the_server_checks(tmp_path: Path) -> None:
    data = os.urandom(700_000)  # three frames, the last one short
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with S3Server() as srv:
        progress: List[Dict[str, int]] = []
        res = make(srv).putFile(str(path), "/f.bin").on("progress", progress.append).wait(20)
        assert res.statusCode == 200
        (req,) = puts(srv, "f.bin")
        assert req.headers["content-encoding"] == "aws-chunked"
        assert req.headers["x-amz-decoded-content-length"] == str(len(data))
        assert req.headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        assert req.trailers["x-amz-checksum-crc32"]
        assert stored(srv, "f.bin") == data
        assert progress[-1] == {"written": len(data), "total": len(data), "percent": 100}


def test_a_framed_upload_cut_mid_body_is_sent_again_whole(tmp_path: Path) -> None:
    data = os.urandom(600_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with S3Server() as srv:
        srv.inject("reset_request_body", match="PUT /bkt/f.bin", after=300_000)
        assert make(srv).putFile(str(path), "/f.bin").wait(20).statusCode == 200
        assert len(puts(srv, "f.bin")) == 2 and stored(srv, "f.bin") == data


def test_a_store_that_refuses_the_trailer_gets_the_plain_body_and_is_remembered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="knoxpy")
    data = os.urandom(300_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with S3Server(reject_checksum_trailer=True) as srv:
        c = make(srv)
        assert c.putFile(str(path), "/a.bin").wait(20).statusCode == 200
        first = puts(srv, "a.bin")
        assert len(first) == 2 and "aws-chunked" not in first[1].headers.get(
            "content-encoding", "")
        assert stored(srv, "a.bin") == data  # the bytes, not the framing
        assert c.putStream(io.BytesIO(data), "/b.bin", {"Content-Length": len(data)}
                           ).wait(20).statusCode == 200
        assert len(puts(srv, "b.bin")) == 1 and stored(srv, "b.bin") == data
    assert caplog.text.count("refused a CRC32 trailer") == 1


def test_a_stream_that_cannot_be_replayed_is_framed_only_for_a_store_known_to_take_it(
    tmp_path: Path,
) -> None:
    data = os.urandom(200_000)
    with S3Server() as srv:
        c = make(srv)
        gen = (data[i:i + 50_000] for i in range(0, len(data), 50_000))
        assert c.putStream(gen, "/s1.bin", {"Content-Length": len(data)}).wait(20).statusCode == 200
        assert "content-encoding" not in puts(srv, "s1.bin")[0].headers
        path = tmp_path / "f.bin"
        path.write_bytes(data)
        c.putFile(str(path), "/f.bin").wait(20)  # the store takes the trailer: remembered
        gen = (data[i:i + 50_000] for i in range(0, len(data), 50_000))
        assert c.putStream(gen, "/s2.bin", {"Content-Length": len(data)}).wait(20).statusCode == 200
        assert puts(srv, "s2.bin")[0].headers["content-encoding"] == "aws-chunked"
        assert stored(srv, "s1.bin") == stored(srv, "s2.bin") == data


def test_plain_http_goes_unframed_unless_asked_and_a_bad_option_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 1000)
    with S3Server() as srv:
        assert make(srv, checksum="auto").putFile(str(path), "/auto").wait(10).statusCode == 200
        assert make(srv, checksum=False).putFile(str(path), "/off").wait(10).statusCode == 200
        assert "content-encoding" not in puts(srv, "auto")[0].headers
        assert "content-encoding" not in puts(srv, "off")[0].headers
    with pytest.raises(ValidationError, match="checksum must be"):
        knoxpy.createClient(key="k", secret="s", bucket="bkt", checksum="md4")


def test_signature_v2_and_empty_bodies_are_not_framed(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"v2 body")
    (tmp_path / "empty").write_bytes(b"")
    with S3Server() as srv:
        assert make(srv, signatureVersion=2).putFile(str(path), "/v2").wait(10).statusCode == 200
        assert make(srv).putFile(str(tmp_path / "empty"), "/e").wait(10).statusCode == 200
        assert "content-encoding" not in puts(srv, "v2")[0].headers
        assert "content-encoding" not in puts(srv, "e")[0].headers
