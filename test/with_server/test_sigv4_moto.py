"""Signature V4 end to end against moto with signature checking switched on.

moto checks SigV4 once ``INITIAL_NO_AUTH_ACTION_COUNT`` unauthenticated actions are
used up; the first ones here create an IAM user with an access key. A wrong secret
must get 403 SignatureDoesNotMatch, the right one 200, for keys with every special
character. moto answers V2-signed requests and presigned URLs (boto3's too) with a
500 when checking is on, so those are checked against AWS's published examples,
botocore and knox itself instead (test/unit/test_auth_v2.py, test_auth_v4.py), and
presigned URLs are fetched from the unchecked server in test_presigned_urls.py.
"""
from __future__ import annotations

import io
import json
import time
from typing import Any, Dict, Iterator

import pytest
from conftest import start_moto

import knoxpy

KEYS = [
    "/plain.txt",
    "/ünï cødé/日本語.txt",
    "/+ ? # ' ( ) ! * ~.txt",
    "/a//b/",
    "/x:@$&=;,y",
    "/trailing/",
]


@pytest.fixture(scope="module")
def signed_moto() -> Iterator[Dict[str, Any]]:
    import boto3

    proc, port = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "4"})
    url = f"http://127.0.0.1:{port}"
    try:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="knox")
        iam.put_user_policy(UserName="knox", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }))
        key = iam.create_access_key(UserName="knox")["AccessKey"]
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id=key["AccessKeyId"],
                          aws_secret_access_key=key["SecretAccessKey"])
        s3.create_bucket(Bucket="signed")
        yield {"port": port, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["virtualHosted", "path"])
def signed_client(request: pytest.FixtureRequest, signed_moto: Dict[str, Any]) -> Any:
    return knoxpy.createClient(key=signed_moto["key"], secret=signed_moto["secret"],
                               bucket="signed", endpoint="localhost",
                               port=signed_moto["port"], style=request.param)


@pytest.mark.parametrize("key", KEYS)
def test_right_secret_is_accepted_for_every_special_key(signed_client: Any, key: str) -> None:
    body = f"body of {key}".encode()
    put = signed_client.putBuffer(body, key).wait(10)
    assert put.statusCode == 200, put.read()
    got = signed_client.get(key).end().wait(10)
    assert (got.statusCode, got.read()) == (200, body)
    head = signed_client.head(key).end().wait(10)
    assert head.statusCode == 200
    assert signed_client.del_(key).end().wait(10).statusCode == 204


@pytest.mark.parametrize("key", KEYS)
def test_wrong_secret_gets_signature_does_not_match(signed_moto: Dict[str, Any], key: str) -> None:
    bad = knoxpy.createClient(key=signed_moto["key"], secret="not-the-secret", bucket="signed",
                              endpoint="localhost", port=signed_moto["port"])
    res = bad.putBuffer(b"x", key).wait(10)
    assert res.statusCode == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in res.read()


def test_a_streamed_body_carries_a_crc32_trailer_moto_decodes(signed_client: Any) -> None:
    """A stream is signed UNSIGNED-PAYLOAD, framed aws-chunked with a CRC32 trailer."""
    from knoxpy import client as client_module

    client_module._TRAILERS.clear()
    signed_client.options["checksum"] = "crc32"  # moto is plain HTTP: 'auto' would not frame
    data = b"0123456789" * 100_000
    res = signed_client.putStream(io.BytesIO(data), "/streamed.bin",
                                  {"Content-Length": len(data)}).wait(20)
    assert res.statusCode == 200, res.read()
    assert res.req.getHeader("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert signed_client.get("/streamed.bin").end().wait(10).read() == data  # no framing kept


def test_a_stream_that_cannot_be_replayed_goes_unframed_to_an_unknown_store(
    signed_client: Any
) -> None:
    from knoxpy import client as client_module

    client_module._TRAILERS.clear()
    signed_client.options["checksum"] = "crc32"
    data = b"abc" * 100_000
    chunks = (data[i:i + 10_000] for i in range(0, len(data), 10_000))
    res = signed_client.putStream(chunks, "/streamed2.bin", {"Content-Length": len(data)}).wait(20)
    assert res.statusCode == 200, res.read()
    assert res.req.getHeader("x-amz-content-sha256") == "UNSIGNED-PAYLOAD"
    assert signed_client.get("/streamed2.bin").end().wait(10).read() == data


def test_list_copy_and_delete_multiple_are_signed(signed_client: Any) -> None:
    for k in ("/dir/a b.txt", "/dir/c+d.txt"):
        assert signed_client.putBuffer(b"x", k).wait(10).statusCode == 200
    data = signed_client.list({"prefix": "dir/", "max-keys": 10}).wait(10)
    assert sorted(o["Key"] for o in data["Contents"]) == ["dir/a b.txt", "dir/c+d.txt"]
    assert signed_client.copyFile("/dir/a b.txt", "/dir/copy (1).txt").wait(10).statusCode == 200
    res = signed_client.deleteMultiple(["/dir/a b.txt", "/dir/c+d.txt", "/dir/copy (1).txt"]).wait(10)
    assert res.statusCode == 200
    assert res.read().count(b"<Deleted>") == 3


def test_presigned_v4_expiry_is_bounded(signed_client: Any) -> None:
    with pytest.raises(knoxpy.ValidationError, match="604800"):
        signed_client.signedUrl("/x", time.time() + 8 * 24 * 3600)


def test_multipart_upload_and_ranged_download_are_signed(signed_client: Any) -> None:
    """Parts are signed with their SHA-256 (the body moto checks); ranges are signed too."""
    import hashlib
    import os

    data = os.urandom(11 * 1024 * 1024)
    parts: list = []
    result = signed_client.upload(iter([data[i:i + 65536] for i in range(0, len(data), 65536)]),
                                  "/signed/multi.bin", partSize=5 * 1024 * 1024
                                  ).on("part", parts.append).wait(60)
    assert len(parts) == 3 and result["Key"] == "signed/multi.bin"
    out = io.BytesIO()
    signed_client.download("/signed/multi.bin", out, partSize=5 * 1024 * 1024).wait(60)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()
