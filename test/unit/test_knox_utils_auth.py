"""knox's test/utils.test.js, ported, and what auth.test.js checks beyond test_auth_v2.py.

Every case of knox's test/auth.test.js (describe('knox.auth'): .stringToSign(), .sign(),
.authorization() [from the Amazon docs], .canonicalizeHeaders(), .queryStringToSign(),
.canonicalizeResource()) is ported in test_auth_v2.py, class for describe block. This
file holds the rest: knox.utils, and how the module is reached (``knox.auth``,
``knox.utils`` and the old ``knox.version`` case of the pre-mocha knox.test.js).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List

import pytest
from knox_node import needs_knox, run_node

import knoxpy
from knoxpy import auth, utils


class TestKnoxUtils:  # describe('knox.utils')
    def test_base64_encode(self) -> None:  # specify('.base64.encode()')
        assert utils.base64.encode("hey") == "aGV5"

    def test_base64_decode(self) -> None:  # specify('.base64.decode()')
        assert utils.base64.decode("aGV5") == "hey"

    def test_base64_is_utf8_both_ways(self) -> None:  # new Buffer(str) is UTF-8 in Node
        assert utils.base64.encode("ümläüt") == "w7xtbMOkw7x0"
        assert utils.base64.decode("w7xtbMOkw7x0") == "ümläüt"

    def test_base64_decode_is_lenient_as_nodes_buffer(self) -> None:
        # Printed by Node 20's new Buffer(s, 'base64').toString() (knox's utils.base64.decode).
        assert [utils.base64.decode(s) for s in ["aGV", "a", "_-8", "aG!V5", "aGV5=aGV5"]] == [
            "he", "", "\ufffd\ufffd", "hey", "hey"]

    def test_merge_copies_b_into_a_and_returns_a(self) -> None:
        a: Dict[str, Any] = {"style": "path", "bucket": "x"}
        assert utils.merge(a, {"bucket": "y", "key": "k"}) is a
        assert a == {"style": "path", "bucket": "y", "key": "k"}


class TestModule:
    def test_version(self) -> None:  # knox.test.js: 'test .version'
        assert re.match(r"^\d+\.\d+\.\d+$", knoxpy.__version__)

    def test_knox_auth_and_knox_utils_are_exposed(self) -> None:  # lib/index.js
        assert knoxpy.auth is auth and knoxpy.utils is utils

    def test_authorization_is_key_colon_signature(self) -> None:
        options = {"key": "AKID", "secret": "test", "verb": "PUT", "resource": "/learnboost",
                   "md5": "09c68b914d66457508f6ad727d860d5b", "contentType": "text/plain",
                   "date": "Mon, 25 May 1987 00:00:00 GMT"}
        assert auth.authorization(options) == "AWS AKID:" + auth.sign(options)


UTILS_SCRIPT = """
const knox = require(process.argv[1]);
const strings = JSON.parse(process.argv[2]), b64 = JSON.parse(process.argv[3]);
console.log(JSON.stringify({encode: strings.map(s => knox.utils.base64.encode(s)),
                            decode: b64.map(s => knox.utils.base64.decode(s))}));
"""
STRINGS = ["", "hey", "ümläüt", "日本語", "a\nb", "😀", "\x00\x7f"]
B64: List[str] = ["aGV5", "aGV", "aG", "a", "", "w7xtbMOkw7x0", "/+8=", "_-8", "aGV5\n", "8J+YgA",
                  "aGV5=aGV5", "a=GV5", "aG!V5", "aGV5a", "====", "aGV5aG="]


@needs_knox
def test_utils_give_what_knox_gives() -> None:
    want = run_node(UTILS_SCRIPT, STRINGS, B64)
    assert [utils.base64.encode(s) for s in STRINGS] == want["encode"]
    assert [utils.base64.decode(s) for s in B64] == want["decode"]


@pytest.mark.parametrize("name", ["stringToSign", "sign", "authorization", "hmacSha1",
                                  "signQuery", "queryStringToSign", "canonicalizeHeaders",
                                  "canonicalizeResource"])
def test_every_knox_auth_function_exists(name: str) -> None:
    assert callable(getattr(auth, name))
