"""Conditional writes (issue 15 item 1), against moto: If-None-Match: * (create only) and
If-Match: ETag (compare and swap) on single PUTs, multipart uploads and the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, List

import pytest
from conftest import KEY, SECRET

import knoxpy

BIG = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts of 5 MiB


def test_low_level_calls_keep_knox_rule_a_412_is_a_response(client: Any) -> None:
    client.putBuffer(b"first", "/cond/low").wait(10).resume()
    res = client.putBuffer(b"second", "/cond/low", {"If-None-Match": "*"}).wait(10)
    assert res.statusCode == 412
    res.resume()
    assert client.get("/cond/low").end().wait(10).read() == b"first"


@pytest.mark.parametrize("data", [b"small", BIG], ids=["one PUT", "multipart"])
def test_upload_create_only_fails_with_precondition_failed(client: Any, data: bytes) -> None:
    key = f"/cond/create-{len(data)}-{uuid.uuid4().hex}"
    client.upload(b"original", key).wait(30)
    retries: List[Any] = []
    op = client.upload(data, key, {"If-None-Match": "*"}, partSize=5 << 20)
    op.on("retry", retries.append)
    with pytest.raises(knoxpy.PreconditionFailed) as caught:
        op.wait(60)
    assert caught.value.statusCode == 412 and isinstance(caught.value, knoxpy.S3Error)
    assert retries == []  # never retried: trying again cannot help
    assert client.get(key).end().wait(10).read() == b"original"
    uploads = client.request("GET", "/?uploads").end().wait(10).read()
    assert b"<UploadId>" not in uploads  # a refused multipart upload leaves no parts


@pytest.mark.parametrize("data", [b"small", BIG], ids=["one PUT", "multipart"])
def test_upload_create_only_writes_a_new_key(client: Any, data: bytes) -> None:
    key = f"/cond/new-{len(data)}-{uuid.uuid4().hex}"
    client.upload(data, key, {"If-None-Match": "*"}, partSize=5 << 20).wait(60)
    assert client.get(key).end().wait(10).read() == data


def test_compare_and_swap_with_if_match(client: Any) -> None:
    first = client.upload(b"v1", "/cond/cas").wait(30)
    client.upload(b"v2", "/cond/cas", {"If-Match": first["ETag"]}).wait(30)
    with pytest.raises(knoxpy.PreconditionFailed):  # v1's ETag is stale now
        client.upload(b"v3", "/cond/cas", {"If-Match": first["ETag"]}).wait(30)
    assert client.get("/cond/cas").end().wait(10).read() == b"v2"


def test_the_cli_put_no_overwrite(client: Any, moto_port: int, tmp_path: Path) -> None:
    if client.style != "path":
        pytest.skip("the CLI is tested once")
    src = tmp_path / "report.txt"
    src.write_bytes(b"local")
    client.putBuffer(b"remote", "/cond/report.txt").wait(10).resume()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    argv = [sys.executable, "-m", "knoxpy", "--endpoint-url", f"http://127.0.0.1:{moto_port}",
            "put", "--no-overwrite", str(src), f"s3://{client.bucket}/cond/report.txt"]
    done = subprocess.run(argv, env=env, text=True, capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "exists: not overwritten" in done.stderr and "Traceback" not in done.stderr
    assert client.get("/cond/report.txt").end().wait(10).read() == b"remote"
