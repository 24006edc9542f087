"""SSE-KMS (issue 15 leftovers, item 3): ``x-amz-server-side-encryption: aws:kms`` and its key
id on put, upload (on CreateMultipartUpload, never on the parts), copy, copyAll; head reports
them.

Against moto: it keeps the encryption and key id a write names and answers them on HEAD and
GET (its own KMS is not consulted: any key id is taken, nothing is encrypted, and its ETags
stay MD5s, where real S3's SSE-KMS ETags are not). What moto cannot show, which requests carry
the headers, is checked against the fault server (test/servers/s3shaped.py), which records
every request.
"""
from __future__ import annotations

import uuid
from typing import Any, Dict

from conftest import fault_client

MIB = 1024 * 1024
KMS = {"x-amz-server-side-encryption": "aws:kms",
       "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:123456789012:key/k1"}
BIG = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts of 5 MiB and 1 MiB


def reported(client: Any, name: str) -> Dict[str, str]:
    res = client.head(name).end().wait(10)
    res.resume()
    assert res.statusCode == 200
    return {k: v for k, v in res.headers.items() if k.startswith("x-amz-server-side-encryption")}


def test_moto_keeps_and_reports_sse_kms_on_put_upload_copy(client: Any) -> None:
    base = f"/kms/{uuid.uuid4().hex[:8]}"
    assert client.putBuffer(b"sealed", base + "/one", KMS).wait(10).statusCode == 200
    big = client.upload(BIG, base + "/big", KMS, partSize=5 * MIB).wait(60)
    small = client.upload(b"small", base + "/small", KMS).wait(10)
    for result in (big, small):  # the upload's result reports what S3 answered
        assert (result["ServerSideEncryption"], result["SSEKMSKeyId"]) == tuple(KMS.values())
    assert client.copyFile(base + "/one", base + "/copy", KMS).end().wait(10).statusCode == 200
    for name in ("/one", "/big", "/copy"):
        assert reported(client, base + name) == KMS
    # copyAll with the headers: every copy re-encrypted with the key named
    other = dict(KMS, **{"x-amz-server-side-encryption-aws-kms-key-id": "k2"})
    plain = f"/plain/{uuid.uuid4().hex[:8]}/"
    client.putBuffer(b"x", plain + "a").wait(10)
    client.putBuffer(b"y", plain + "b").wait(10)
    result = client.copyAll(plain[1:], {"prefix": plain[1:] + "kms/"}, headers=other).wait(30)
    assert result == {"copied": 2, "errors": []}
    assert reported(client, plain + "kms/a") == other
    assert reported(client, plain + "b") == {}  # the source is untouched


def test_an_upload_names_sse_kms_on_initiate_never_on_parts(srv: Any) -> None:
    c = fault_client(srv, partSize=5 * MIB)
    c.upload(BIG, "/k/big", KMS).wait(60)
    initiate, = [r for r in srv.requests if r.method == "POST" and "uploads" in r.query]
    assert {k: initiate.headers[k] for k in KMS} == KMS
    parts = [r for r in srv.requests if r.method == "PUT" and "partNumber" in r.query]
    assert len(parts) == 2
    assert not any(k.startswith("x-amz-server-side-encryption") for r in parts for k in r.headers)
    complete, = [r for r in srv.requests if r.method == "POST" and "uploadId" in r.query]
    assert not any(k.startswith("x-amz-server-side-encryption") for k in complete.headers)
    c.upload(b"small", "/k/small", KMS).wait(10)  # one PUT: the headers on it
    put = [r for r in srv.requests if r.method == "PUT" and r.path.endswith("/k/small")][-1]
    assert {k: put.headers[k] for k in KMS} == KMS
