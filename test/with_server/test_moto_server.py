"""The tests' moto server (test/servers/moto_s3.py) answers every SigV2 request as S3."""
from __future__ import annotations

import urllib3


def test_a_sigv2_signature_with_four_slashes_reaches_s3(moto_port: int, bucket: str) -> None:
    # Plain moto splits "AWS AKID:sig" on "/" looking for a SigV4 scope, finds five parts
    # and answers 500; about one SigV2 signature in 1,400 has four slashes.
    with urllib3.PoolManager() as pool:
        r = pool.request("GET", f"http://127.0.0.1:{moto_port}/{bucket}/no-such-key",
                         headers={"Authorization": "AWS AKIDEXAMPLE:ab/cd/ef/gh/ijklmnopqrstuvw="})
    assert r.status == 404 and b"NoSuchKey" in r.data, (r.status, r.data[:200])
