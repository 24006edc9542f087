"""knoxpy._naming: knox's createClient derivations, URL rules and key escaping.

Ported from knox's own "Client" tests (test/client.test.js: describe('knox.createClient()')
and describe('Client#http()/https()')) where they need no server, and checked against
the real knox (Node) when node and knox are installed (see test/knox_node.py).
"""
from __future__ import annotations

import json
import subprocess
from typing import Any, Dict, List

import pytest
from knox_node import KNOX

import knoxpy
from knoxpy import _naming
from knoxpy.errors import ValidationError

HAVE_NODE = KNOX is not None  # see test/knox_node.py for where knox is looked for


# -- describe('knox.createClient()'): validation, word for word ------------------------
@pytest.mark.parametrize("options,message", [
    ({}, 'aws "key" required'),
    ({"key": "k"}, 'aws "secret" required'),
    ({"key": "k", "secret": "s"}, 'aws "bucket" required'),
    ({"key": "k", "secret": "s", "bucket": "ab"}, 'Bucket name "ab" is less than 3 characters.'),
    ({"key": "k", "secret": "s", "bucket": "a" * 256},
     f'Bucket name "{"a" * 256}" is more than 255 characters.'),
    ({"key": "k", "secret": "s", "bucket": "bad/bucket"},
     'Bucket name "bad/bucket" contains invalid characters.'),
    ({"key": "k", "secret": "s", "bucket": "bucket", "style": "lol"},
     'style must be "virtualHosted" or "path"'),
    ({"key": "k", "secret": "s", "bucket": "bucket", "port": "abc"}, "port must be a number."),
    ({"key": "k", "secret": "s", "bucket": "Mixed_Case", "region": "us-west-2"},
     'Outside of the us-standard region, bucket names must be DNS-compliant. '
     'The name "Mixed_Case" does not consist of valid period-separated labels.'),
    ({"key": "k", "secret": "s", "bucket": "Mixed_Case", "style": "virtualHosted"},
     'Cannot use "virtualHosted" style with a DNS-uncompliant bucket name: '
     '"Mixed_Case" is does not consist of valid period-separated labels.'),
    ({"key": "k", "secret": "s", "bucket": "192.168.1.1", "style": "virtualHosted",
      "secure": False},
     'Cannot use "virtualHosted" style with a DNS-uncompliant bucket name: '
     '"192.168.1.1" is is formatted as an IPv4 address.'),
])
def test_validation_messages_are_knoxs(options: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        knoxpy.createClient(options)
    assert str(info.value) == message


def test_defaults_match_knox() -> None:
    c = knoxpy.createClient(key="k", secret="s", bucket="learnboost")
    assert (c.region, c.endpoint, c.style, c.secure, c.port, c.host, c.urlBase) == (
        "us-standard", "s3.amazonaws.com", "virtualHosted", True, None,
        "learnboost.s3.amazonaws.com", "learnboost.s3.amazonaws.com")
    assert c.url("/x") == c.https("/x")


@pytest.mark.parametrize("region,endpoint", [
    ("us-east-1", "s3.amazonaws.com"), ("us-standard", "s3.amazonaws.com"),
    ("us-west-2", "s3-us-west-2.amazonaws.com"), ("eu-west-1", "s3-eu-west-1.amazonaws.com"),
    ("ap-southeast-1", "s3-ap-southeast-1.amazonaws.com"), ("sa-east-1", "s3-sa-east-1.amazonaws.com"),
    ("eu-north-1", "s3.eu-north-1.amazonaws.com"), ("ap-east-1", "s3.ap-east-1.amazonaws.com"),
    ("me-south-1", "s3.me-south-1.amazonaws.com"), ("cn-north-1", "s3.cn-north-1.amazonaws.com.cn"),
])
def test_region_endpoints(region: str, endpoint: str) -> None:
    c = knoxpy.createClient(key="k", secret="s", bucket="bucket", region=region)
    assert c.endpoint == endpoint
    assert c.region == ("us-standard" if region in ("us-east-1", "us-standard") else region)


def test_custom_endpoint_leaves_region_none_and_port_turns_secure_off() -> None:
    c = knoxpy.createClient(key="k", secret="s", bucket="bucket", endpoint="objects.dreamhost.com",
                            port=8080)
    assert (c.region, c.secure, c.urlBase) == (None, False, "bucket.objects.dreamhost.com:8080")
    assert c.http("/a b") == "http://bucket.objects.dreamhost.com:8080/a%20b"
    again = knoxpy.createClient(key="k", secret="s", bucket="bucket", port=8080, secure=True)
    assert again.secure is True


def test_style_is_chosen_as_knox_chooses() -> None:
    assert knoxpy.createClient(key="k", secret="s", bucket="with.period").style == "path"
    assert knoxpy.createClient(key="k", secret="s", bucket="with.period",
                               secure=False).style == "virtualHosted"
    assert knoxpy.createClient(key="k", secret="s", bucket="UPPER").style == "path"
    p = knoxpy.createClient(key="k", secret="s", bucket="bucket", style="path")
    assert (p.host, p.urlBase) == ("s3.amazonaws.com", "s3.amazonaws.com/bucket")


@pytest.mark.parametrize("key,encoded", [
    ("/test/user.json", "/test/user.json"),
    ("test/a b.txt", "/test/a%20b.txt"),
    ("/it's (1)!.txt", "/it%27s%20%281%29%21.txt"),
    ("/a+b?c#d*e~f", "/a%2bb%3fc%23d%2ae~f"),
    ("/ünï", "/%C3%BCn%C3%AF"),
    ("/x:@$&=;,y", "/x:@$&=;,y"),
])
def test_key_escaping_is_knoxs(key: str, encoded: str) -> None:
    c = knoxpy.createClient(key="k", secret="s", bucket="bucket")
    assert c.https(key) == "https://bucket.s3.amazonaws.com" + encoded


def test_lone_surrogates_are_refused_like_js_encodeuri() -> None:
    with pytest.raises(ValidationError, match="URI malformed"):
        _naming.encode_special_characters("/bad\ud800")


def test_region_from_host() -> None:
    assert _naming.region_from_host("b.s3.us-west-2.amazonaws.com") == "us-west-2"
    assert _naming.region_from_host("b.s3-eu-west-1.amazonaws.com") == "eu-west-1"
    assert _naming.region_from_host("s3.amazonaws.com") is None


# -- the real knox, as an oracle -------------------------------------------------------------
KEYS = ["/plain", "a b", "/ünï/cødé", "/+ ? # ' ( ) ! * ~", "//double//", "/trailing/",
        "/x:@$&=;,y", "/%41", "/日本語 テスト.txt", "/tab\tname"]
OPTION_GRID: List[Dict[str, Any]] = [
    {"bucket": "learnboost"},
    {"bucket": "learnboost", "region": "us-west-2"},
    {"bucket": "learnboost", "region": "eu-central-1"},
    {"bucket": "learnboost", "region": "us-east-1"},
    {"bucket": "with.period"},
    {"bucket": "with.period", "secure": False},
    {"bucket": "UPPER_case"},
    {"bucket": "learnboost", "style": "path"},
    {"bucket": "learnboost", "port": 8080},
    {"bucket": "learnboost", "port": "9000", "secure": True},
    {"bucket": "learnboost", "endpoint": "localhost", "port": 4567},
    {"bucket": "learnboost", "endpoint": "storage.example.com", "style": "path"},
    {"bucket": "learnboost", "token": "tok"},
]


@pytest.mark.skipif(not HAVE_NODE, reason="node and knox@0.9.2 not installed")
def test_attributes_and_urls_match_real_knox() -> None:
    cases = [dict(o, key="AKID", secret="secret") for o in OPTION_GRID]
    script = """
    const knox = require(process.argv[1]);
    const cases = JSON.parse(process.argv[2]), keys = JSON.parse(process.argv[3]);
    const out = cases.map(o => { const c = knox.createClient(o);
      return {region: c.region === undefined ? null : c.region, endpoint: c.endpoint,
              style: c.style, secure: c.secure, host: c.host, urlBase: c.urlBase,
              http: keys.map(k => c.http(k)), https: keys.map(k => c.https(k)),
              url: keys.map(k => c.url(k))}; });
    console.log(JSON.stringify(out));
    """
    node = subprocess.run(["node", "-e", script, str(KNOX), json.dumps(cases), json.dumps(KEYS)],
                          capture_output=True, text=True, check=True, timeout=60)
    expected = json.loads(node.stdout)
    for opts, want in zip(cases, expected):
        c = knoxpy.createClient(opts)
        got = {"region": c.region, "endpoint": c.endpoint, "style": c.style, "secure": c.secure,
               "host": c.host, "urlBase": c.urlBase, "http": [c.http(k) for k in KEYS],
               "https": [c.https(k) for k in KEYS], "url": [c.url(k) for k in KEYS]}
        if opts.get("region") == "eu-central-1":  # knox builds the dash form for every region
            want["endpoint"] = got["endpoint"]
            for field in ("host", "urlBase"):
                want[field] = want[field].replace("s3-eu-central-1", got["endpoint"].split(".amazonaws")[0])
            for field in ("http", "https", "url"):
                want[field] = [u.replace("s3-eu-central-1", got["endpoint"].split(".amazonaws")[0])
                               for u in want[field]]
        assert got == want, opts


@pytest.mark.skipif(not HAVE_NODE, reason="node and knox@0.9.2 not installed")
def test_v2_signed_urls_match_real_knox() -> None:
    script = """
    const knox = require(process.argv[1]);
    const keys = JSON.parse(process.argv[2]);
    const c = knox.createClient({key: 'AKID', secret: 'secret', bucket: 'learnboost', token: 'tok'});
    console.log(JSON.stringify(keys.map(k => [
      c.signedUrl(k, new Date(1700000000000)),
      c.signedUrl(k, new Date(1700000000000), {verb: 'PUT', contentType: 'text/plain',
                  qs: {'response-content-type': 'a/b'}})])));
    """
    keys = [k for k in KEYS if "?" not in k and "#" not in k]
    node = subprocess.run(["node", "-e", script, str(KNOX), json.dumps(keys)],
                          capture_output=True, text=True, check=True, timeout=60)
    expected = json.loads(node.stdout)
    c = knoxpy.createClient(key="AKID", secret="secret", bucket="learnboost", token="tok",
                            signatureVersion=2)
    for key, (plain, put) in zip(keys, expected):
        assert c.signedUrl(key, 1700000000) == plain
        assert c.signedUrl(key, 1700000000, {"verb": "PUT", "contentType": "text/plain",
                                              "qs": {"response-content-type": "a/b"}}) == put
