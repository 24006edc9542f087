"""Retries with backoff and region redirects (issue 3, items 3 and 7), against the project's
fault server: resets, 503 bursts, short bodies, and redirects answered the way S3 answers them.
"""
from __future__ import annotations

import io
import os
from typing import Any, Dict, Iterator, List

import pytest
from conftest import fault_client
from servers.s3shaped import S3Server

import knoxpy
from knoxpy import client as client_module

pytestmark = pytest.mark.usefixtures("forget_learned")
make = fault_client


def gets(srv: S3Server, key: str) -> int:
    return sum(1 for r in srv.requests if r.method == "GET" and r.key == key)


def test_503_slowdown_burst_is_retried_and_reported(srv: S3Server) -> None:
    c = make(srv)
    assert c.putBuffer(b"payload", "/k").wait(10).statusCode == 200
    srv.inject("status", count=2, match="GET /bkt/k", status=503, code="SlowDown")
    retries: List[Dict[str, Any]] = []
    req = c.get("/k").on("retry", retries.append).end()
    res = req.wait(20)
    assert (res.statusCode, res.read()) == (200, b"payload")
    assert [r["attempt"] for r in retries] == [1, 2]
    assert all(r["reason"] == "503 SlowDown" and r["delay"] >= 0 for r in retries)
    assert gets(srv, "k") == 3


def test_retries_stop_at_max_retries_and_the_last_answer_is_delivered(srv: S3Server) -> None:
    c = make(srv, maxRetries=1)
    c.putBuffer(b"x", "/k").wait(10)
    srv.inject("status", count=5, match="GET /bkt/k", status=500, code="InternalError")
    res = c.get("/k").end().wait(20)
    assert res.statusCode == 500 and b"InternalError" in res.read()
    assert gets(srv, "k") == 2


def test_max_retries_zero_turns_retries_off(srv: S3Server) -> None:
    c = make(srv, maxRetries=0)
    c.putBuffer(b"x", "/k").wait(10)
    srv.inject("status", count=1, match="GET /bkt/k", status=503, code="SlowDown")
    assert c.get("/k").end().wait(10).statusCode == 503
    assert gets(srv, "k") == 1


@pytest.mark.parametrize("fault", ["reset_response_body", "short_body"])
def test_a_body_cut_short_is_retried(srv: S3Server, fault: str) -> None:
    c = make(srv)
    data = os.urandom(20_000)
    c.putBuffer(data, "/cut").wait(10)
    srv.inject(fault, count=1, match="GET /bkt/cut", after=5_000)
    assert c.get("/cut").end().wait(20).read() == data
    assert gets(srv, "cut") == 2


def test_a_cut_body_without_retries_is_an_error_never_a_short_body(srv: S3Server) -> None:
    c = make(srv, maxRetries=0)
    c.putBuffer(os.urandom(20_000), "/cut").wait(10)
    srv.inject("short_body", count=1, match="GET /bkt/cut", after=5_000)
    with pytest.raises(knoxpy.RequestError) as info:
        c.get("/cut").end().wait(10)
    assert info.value.code == "ECONNRESET"


def test_a_put_reset_mid_body_is_retried_from_a_file(srv: S3Server, tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    data = os.urandom(600_000)
    path.write_bytes(data)
    c = make(srv)
    srv.inject("reset_request_body", count=1, match="PUT /bkt/f.bin", after=100_000)
    progress: List[int] = []
    res = c.putFile(str(path), "/f.bin").on("progress", lambda p: progress.append(p["written"]))
    assert res.wait(20).statusCode == 200
    assert srv.buckets["bkt"].objects["f.bin"].data == data
    assert progress == sorted(progress) and progress[-1] == len(data)  # monotonic across retries


def test_a_stream_that_cannot_be_replayed_is_not_retried(srv: S3Server) -> None:
    c = make(srv)
    srv.inject("status", count=1, match="PUT /bkt/once", status=503, code="SlowDown")

    def chunks() -> Iterator[bytes]:
        yield b"a" * 1000

    res = c.putStream(chunks(), "/once", {"Content-Length": 1000}).wait(10)
    assert res.statusCode == 503
    assert sum(1 for r in srv.requests if r.method == "PUT" and r.key == "once") == 1


def test_each_retry_is_signed_afresh(srv: S3Server) -> None:
    c = make(srv)
    c.putBuffer(b"x", "/k").wait(10)
    srv.inject("status", count=1, match="GET /bkt/k", status=503, code="SlowDown")
    c.get("/k").end().wait(20)
    auths = [r.headers["authorization"] for r in srv.requests if r.method == "GET"]
    assert len(auths) == 2 and all(a.startswith("AWS4-HMAC-SHA256 ") for a in auths)


# -- region redirects (knox issue #66) -----------------------------------------------------
@pytest.mark.parametrize("kind", ["region", "permanent", "temporary"])
def test_a_wrong_region_is_learned_re_signed_and_remembered(kind: str) -> None:
    with S3Server(mode="store") as srv:
        c = make(srv)
        srv.inject("redirect", count=1, kind=kind, region="eu-west-1")
        redirects: List[Dict[str, Any]] = []
        req = c.putBuffer(b"moved", "/r.txt").on("redirect", redirects.append)
        assert req.wait(10).statusCode == 200
        assert redirects and redirects[0]["region"] == "eu-west-1"
        assert "/eu-west-1/s3/aws4_request" in srv.requests[-1].headers["authorization"]
        # remembered: the next request is signed for eu-west-1 straight away
        c.get("/r.txt").end().wait(10).read()
        assert "/eu-west-1/s3/aws4_request" in srv.requests[-1].headers["authorization"]


def test_put_stream_and_get_file_work_against_another_region_without_the_option() -> None:
    with S3Server(mode="store", require_region="ap-southeast-2") as srv:
        c = make(srv)
        data = os.urandom(300_000)
        # a stream cannot be replayed: the client asks the bucket's region first
        res = c.putStream(io.BytesIO(data), "/far.bin", {"Content-Length": len(data)}).wait(20)
        assert res.statusCode == 200, res.read()
        got: List[bytes] = []
        c.getFile("/far.bin", lambda err, r: r.on("data", got.append))
        knoxpy.run(timeout=20)
        assert b"".join(got) == data
        assert c.putBuffer(b"buf", "/buf").wait(10).statusCode == 200


def test_put_file_works_against_another_region(tmp_path: Any) -> None:
    with S3Server(mode="store", require_region="eu-central-1") as srv:
        path = tmp_path / "a.txt"
        path.write_bytes(b"hello region")
        assert make(srv).putFile(str(path), "/a.txt").wait(20).statusCode == 200
        assert srv.buckets["bkt"].objects["a.txt"].data == b"hello region"


def test_aws_hosts_follow_the_learned_region() -> None:
    client_module._BUCKET_REGIONS[("s3.amazonaws.com", "mybucket")] = "eu-north-1"
    c = knoxpy.createClient(key="k", secret="s", bucket="mybucket")
    assert c._route() == ("mybucket.s3.eu-north-1.amazonaws.com", "eu-north-1")
    p = knoxpy.createClient(key="k", secret="s", bucket="mybucket", style="path")
    assert p._route() == ("s3.eu-north-1.amazonaws.com", "eu-north-1")
