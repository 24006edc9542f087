"""knox's test/createClient.test.js, every case, ported; and checked against knox itself.

Each class is one ``describe`` block of knox's file, each parametrized id one ``it``.
knox matches its messages with regular expressions; these tests hold the whole
message, word for word, as knox builds it (and, when Node and knox are installed,
the same options are run through knox to prove it: see ``test/knox_node.py``).

The older, pre-mocha cases of knox's test/knox.test.js ('test .createClient() ...')
are at the end, with what knox 0.9.2 really does where it changed since.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest
from knox_node import needs_knox, run_node

import knoxpy
from knoxpy.errors import ValidationError

BASE = {"key": "foobar", "secret": "baz", "bucket": "misc"}
FOO = {"key": "foo", "secret": "bar"}


def _raises(options: Dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        knoxpy.createClient(options)
    # knox throws a plain Error: knoxpy's ValidationError is a ValueError, not a subclass of
    # anything surprising, and its str() is the message alone.
    assert isinstance(info.value, ValueError)
    return str(info.value)


# describe('knox.createClient()') > describe('invalid options')
INVALID: List[Tuple[str, Dict[str, Any], str]] = [
    ("should ask for a key when nothing is passed", {}, 'aws "key" required'),
    ("should ask for a secret when only a key is passed", {"key": "foo"},
     'aws "secret" required'),
    ("should ask for a bucket when only a key and secret are passed", dict(FOO),
     'aws "bucket" required'),
    ("should throw when an invalid style is given", dict(FOO, bucket="bucket", style="gangnam"),
     'style must be "virtualHosted" or "path"'),
    ("should throw when an invalid port", dict(FOO, bucket="bucket", port=""),
     "port must be a number."),
    # describe('bucket names') > describe('in us-standard region')
    ("us-standard: should throw when bucket names are too short", dict(FOO, bucket="bu"),
     'Bucket name "bu" is less than 3 characters.'),
    ("us-standard: should throw when bucket names are too long", dict(FOO, bucket="b" * 256),
     f'Bucket name "{"b" * 256}" is more than 255 characters.'),
    ("us-standard: should throw when bucket names contain invalid characters",
     dict(FOO, bucket="buc!ket"), 'Bucket name "buc!ket" contains invalid characters.'),
    # describe('in us-west-1 region')
    ("us-west-1: should throw when bucket names are too long",
     dict(FOO, bucket="b" * 64, region="us-west-1"),
     "Outside of the us-standard region, bucket names must be DNS-compliant. "
     f'The name "{"b" * 64}" is more than 63 characters.'),
    ("us-west-1: should throw when bucket names contain invalid characters",
     dict(FOO, bucket="buck_et", region="us-west-1"),
     "Outside of the us-standard region, bucket names must be DNS-compliant. "
     'The name "buck_et" does not consist of valid period-separated labels.'),
    ("us-west-1: should throw when bucket names look like IPv4 addresses",
     dict(FOO, bucket="192.0.0.12", region="us-west-1"),
     "Outside of the us-standard region, bucket names must be DNS-compliant. "
     'The name "192.0.0.12" is formatted as an IPv4 address.'),
    # describe('when forcing virtual hosted style')
    ("virtualHosted: should throw when bucket names are too long",
     dict(FOO, bucket="b" * 64, style="virtualHosted"),
     'Cannot use "virtualHosted" style with a DNS-uncompliant bucket name: '
     f'"{"b" * 64}" is is more than 63 characters.'),
    ("virtualHosted: should throw when bucket names contain invalid characters",
     dict(FOO, bucket="buck_et", style="virtualHosted"),
     'Cannot use "virtualHosted" style with a DNS-uncompliant bucket name: '
     '"buck_et" is does not consist of valid period-separated labels.'),
    ("virtualHosted: should throw when bucket names look like IPv4 addresses",
     dict(FOO, bucket="192.0.0.12", style="virtualHosted"),
     'Cannot use "virtualHosted" style with a DNS-uncompliant bucket name: '
     '"192.0.0.12" is is formatted as an IPv4 address.'),
]


class TestInvalidOptions:  # describe('invalid options'), with describe('bucket names') inside
    @pytest.mark.parametrize("options,message", [c[1:] for c in INVALID],
                             ids=[c[0] for c in INVALID])
    def test_throws_knoxs_message(self, options: Dict[str, Any], message: str) -> None:
        assert _raises(options) == message

    def test_the_callers_options_are_not_changed(self) -> None:
        options = dict(FOO, bucket="buck_et", region="us-west-1")
        _raises(options)
        assert options == dict(FOO, bucket="buck_et", region="us-west-1")


# describe('valid options'): (it, options, secure, style, region, endpoint, url('file'))
VALID: List[Tuple[str, Dict[str, Any], bool, str, Any, str, str]] = [
    # describe('with virtual hosted style')
    ("virtualHosted: should use a default region and endpoint given a bucket",
     dict(BASE, style="virtualHosted"),
     True, "virtualHosted", "us-standard", "s3.amazonaws.com", "https://misc.s3.amazonaws.com/file"),
    ("virtualHosted: should use a custom endpoint directly",
     dict(BASE, endpoint="objects.dreamhost.com", style="virtualHosted"),
     True, "virtualHosted", None, "objects.dreamhost.com",
     "https://misc.objects.dreamhost.com/file"),
    ("virtualHosted: should derive endpoint correctly from a region",
     dict(BASE, style="virtualHosted", region="us-west-1"),
     True, "virtualHosted", "us-west-1", "s3-us-west-1.amazonaws.com",
     "https://misc.s3-us-west-1.amazonaws.com/file"),
    ("virtualHosted: should derive endpoint correctly from explicit us-standard region",
     dict(BASE, style="virtualHosted", region="us-standard"),
     True, "virtualHosted", "us-standard", "s3.amazonaws.com", "https://misc.s3.amazonaws.com/file"),
    ("virtualHosted: should derive endpoint correctly from explicit us-east-1 region",
     dict(BASE, style="virtualHosted", region="us-east-1"),
     True, "virtualHosted", "us-standard", "s3.amazonaws.com", "https://misc.s3.amazonaws.com/file"),
    ("virtualHosted: should set secure to false and update the URL when given a port",
     dict(BASE, style="virtualHosted", region="us-west-1", port=1234),
     False, "virtualHosted", "us-west-1", "s3-us-west-1.amazonaws.com",
     "http://misc.s3-us-west-1.amazonaws.com:1234/file"),
    ("virtualHosted: should let secure set to true override custom port defaulting it to false",
     dict(BASE, style="virtualHosted", region="us-west-1", port=1234, secure=True),
     True, "virtualHosted", "us-west-1", "s3-us-west-1.amazonaws.com",
     "https://misc.s3-us-west-1.amazonaws.com:1234/file"),
    # describe('with path style')
    ("path: should use a default region and endpoint given a bucket",
     dict(BASE, style="path"),
     True, "path", "us-standard", "s3.amazonaws.com", "https://s3.amazonaws.com/misc/file"),
    ("path: should use a custom endpoint directly",
     dict(BASE, style="path", endpoint="objects.dreamhost.com"),
     True, "path", None, "objects.dreamhost.com", "https://objects.dreamhost.com/misc/file"),
    ("path: should derive endpoint correctly from a region",
     dict(BASE, style="path", region="us-west-1"),
     True, "path", "us-west-1", "s3-us-west-1.amazonaws.com",
     "https://s3-us-west-1.amazonaws.com/misc/file"),
    ("path: should derive endpoint correctly from explicit us-standard region",
     dict(BASE, style="path", region="us-standard"),
     True, "path", "us-standard", "s3.amazonaws.com", "https://s3.amazonaws.com/misc/file"),
    ("path: should set secure to false and update the URL when given a port",
     dict(BASE, style="path", region="us-west-1", port=1234),
     False, "path", "us-west-1", "s3-us-west-1.amazonaws.com",
     "http://s3-us-west-1.amazonaws.com:1234/misc/file"),
    ("path: should let secure set to true override custom port defaulting it to false",
     dict(BASE, style="path", region="us-west-1", port=1234, secure=True),
     True, "path", "us-west-1", "s3-us-west-1.amazonaws.com",
     "https://s3-us-west-1.amazonaws.com:1234/misc/file"),
    # describe('with automatic style determination')
    ("auto: should choose virtual hosted style by default", dict(BASE),
     True, "virtualHosted", "us-standard", "s3.amazonaws.com", "https://misc.s3.amazonaws.com/file"),
    ("auto: should choose path style if the bucket name contains a period",
     dict(BASE, bucket="misc.bucket"),
     True, "path", "us-standard", "s3.amazonaws.com", "https://s3.amazonaws.com/misc.bucket/file"),
    ("auto: should choose path style if the bucket name contains an upper-case character",
     dict(BASE, bucket="MiscBucket"),
     True, "path", "us-standard", "s3.amazonaws.com", "https://s3.amazonaws.com/MiscBucket/file"),
    ("auto: should choose path style if the bucket name contains a non-DNS-compliant character",
     dict(BASE, bucket="misc_bucket"),
     True, "path", "us-standard", "s3.amazonaws.com", "https://s3.amazonaws.com/misc_bucket/file"),
    ("auto: should choose path style if the bucket name starts with a dash",
     dict(BASE, bucket="-bucket"),
     True, "path", "us-standard", "s3.amazonaws.com", "https://s3.amazonaws.com/-bucket/file"),
    ("auto: should choose virtual hosted style if the bucket name contains a period but secure "
     "is set to false", dict(BASE, bucket="misc.bucket", secure=False),
     False, "virtualHosted", "us-standard", "s3.amazonaws.com",
     "http://misc.bucket.s3.amazonaws.com/file"),
]


def _attributes(client: Any) -> Tuple[Any, ...]:
    return (client.secure, client.style, client.region, client.endpoint, client.url("file"))


class TestValidOptions:  # describe('valid options')
    def test_should_copy_over_basic_properties(self) -> None:
        client = knoxpy.createClient(BASE)
        assert (client.key, client.secret, client.bucket) == ("foobar", "baz", "misc")

    @pytest.mark.parametrize("options,secure,style,region,endpoint,url", [c[1:] for c in VALID],
                             ids=[c[0] for c in VALID])
    def test_attributes(self, options: Dict[str, Any], secure: bool, style: str, region: Any,
                        endpoint: str, url: str) -> None:
        client = knoxpy.createClient(options)
        assert _attributes(client) == (secure, style, region, endpoint, url)
        # 'should use a custom endpoint directly' also checks `client.domain` is undefined.
        assert getattr(client, "domain", None) is None

    def test_keyword_arguments_are_the_same_as_a_dict(self) -> None:
        for _, options, *_rest in VALID:
            assert _attributes(knoxpy.createClient(**options)) == _attributes(
                knoxpy.createClient(options))


# The pre-mocha cases of knox's test/knox.test.js and test/createClient.test.js.
class TestOlderKnoxCases:  # module.exports = { 'test .createClient() ...' }
    def test_createClient_invalid(self) -> None:
        assert _raises({}) == 'aws "key" required'
        assert _raises({"key": "foo"}) == 'aws "secret" required'
        assert _raises(dict(FOO)) == 'aws "bucket" required'
        # knox once refused 'BuCkEt' ("bucket names must be all lower case"); knox 0.9.2
        # accepts it in us-standard and picks path style, and so does knoxpy.
        client = knoxpy.createClient(dict(FOO, bucket="BuCkEt"))
        assert (client.style, client.url("x")) == ("path", "https://s3.amazonaws.com/BuCkEt/x")

    def test_createClient_valid(self) -> None:
        client = knoxpy.createClient(BASE)
        assert (client.key, client.secret, client.bucket) == ("foobar", "baz", "misc")
        # Old knox put the bucket into `endpoint`; 0.9.2 keeps it in `host`.
        assert (client.endpoint, client.host) == ("s3.amazonaws.com", "misc.s3.amazonaws.com")

    def test_createClient_custom_endpoint(self) -> None:
        client = knoxpy.createClient(dict(BASE, endpoint="s3-eu-west-1.amazonaws.com"))
        assert client.endpoint == "s3-eu-west-1.amazonaws.com"

    def test_createClient_custom_domain(self) -> None:
        # `domain` is gone from knox 0.9.2: it is kept as an attribute and otherwise ignored.
        client = knoxpy.createClient(dict(BASE, domain="objects.dreamhost.com"))
        assert (client.endpoint, client.host) == ("s3.amazonaws.com", "misc.s3.amazonaws.com")

    def test_createClient_region_is_us_west_1(self) -> None:
        client = knoxpy.createClient(dict(BASE, region="us-west-1"))
        assert client.host == "misc.s3-us-west-1.amazonaws.com"

    def test_createClient_region_explicitly_us_standard(self) -> None:
        client = knoxpy.createClient(dict(BASE, region="us-standard"))
        assert client.host == "misc.s3.amazonaws.com"


# -- the same options through knox itself ---------------------------------------------------
NODE_SCRIPT = """
const knox = require(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
console.log(JSON.stringify(cases.map(o => {
  try {
    const c = knox.createClient(o);
    return {attrs: [c.secure, c.style, c.region === undefined ? null : c.region, c.endpoint,
                    c.url('file')], host: c.host, urlBase: c.urlBase,
            domain: c.domain === undefined ? null : c.domain};
  } catch (e) { return {error: e.message}; }
})));
"""


@needs_knox
def test_every_case_gives_what_knox_gives() -> None:
    cases = [c[1] for c in INVALID] + [c[1] for c in VALID] + [
        dict(FOO, bucket="BuCkEt"), dict(BASE, domain="objects.dreamhost.com"),
        dict(BASE, region="us-west-1"), dict(BASE, endpoint="s3-eu-west-1.amazonaws.com"),
    ]
    for options, want in zip(cases, run_node(NODE_SCRIPT, cases)):
        if "error" in want:
            assert _raises(options) == want["error"], options
            continue
        client = knoxpy.createClient(options)
        assert list(_attributes(client)) == want["attrs"], options
        assert (client.host, client.urlBase) == (want["host"], want["urlBase"]), options
        assert getattr(client, "domain", None) == want["domain"], options
