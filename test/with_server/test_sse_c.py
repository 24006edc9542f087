"""SSE-C everywhere a body moves (issue 15 item 5), against the fault server, which checks
customer keys as S3 does (moto does not implement SSE-C): put, upload (every part), download
(every range), head, copy (source and destination keys); the key never shown."""
from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any, Dict

import pytest
from conftest import fault_client

import knoxpy

BIG = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts, two ranges of 5 MiB


def sse_c(key: bytes, copy_source: bool = False) -> Dict[str, str]:
    prefix = ("x-amz-copy-source-server-side-encryption-customer-" if copy_source
              else "x-amz-server-side-encryption-customer-")
    return {prefix + "algorithm": "AES256", prefix + "key": base64.b64encode(key).decode(),
            prefix + "key-MD5": base64.b64encode(hashlib.md5(key).digest()).decode()}


KEY, OTHER = b"k" * 32, b"o" * 32


def test_put_then_read_only_with_the_key(srv: Any) -> None:
    c = fault_client(srv)
    assert c.putBuffer(b"sealed", "/s/one", sse_c(KEY)).wait(10).statusCode == 200
    without = c.get("/s/one").end().wait(10)
    assert without.statusCode == 400
    without.resume()
    wrong = c.get("/s/one", sse_c(OTHER)).end().wait(10)
    assert wrong.statusCode == 403
    wrong.resume()
    res = c.get("/s/one", sse_c(KEY)).end().wait(10)
    assert res.read() == b"sealed"
    head = c.headFile("/s/one", sse_c(KEY)).wait(10)
    assert head.statusCode == 200 and head.headers["content-length"] == "6"


def test_an_upload_carries_the_key_on_every_part(srv: Any) -> None:
    c = fault_client(srv)
    c.upload(BIG, "/s/big", sse_c(KEY), partSize=5 << 20).wait(60)
    parts = [r for r in srv.requests if r.method == "PUT" and "partNumber" in r.query]
    assert len(parts) == 2
    assert all("x-amz-server-side-encryption-customer-key" in r.headers for r in parts)
    assert c.get("/s/big", sse_c(KEY)).end().wait(10).read() == BIG


def test_a_download_asks_every_range_with_the_key(srv: Any, tmp_path: Path) -> None:
    c = fault_client(srv)
    c.upload(BIG, "/s/dl", sse_c(KEY), partSize=5 << 20).wait(60)
    got = c.download("/s/dl", str(tmp_path / "dl"), sse_c(KEY), partSize=5 << 20).wait(60)
    assert (tmp_path / "dl").read_bytes() == BIG and got["size"] == len(BIG)
    ranges = [r for r in srv.requests if r.method == "GET" and "range" in r.headers]
    assert len(ranges) >= 2
    assert all("x-amz-server-side-encryption-customer-key" in r.headers for r in ranges)
    with pytest.raises(knoxpy.S3Error) as caught:
        c.download("/s/dl", str(tmp_path / "nokey")).wait(60)
    assert caught.value.statusCode == 400 and not (tmp_path / "nokey").exists()


def test_a_copy_takes_the_source_key_and_its_own(srv: Any) -> None:
    c = fault_client(srv)
    c.putBuffer(b"secret plans", "/s/src", sse_c(KEY)).wait(10)
    res = c.copyFile("/s/src", "/s/dst", {**sse_c(KEY, copy_source=True),
                                         **sse_c(OTHER)}).wait(10)
    assert res.statusCode == 200
    res.resume()
    assert c.get("/s/dst", sse_c(OTHER)).end().wait(10).read() == b"secret plans"
    refused = c.copyFile("/s/src", "/s/dst2").wait(10)  # no source key: S3 refuses
    assert refused.statusCode == 400
    refused.resume()


def test_the_key_is_never_logged_or_shown(srv: Any, caplog: pytest.LogCaptureFixture) -> None:
    texts: list[str] = []
    c = fault_client(srv, explain=texts.append)
    caplog.set_level(logging.DEBUG)
    c.putBuffer(b"x", "/s/quiet", sse_c(KEY)).wait(10)
    res = c.get("/s/quiet", sse_c(OTHER)).end().wait(10)
    res.resume()
    shown = base64.b64encode(KEY).decode(), base64.b64encode(OTHER).decode()
    everything = "".join(texts) + caplog.text + repr(res) + repr(c)
    assert texts and not any(k in everything for k in shown)
