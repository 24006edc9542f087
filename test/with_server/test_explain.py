"""The teaching mode (knoxpy._explain): what it prints is what the server received.

The project's S3-shaped server records every request as it arrived (headers included);
each explained request is checked against it: the request line and headers, the
canonical request rebuilt from the received request, the string to sign, the
signature in the received Authorization header. The secret and token never appear.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import urllib.parse
from typing import Dict, Iterator, List, Tuple

import pytest
from servers.s3shaped import S3Server

import knoxpy
from knoxpy import _explain, auth

SECRET = "explain-secret/EXAMPLE+KEY"
TOKEN = "session/token+with=odd&chars"


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with S3Server(mode="store", record=True) as srv:
        yield srv


def sections(text: str) -> Dict[str, List[str]]:
    """The numbered sections of an explanation: heading word -> its indented lines."""
    out: Dict[str, List[str]] = {}
    current = None
    in_heading = False  # a heading may go on for a line or two, up to a blank line
    for line in text.split("\n"):
        m = re.match(r"^\d\. The (\w+)", line)
        if m:
            current, in_heading = m.group(1), True
            out[current] = []
        elif in_heading:
            in_heading = line != ""
        elif current and line.startswith("   ") and not line.startswith("   ("):
            out[current].append(line[3:])
        elif current and line == "" and out[current]:
            out[current].append("")
    return {k: "\n".join(v).strip("\n").split("\n") for k, v in out.items()}


def blocks(texts: List[str]) -> List[Tuple[str, str]]:
    """(request text, response text) pairs, in order."""
    requests = [t for t in texts if "1. The HTTP request" in t]
    responses = [t for t in texts if "The response (" in t]
    assert len(requests) == len(responses)
    return list(zip(requests, responses))


def assert_no_secrets(texts: List[str]) -> None:
    joined = "\n".join(texts)
    for secret in (SECRET, TOKEN):
        for form in (secret, urllib.parse.quote(secret, safe=""),
                     urllib.parse.quote(secret, safe="-_.~")):
            assert form not in joined


@pytest.mark.parametrize("style", ["path", "virtualHosted"])
def test_explain_matches_what_the_server_received(server: S3Server, style: str) -> None:
    texts: List[str] = []
    client = knoxpy.createClient(key="AKIDEXPLAIN", secret=SECRET, token=TOKEN,
                                 bucket="explained", endpoint="localhost", port=server.port,
                                 style=style, explain=texts.append)
    before = len(server.requests)
    client.putBuffer("hé", "/dir/a b+c.txt", {"x-amz-meta-Colour": "  deep   blue "}).wait(
    ).resume()
    res = client.getFile("/dir/a b+c.txt").wait()
    assert res.read() == "hé".encode()
    assert client.list({"prefix": "dir/", "max-keys": 5}).wait()["Contents"]
    received = server.requests[before:]
    pairs = blocks(texts)
    assert len(pairs) == len(received) == 3
    assert_no_secrets(texts)

    for (request_text, response_text), got in zip(pairs, received):
        s = sections(request_text)
        method, target, version = s["HTTP"][0].split(" ")
        assert (method, target, version) == (got.method, got.path, "HTTP/1.1")
        shown = dict(line.split(": ", 1) for line in s["HTTP"][1:])
        for name, value in shown.items():
            expected = got.headers[name.lower()]
            # (HTTP drops the whitespace around a header value: the server sees it trimmed)
            assert value.strip() == ("<session token>" if expected == TOKEN else expected), name
        # S3's side: rebuild the canonical request from what arrived and compare.
        signed = re.search(r"SignedHeaders=([^,]+)", got.headers["authorization"]).group(1)
        path, _, query = got.path.partition("?")
        canonical = auth.canonical_request_v4(
            got.method, path, query, {h: got.headers[h] for h in signed.split(";")},
            got.headers["x-amz-content-sha256"])
        assert "\n".join(s["canonical"]) == canonical.replace(TOKEN, "<session token>")
        string = s["string"]
        assert string[3] == hashlib.sha256(canonical.encode()).hexdigest()
        assert string[1] == got.headers["x-amz-date"]
        signature = got.headers["authorization"].rsplit("Signature=", 1)[1]
        assert s["signature"] == [signature]
        # The printed (truncated) key steps are the real ones.
        key = ("AWS4" + SECRET).encode()
        for line, part in zip(s["signing"], [string[2].split("/")[0], "us-east-1", "s3",
                                             "aws4_request"]):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            assert line.endswith(f"= {key.hex()[:8]}…"), line
            assert key.hex() not in request_text
        assert hmac.new(key, "\n".join(string).encode(), hashlib.sha256).hexdigest() == signature
        status = sections(response_text)["response"][0]
        assert status == "HTTP/1.1 200 OK"


def test_explain_signature_v2_and_errors(server: S3Server) -> None:
    texts: List[str] = []
    client = knoxpy.createClient(key="AKIDV2", secret=SECRET, token=TOKEN, bucket="explained",
                                 endpoint="localhost", port=server.port, style="path",
                                 signatureVersion=2, explain=texts.append)
    before = len(server.requests)
    res = client.getFile("/never-there").wait()
    assert res.statusCode == 404
    res.resume()
    got = server.requests[before]
    (request_text, response_text), = blocks(texts)
    v2 = sections(request_text)["string"]
    assert v2[0] == "GET" and got.headers["date"] in v2
    assert "HTTP/1.1 404 Not Found" in response_text and "<Error>" in response_text
    assert_no_secrets(texts)


def test_explain_to_a_file_and_presigned_urls(server: S3Server) -> None:
    import io

    sink = io.StringIO()
    client = knoxpy.createClient(key="AKIDFILE", secret=SECRET, token=TOKEN, bucket="explained",
                                 endpoint="localhost", port=server.port, explain=sink)
    url = client.signedUrl("/x.txt", time.time() + 60)
    text = sink.getvalue()
    assert "presigned URL" in text and "UNSIGNED-PAYLOAD" in text
    assert url.split("X-Amz-Signature=")[1] in text
    assert_no_secrets([text])


def test_explain_goes_through_logging_when_debug_is_on(
        server: S3Server, caplog: pytest.LogCaptureFixture) -> None:
    client = knoxpy.createClient(key="AKIDLOG", secret=SECRET, bucket="explained",
                                 endpoint="localhost", port=server.port)
    client.headFile("/nothing").wait().resume()
    assert not [r for r in caplog.records if r.name == "knoxpy.explain"]
    with caplog.at_level(logging.DEBUG, logger="knoxpy"):
        client.headFile("/nothing").wait().resume()
    logged = [r.getMessage() for r in caplog.records if r.name == "knoxpy.explain"]
    assert len(logged) == 2 and "HEAD /nothing HTTP/1.1" in logged[0]
    assert_no_secrets(logged)


@pytest.mark.parametrize("value,expected", [
    ("knox", True), ("knoxpy", True), ("express:*, knox", True), ("knox*", True),
    ("*", True), ("*,-knox,-knoxpy", False), ("express", False), ("", False), (None, False),
])
def test_node_debug_variable(value: str, expected: bool) -> None:
    assert _explain.debug_enabled(value) is expected


def test_explain_option_is_checked() -> None:
    with pytest.raises(TypeError):
        knoxpy.createClient(key="k", secret="s", bucket="bucket", explain=42)


def test_an_sse_c_key_is_masked_like_the_secret(server: S3Server) -> None:
    """SSE-C keys are signed headers: the canonical request would show them."""
    import base64

    texts: List[str] = []
    client = knoxpy.createClient(key="AKIDSSEC", secret=SECRET, bucket="explained",
                                 endpoint="localhost", port=server.port, style="path",
                                 explain=texts.append)
    key = base64.b64encode(b"k" * 32).decode()
    copy_key = base64.b64encode(b"c" * 32).decode()
    client.putBuffer(b"sealed", "/sealed", {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": key,
        "x-amz-copy-source-server-side-encryption-customer-key": copy_key,
    }).wait(10)
    text = "".join(texts)
    assert "x-amz-server-side-encryption-customer-key:<SSE-C key>" in text
    assert key not in text and copy_key not in text and SECRET not in text
