"""Bad input is a ValidationError naming the problem (issue 11, items 8 and 13).

One table per kind of input: createClient options, credentials, keys of every call that
takes one, header values, signedUrl expirations, transfer options. No sockets: every check
fires before a request is made (the calls below name a port nothing listens on).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import pytest

import knoxpy
from knoxpy import ValidationError

BASE = dict(key="AKID", secret="s3cr3t", bucket="bucket", endpoint="localhost", port=9,
            style="path")


def client(**extra: Any) -> knoxpy.Client:
    return knoxpy.createClient(dict(BASE, **extra))


OPTIONS = [  # (option, value, fragment of the message)
    ("port", -1, "port must be a whole number from 1 to 65535, not -1"),
    ("port", 99999, "from 1 to 65535, not 99999"),
    ("port", "80abc", "not '80abc'"),
    ("port", "x", r"^port must be a number\.$"),  # knox's own, word for word
    ("secret", 123, 'aws "secret" must be a string, not int'),
    ("key", 123, 'aws "key" must be a string, not int'),
    ("bucket", 123, 'aws "bucket" must be a string, not int'),
    ("bucket", "bk\x01t", r'^Bucket name "bk\\x01t" contains invalid characters\.$'),
    ("agent", "pool", "agent must be a urllib3.PoolManager or None, not str"),
    ("endpoint", "localhost\r\nX-Injected: y", "endpoint must be a host name"),
    ("endpoint", "http://localhost", "no scheme, port or path"),
    ("region", "us-east-2\r\n", r"region must be a region name.*not 'us-east-2\\r\\n'"),
    ("timeout", "x", r"timeout must be seconds \(a number over 0\) or \(connect, read\), not 'x'"),
    ("timeout", -1, "not -1"),
    ("timeout", (1,), r"not \(1,\)"),
    ("timeout", math.nan, "not nan"),
    ("maxRetries", "x", "maxRetries must be a whole number, 0 or more, not 'x'"),
    ("maxRetries", -1, "not -1"),
    ("signatureVersion", "4x", "signatureVersion must be 2 or 4, not '4x'"),
    ("signatureVersion", 3, "not 3"),
    ("checksum", "md4", "checksum must be 'auto', False or one of crc32, crc32c, crc64nvme, "
     "md5, sha1, sha256, not 'md4'"),
    ("secure", "yes", "secure must be True or False, not 'yes'"),
    ("style", "foo", r'^style must be "virtualHosted" or "path"$'),
]


@pytest.mark.parametrize("name, value, message", OPTIONS)
def test_a_bad_create_client_option_is_refused_at_once(name: str, value: Any, message: str
                                                       ) -> None:
    with pytest.raises(ValidationError, match=message):
        client(**{name: value})


@pytest.mark.parametrize("name, value", [("timeout", (5, None)), ("timeout", 2.5),
                                         ("signatureVersion", "2"), ("maxRetries", 0),
                                         ("port", "9000"), ("endpoint", "[::1]"),
                                         ("region", "fr-par")])
def test_good_options_still_pass(name: str, value: Any) -> None:
    client(**{name: value})


# -- credentials (item 8): whitespace stripped, control characters refused unseen -------------
@pytest.mark.parametrize("name", ["key", "secret", "token"])
def test_credentials_lose_surrounding_whitespace(name: str) -> None:
    c = client(**{name: " \tvalue-from-a-file\r\n"})
    assert getattr(c, name) == "value-from-a-file"


def test_a_token_of_only_whitespace_is_no_token() -> None:
    assert client(token="\n").token is None


@pytest.mark.parametrize("name", ["key", "secret", "token"])
@pytest.mark.parametrize("value", ["SECRETPART\x00tail", "SECRETPART\nSECRETTAIL", "SECRETPART\x1b[2J"])
def test_control_characters_in_credentials_are_refused_without_showing_them(
        name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f'aws "{name}" contains a control character') as info:
        client(**{name: value})
    assert "SECRET" not in str(info.value)


def test_credentials_from_the_environment_are_stripped(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV\n")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret\n")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-from-a-file\n")
    c = knoxpy.createClient(bucket="bucket", endpoint="localhost", port=9)
    assert (c.key, c.secret, c.token) == ("AKIDENV", "secret", "token-from-a-file")
    assert c.get("/x").getHeader("x-amz-security-token") == "token-from-a-file"


# -- keys: every call that takes one refuses control characters ------------------------------
BAD_KEY = "/a\x01b"
KEY_CALLS: list[tuple[str, Callable[[knoxpy.Client], Any]]] = [
    ("get", lambda c: c.get(BAD_KEY)),
    ("copy source", lambda c: c.copy(BAD_KEY, "/dst")),
    ("copyTo source", lambda c: c.copyTo(BAD_KEY, "other-bucket", "/dst")),
    ("deleteMultiple", lambda c: c.deleteMultiple(["/fine", BAD_KEY])),
    ("upload", lambda c: c.upload(b"abc", BAD_KEY).wait(5)),
    ("download", lambda c: c.download(BAD_KEY, "unused-path").wait(5)),
]


@pytest.mark.parametrize("call", [c for _, c in KEY_CALLS], ids=[n for n, _ in KEY_CALLS])
def test_control_characters_in_keys_are_refused_by_every_call(call: Any) -> None:
    with pytest.raises(ValidationError, match=r"invalid key .*control character '\\x01'"):
        call(client())


# -- header values, expirations, transfer options --------------------------------------------
def test_a_non_ascii_header_value_names_the_header() -> None:
    with pytest.raises(ValidationError, match="'x-amz-meta-note': non-ASCII character '☃'"):
        client().put("/x", {"Content-Length": 1, "x-amz-meta-note": "snow ☃"})
    req = client().put("/x", {"Content-Length": 1})
    with pytest.raises(ValidationError, match="x-amz-meta-late.*RFC 2047"):
        req.setHeader("x-amz-meta-late", "naïve")


@pytest.mark.parametrize("expiration", [math.nan, math.inf, -math.inf, "tomorrow", None])
def test_signed_url_refuses_an_expiration_that_is_no_time(expiration: Any) -> None:
    with pytest.raises(ValidationError, match="expiration must be a datetime or seconds"):
        client().signedUrl("/x", expiration)


@pytest.mark.parametrize("option, value, message", [
    ("resume", "yes please", "resume must be True or False, not 'yes please'"),
    ("concurrency", "x", "concurrency must be a positive integer, not 'x'"),
    ("partSize", "x", "partSize must be a number of bytes, not 'x'"),
])
def test_a_bad_upload_option_is_refused(option: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        client().upload(b"abc", "/k", **{option: value}).wait(5)
