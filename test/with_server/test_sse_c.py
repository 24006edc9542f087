"""SSE-C everywhere a body moves (issue 15 item 5), against the fault server, which checks
customer keys as S3 does (moto does not implement SSE-C): put, upload (every part), download
(every range), head, copy (source and destination keys); the key never shown."""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from conftest import fault_client

import knoxpy
from knoxpy import bulk

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


# -- copyAll: headers on every copy (issue 15 leftovers, item 2) --------------------------------
def test_copy_all_re_encrypts_every_key_with_its_headers(srv: Any, monkeypatch: Any,
                                                         caplog: Any) -> None:
    monkeypatch.setattr(bulk, "MULTIPART_COPY_THRESHOLD", 5 * 1024 * 1024)  # BIG goes by parts
    monkeypatch.setattr(bulk, "MULTIPART_COPY_PART_SIZE", 5 * 1024 * 1024)
    c = fault_client(srv, partSize=5 * 1024 * 1024)
    c.putBuffer(b"small", "/src/a", sse_c(KEY)).wait(10)
    c.upload(BIG, "/src/big", sse_c(KEY)).wait(60)
    headers = {**sse_c(KEY, copy_source=True), **sse_c(OTHER),
               "x-amz-storage-class": "STANDARD_IA"}
    # without the source's key, every copy fails, each one per key
    failed = c.copyAll("src/", {"prefix": "dst/"}, headers=sse_c(OTHER)).wait(60)
    assert failed["copied"] == 0 and len(failed["errors"]) == 2
    with caplog.at_level(logging.DEBUG, logger="knoxpy"):
        result = c.copyAll("src/", {"prefix": "dst/"}, headers=headers).wait(60)
    assert result == {"copied": 2, "errors": []}
    for name, data in (("/dst/a", b"small"), ("/dst/big", BIG)):
        assert c.get(name, sse_c(OTHER)).end().wait(10).read() == data  # the new key reads it
        old = c.get(name, sse_c(KEY)).end().wait(10)
        assert old.statusCode == 403  # the source's key does not
        old.resume()
    copies = [r for r in srv.requests if "/dst/" in r.path and r.method in ("PUT", "POST")]
    assert all(r.headers.get("x-amz-server-side-encryption-customer-key") for r in copies
               if r.method == "PUT")
    initiate = [r for r in copies if r.method == "POST" and "uploads" in r.query]
    assert initiate and initiate[0].headers["x-amz-storage-class"] == "STANDARD_IA"
    secret = [headers[k] for k in headers if k.endswith("-key")]
    assert not any(s in caplog.text for s in secret)


@pytest.mark.parametrize("headers, says", [
    ({"x-amz-copy-source": "/b/k"}, "set by copyAll itself"),
    ({"x-amz-metadata-directive": "MERGE"}, "COPY or REPLACE"),
    ({"x-amz-server-side-encryption-customer-key": base64.b64encode(KEY).decode()},
     "needs both"),
    ({**sse_c(b"short"), }, "256-bit key"),
    ({**sse_c(KEY), "x-amz-server-side-encryption-customer-key-MD5": "AAAA"}, "is not the MD5"),
    ("x-amz-storage-class", "must be a dict"),
])
def test_copy_all_headers_are_checked_and_keys_never_shown(srv: Any, headers: Any,
                                                           says: str) -> None:
    with pytest.raises(knoxpy.ValidationError, match=says) as info:
        fault_client(srv).copyAll("src/", {"prefix": "dst/"}, headers=headers).wait(10)
    if isinstance(headers, dict):
        assert not any(str(v) in str(info.value) for k, v in headers.items() if "key" in k)
    assert not srv.requests  # refused before anything was sent


def test_cli_cp_r_copies_with_the_keys_from_files(srv: Any, tmp_path: Path) -> None:
    c = fault_client(srv)
    for name in ("a", "b"):
        c.putBuffer(name.encode() * 10, f"/cli/{name}", sse_c(KEY)).wait(10)
    (tmp_path / "old.key").write_bytes(KEY)
    (tmp_path / "new.key").write_bytes(OTHER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEBUG"}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="s3cr3t",
               PYTHONPATH=str(Path(knoxpy.__file__).parents[1]))  # this checkout's knoxpy

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "knoxpy", "--endpoint-url", srv.url, *args],
                              env=env, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, cwd=tmp_path)

    done = cli("cp", "-r", "--sse-c-copy-source-key", "fileb://old.key", "--sse-c-key",
               "new.key", "--storage-class", "STANDARD_IA", "s3://bkt/cli/", "s3://bkt/out/")
    assert done.returncode == 0, done.stderr
    for name in ("a", "b"):
        assert c.get(f"/out/{name}", sse_c(OTHER)).end().wait(10).read() == name.encode() * 10
    copies = [r for r in srv.requests if r.method == "PUT" and "/out/" in r.path]
    assert len(copies) == 2 and all(r.headers["x-amz-storage-class"] == "STANDARD_IA"
                                    for r in copies)
    without = cli("cp", "-r", "s3://bkt/cli/", "s3://bkt/out2/")  # no source key: refused
    assert without.returncode == 1
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 31)
    bad = cli("cp", "--sse-c-key", str(short), "s3://bkt/cli/a", "s3://bkt/x")
    assert bad.returncode != 0 and "must hold a 256-bit key" in bad.stderr
    upload = cli("cp", "--sse-c-key", "new.key", "new.key", "s3://bkt/x")
    assert upload.returncode != 0 and "go with cp between s3:// addresses" in upload.stderr
    secrets = [base64.b64encode(k).decode() for k in (KEY, OTHER)]
    for out in (done, without, bad, upload):
        assert not any(s in out.stdout + out.stderr for s in secrets)
