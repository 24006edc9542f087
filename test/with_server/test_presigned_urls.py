"""signedUrl, fetched with plain urllib3 from moto, for both signature versions and URL styles."""
from __future__ import annotations

import datetime as dt
import time
import urllib.parse
from typing import Any

import pytest
import urllib3
from conftest import moto_options

import knoxpy


@pytest.mark.parametrize("version", [4, 2])
@pytest.mark.parametrize("key", ["/signed.txt", "/ünï cødé (1)!.txt"])
def test_signed_url_fetches_the_object(client_options: Any, version: int, key: str) -> None:
    client = knoxpy.createClient(dict(client_options, signatureVersion=version))
    assert client.putBuffer(b"signed body", key).wait(10).statusCode == 200
    url = client.signedUrl(key, dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5))
    res = fetch(url)
    assert (res.status, res.data) == (200, b"signed body")


def fetch(url: str) -> Any:
    """GET a URL with plain urllib3; `*.localhost` names are dialled on 127.0.0.1 (no DNS)."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path + "?" + parts.query
    with urllib3.HTTPConnectionPool("127.0.0.1", parts.port) as pool:
        return pool.request("GET", target, headers={"Host": parts.netloc}, retries=False)


def test_v2_signed_url_has_knox_shape(moto_port: int, bucket: str) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket, signatureVersion=2))
    url = client.signedUrl("/a.txt", 1700000000)
    assert url.startswith(f"http://{bucket}.localhost:{moto_port}/a.txt?Expires=1700000000"
                          f"&AWSAccessKeyId={client.key}&Signature=")


def test_v4_signed_url_carries_the_query_auth_fields(moto_port: int, bucket: str) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket))
    url = client.signedUrl("/a.txt", time.time() + 60, {"verb": "PUT"})
    for field in ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Credential=", "X-Amz-Date=",
                  "X-Amz-Expires=", "X-Amz-SignedHeaders=host", "X-Amz-Signature="):
        assert field in url
    assert client.secret not in url


def test_signed_url_with_a_token_carries_it(moto_port: int, bucket: str) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket, token="SESSION/TOKEN+1"))
    assert "X-Amz-Security-Token=SESSION%2FTOKEN%2B1" in client.signedUrl("/a", time.time() + 60)
    v2 = knoxpy.createClient(moto_options(moto_port, bucket, token="SESSION/TOKEN+1",
                                          signatureVersion=2))
    assert v2.signedUrl("/a", 1700000000).endswith("&x-amz-security-token=SESSION%2FTOKEN%2B1")


@pytest.mark.parametrize("expires", [0, -5, 7 * 24 * 3600 + 60])
def test_v4_expiry_out_of_range_is_refused(moto_port: int, bucket: str, expires: int) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket))
    with pytest.raises(knoxpy.ValidationError):
        client.signedUrl("/a", time.time() + expires)
