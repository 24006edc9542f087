"""Presigned POST policies (issue 15 item 4): a browser upload straight to S3, V4.

The signature is checked against botocore's (the oracle, as for every V4 signature in
knoxpy's tests); the form is posted as a browser would, multipart, to moto.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
import urllib3

import knoxpy
from knoxpy import auth

NOW = dt.datetime(2026, 12, 3, 10, 0, 0, tzinfo=dt.timezone.utc)


def _policy(form: dict[str, str]) -> dict[str, Any]:
    return json.loads(base64.b64decode(form["policy"]))


def test_the_signature_is_botocores_for_the_same_policy() -> None:
    botocore = pytest.importorskip("botocore.session")
    from botocore.config import Config

    s3 = botocore.get_session().create_client(
        "s3", region_name="eu-west-1", aws_access_key_id="AKID",
        aws_secret_access_key="secret/KEY+1", config=Config(signature_version="s3v4"))
    theirs = s3.generate_presigned_post("bkt", "a/b.txt", ExpiresIn=600)["fields"]
    date_stamp = theirs["x-amz-date"][:8]
    ours = auth.signature_v4(auth.signing_key("secret/KEY+1", date_stamp, "eu-west-1"),
                             theirs["policy"])
    assert ours == theirs["x-amz-signature"]


def test_the_policy_names_what_the_form_carries() -> None:
    form = auth.post_policy_v4(
        bucket="bkt", key="up/${filename}", key_id="AKID", secret="s", region="eu-west-1",
        now=NOW, expires=600, conditions=[["content-length-range", 1, 100]],
        fields={"Content-Type": "text/plain", "success_action_status": "201"}, token="TOK")
    policy = _policy(form)
    assert policy["expiration"] == "2026-12-03T10:10:00.000Z"
    conditions = policy["conditions"]
    assert {"bucket": "bkt"} in conditions and ["starts-with", "$key", "up/"] in conditions
    assert ["content-length-range", 1, 100] in conditions
    for name in ("Content-Type", "success_action_status", "x-amz-algorithm", "x-amz-credential",
                 "x-amz-date", "x-amz-security-token"):
        assert {name: form[name]} in conditions
    assert form["x-amz-credential"] == "AKID/20261203/eu-west-1/s3/aws4_request"
    expected = auth.signature_v4(auth.signing_key("s", "20261203", "eu-west-1"), form["policy"])
    assert form["x-amz-signature"] == expected


@pytest.mark.parametrize("expires", [0, -5, 1.5, "10", True])
def test_a_bad_expiry_is_refused(expires: Any) -> None:
    with pytest.raises(knoxpy.ValidationError, match="expires"):
        auth.post_policy_v4(bucket="bkt", key="k", key_id="A", secret="s", region=None,
                            now=NOW, expires=expires)


def test_a_browser_form_posted_to_moto_stores_the_file(client: Any) -> None:
    post = client.presignedPost("/browser/${filename}", {
        "expires": 300, "fields": {"Content-Type": "text/plain"},
        "conditions": [["content-length-range", 1, 1000]]})
    fields = dict(post["fields"])
    fields["file"] = ("hello.txt", b"uploaded from a form", "text/plain")  # the file goes last
    url = urllib3.util.parse_url(post["url"])  # bucket.localhost: resolved by hand, to loopback
    answer = urllib3.PoolManager().request(
        "POST", f"http://127.0.0.1:{url.port}{url.path}", fields=fields,
        headers={"Host": url.netloc}, timeout=30)
    assert answer.status in (200, 201, 204), answer.data
    res = client.get("/browser/hello.txt").end().wait(10)
    assert res.statusCode == 200 and res.read() == b"uploaded from a form"
    assert res.headers["content-type"] == "text/plain"
