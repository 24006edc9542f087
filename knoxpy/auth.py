"""Request signing: knox's Signature Version 2 API and the Signature Version 4 signer.

Everything here is a pure function: strings, the secret and the date go in, strings come
out. Nothing reads the clock, does I/O, logs, or keeps the secret in an object.

**Version 2** ports knox's ``lib/auth.js`` name for name (``stringToSign``, ``sign``,
``authorization``, ``hmacSha1``, ``signQuery``, ``queryStringToSign``,
``canonicalizeHeaders``, ``canonicalizeResource``), each taking knox's ``options`` dict,
with snake_case aliases. JavaScript's ``undefined`` is Python's ``None``: a key that is
missing or ``None`` behaves as knox's ``undefined`` does (``''`` where JS joins an array,
``'undefined'`` where JS concatenates strings).

>>> stringToSign({'verb': 'GET', 'date': 'Tue, 27 Mar 2007 19:36:42 +0000',
...               'resource': '/johnsmith/photos/puppy.jpg'})
'GET\\n\\n\\nTue, 27 Mar 2007 19:36:42 +0000\\n/johnsmith/photos/puppy.jpg'

**Version 4** (``sign_v4`` for the ``Authorization`` header, ``presign_v4`` for URLs) signs
the way S3 checks: the path is not normalised and not double-encoded, and the request's
wire form (path, query) is decoded and re-encoded once, as S3 does before it compares.

>>> from datetime import datetime, timedelta, timezone
>>> sign_v4(method='GET', host='examplebucket.s3.amazonaws.com', path='/test.txt',
...         query='', headers={'Range': 'bytes=0-9'}, key='AKIAIOSFODNN7EXAMPLE',
...         secret='wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', region='us-east-1',
...         now=datetime(2013, 5, 24, tzinfo=timezone.utc),
...         payload_hash=EMPTY_SHA256)['Authorization'][-64:]
'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta, timezone
from typing import AbstractSet, Any, Iterable, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote, unquote_to_bytes

from .errors import ValidationError

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "UNSIGNED_PAYLOAD",
    "authorization",
    "canonicalizeHeaders",
    "canonicalizeResource",
    "canonical_headers",
    "canonical_query",
    "canonical_request_v4",
    "canonical_uri",
    "canonicalize_headers",
    "canonicalize_resource",
    "credential_scope",
    "derive_region",
    "hmacSha1",
    "hmac_sha1",
    "post_policy_v4",
    "presign_v4",
    "queryStringToSign",
    "query_string_to_sign",
    "sign",
    "signQuery",
    "sign_query",
    "sign_v4",
    "signature_v4",
    "signing_key",
    "signing_key_steps",
    "stringToSign",
    "string_to_sign",
    "string_to_sign_v4",
    "uri_encode",
    "utc_string",
]

Options = Mapping[str, Any]
HeaderValue = Union[str, int, Sequence[Union[str, int]]]
QueryPairs = Iterable[Tuple[Union[str, bytes], Union[str, bytes, int, None]]]
Query = Union[str, Mapping[str, Union[str, int, None]], QueryPairs, None]


# --------------------------------------------------------------------------------------
# JavaScript value semantics, so that the V2 strings are byte for byte knox's
# --------------------------------------------------------------------------------------

def _js_string(value: Any) -> str:
    """``String(value)`` in JS, with ``None`` standing for ``undefined``."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ",".join("" if item is None else _js_string(item) for item in value)
    return str(value)


def _js_join_part(value: Any) -> str:
    """An element of ``[...].join(sep)`` in JS: ``undefined`` and ``null`` become ``''``."""
    return "" if value is None else _js_string(value)


def _utf8(value: Union[str, bytes]) -> bytes:
    """``Buffer.from(value, 'utf-8')``: a lone surrogate becomes U+FFFD, as in Node."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        units = value.encode("utf-16-le", "surrogatepass")
        return units.decode("utf-16-le", "replace").encode("utf-8")


def _utc(dt: datetime) -> datetime:
    """The instant in UTC. A naive datetime is local time, Python's own rule
    (``datetime.timestamp()``), so ``datetime.now() + timedelta(minutes=5)`` means what it says."""
    return dt.astimezone(timezone.utc)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def utc_string(dt: datetime) -> str:
    """Format ``dt`` as JS ``Date.prototype.toUTCString`` does (the HTTP ``Date`` form).

    Locale-independent; a naive ``dt`` is local time, as everywhere in Python.

    >>> utc_string(datetime(2007, 3, 27, 19, 36, 42, tzinfo=timezone.utc))
    'Tue, 27 Mar 2007 19:36:42 GMT'
    """
    u = _utc(dt)
    return (
        f"{_DAYS[u.weekday()]}, {u.day:02d} {_MONTHS[u.month - 1]} {u.year:04d} "
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d} GMT"
    )


# --------------------------------------------------------------------------------------
# Signature Version 2: knox's auth.js
# --------------------------------------------------------------------------------------

# Query-string parameters permitted in the canonicalized resource (knox's whitelist).
# @see https://docs.aws.amazon.com/AmazonS3/latest/dev/RESTAuthentication.html
_SUBRESOURCES = frozenset(
    [
        "acl", "delete", "lifecycle", "location", "logging", "notification", "partNumber",
        "policy", "requestPayment", "torrent", "uploadId", "uploads", "versionId",
        "versioning", "versions", "website",
    ]
)


def authorization(options: Options) -> str:
    """The ``Authorization`` header value ``'AWS <key>:<signature>'`` (knox ``authorization``).

    ``options`` are those of ``stringToSign`` plus ``key`` and ``secret``.
    """
    return "AWS " + _js_string(options.get("key")) + ":" + sign(options)


def hmacSha1(options: Options) -> str:
    """Base64 HMAC-SHA1 of ``message`` keyed by ``secret`` (knox ``hmacSha1``).

    >>> hmacSha1({'secret': 'key', 'message': 'The quick brown fox jumps over the lazy dog'})
    '3nybhbi3iqa8ino29wqQcBydtNk='
    """
    mac = hmac.new(_utf8(options["secret"]), _utf8(options["message"]), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def sign(options: Options) -> str:
    """Base64 HMAC-SHA1 of ``stringToSign(options)`` (knox ``sign``).

    Unlike knox, ``options`` is not modified (knox leaves ``options.message`` behind).
    """
    return hmacSha1({"secret": options.get("secret"), "message": stringToSign(options)})


def signQuery(options: Options) -> str:
    """Base64 HMAC-SHA1 of ``queryStringToSign(options)``: presigned URLs (knox ``signQuery``)."""
    return hmacSha1({"secret": options.get("secret"), "message": queryStringToSign(options)})


def stringToSign(options: Options) -> str:
    """The V2 string to sign for a request (knox ``stringToSign``).

    ``options``: ``verb``, ``md5``, ``contentType``, ``date`` (a ``datetime``, formatted by
    ``utc_string``, or a string used as is), ``amazonHeaders`` (the output of
    ``canonicalizeHeaders``) and ``resource`` (the output of ``canonicalizeResource``).
    """
    headers = _js_string(options.get("amazonHeaders") or "")
    if headers:
        headers += "\n"
    date = options.get("date")
    if isinstance(date, datetime):
        date = utc_string(date)
    # Spec:
    #
    #    <verb>\n
    #    <md5>\n
    #    <content-type>\n
    #    <date>\n
    #    [headers\n]
    #    <resource>
    return "\n".join(
        [
            _js_join_part(options.get("verb")),
            _js_join_part(options.get("md5")),
            _js_join_part(options.get("contentType")),
            _js_join_part(date),
            headers + _js_string(options.get("resource")),
        ]
    )


def queryStringToSign(options: Options) -> str:
    """The V2 string to sign for a presigned URL (knox ``queryStringToSign``).

    ``options``: ``verb`` (default ``'GET'``), ``contentType``, ``date`` (the expiry in
    seconds since the epoch, or a string; a ``datetime`` is turned into epoch seconds as
    knox's ``signedUrl`` does), ``extraHeaders`` (a headers dict), ``token``, ``resource``.
    As in knox, ``extraHeaders`` adds a line whenever it is given, even if it holds no
    ``x-amz-*`` header.
    """
    date = options.get("date")
    if isinstance(date, datetime):
        date = int(_utc(date).timestamp() // 1)
    content_type = options.get("contentType")
    extra = options.get("extraHeaders")
    token = options.get("token")
    # Spec:
    #
    #    <verb>\n\n
    #    <contentType or nothing>\n
    #    <date>\n
    #    [<canonicalized extraHeaders>\n]
    #    [x-amz-security-token:<token>\n]
    #    <resource>
    return (
        _js_string(options.get("verb") or "GET") + "\n\n"
        + ("" if content_type is None else _js_string(content_type)) + "\n"
        + _js_string(date) + "\n"
        + ("" if extra is None else canonicalizeHeaders(extra) + "\n")
        + ("" if token is None else "x-amz-security-token:" + _js_string(token) + "\n")
        + _js_string(options.get("resource"))
    )


def canonicalizeHeaders(headers: Mapping[str, Any]) -> str:
    """The ``x-amz-*`` headers as V2 signs them (knox ``canonicalizeHeaders``).

    Keeps ``x-amz*`` names except ``x-amz-date``, lower-cases them, sorts by name and joins
    ``name:value`` lines with ``\\n``. Values are not trimmed; a list value is joined with
    ``','`` (JS ``String(array)``), which is also S3's rule for a repeated header. Names
    that differ only in case keep the dict's order (JS leaves that order unspecified).

    >>> canonicalizeHeaders({'X-Amz-Meta-B': '2', 'x-amz-acl': 'private', 'X-Foo': 'bar'})
    'x-amz-acl:private\\nx-amz-meta-b:2'
    """
    lines = []
    for field, value in headers.items():
        name = field.lower()
        if not name.startswith("x-amz") or name == "x-amz-date":
            continue
        lines.append(name + ":" + _js_string(value))
    # Sorted on the name only, comparing UTF-16 code units as JS does.
    lines.sort(key=lambda line: line.split(":")[0].encode("utf-16-be", "surrogatepass"))
    return "\n".join(lines)


def canonicalizeResource(resource: str) -> str:
    """The V2 resource: the path plus S3's sub-resources (knox ``canonicalizeResource``).

    ``resource`` is the URI-encoded ``/bucket/key?query``. As knox does through Node's
    ``url.parse(resource, true)``, the path is kept as it is (but see below) and the query
    is form-decoded; only knox's sub-resources are kept, sorted, as ``key=value`` or a bare
    ``key`` when the value is empty. A repeated sub-resource gives ``key=v1,v2``.

    Node's parser trims outer whitespace, turns ``\\`` into ``/`` before the query and, when
    the resource holds whitespace, ``#`` or ``@``, escapes ``' " < > \\ ^ ` { | }``, space,
    tab and line breaks in the path; a ``#`` ends the resource. All of that is reproduced.
    Not reproduced: a resource starting with a scheme (``a:``) or ``//user@host``, which
    Node would parse as a URL and knox never builds (its resources start with ``/bucket``).

    >>> canonicalizeResource('/bucket/?prefix=logs&acl')
    '/bucket/?acl'
    """
    pathname, query = _node_url_parse(resource)
    buf = []
    for key, value in _node_querystring_parse(query).items():
        if key in _SUBRESOURCES:
            joined = ",".join(value) if isinstance(value, list) else value
            buf.append(key + ("=" + joined if isinstance(value, list) or value else ""))
    # Sub-resource names are ASCII and none is a prefix of another: a plain sort is JS's.
    return ("null" if pathname is None else pathname) + ("?" + "&".join(sorted(buf)) if buf else "")


# Node's legacy url.parse (lib/url.js), reduced to what a '/'-rooted resource can reach.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_SIMPLE_PATH = re.compile(f"(//?(?!/)[^?{_JS_SPACE}]*)(\\?[^{_JS_SPACE}]*)?")
_AUTO_ESCAPE = {ord(c): f"%{ord(c):02X}" for c in "\t\n\r \"'<>\\^`{|}"}
_TRIMMED = "".join(map(chr, range(33))) + "\u00a0\ufeff"


def _node_url_parse(url: str) -> Tuple[Optional[str], Optional[str]]:
    """``(pathname, query)`` as Node's ``url.parse(url)`` gives them (``None`` for null)."""
    rest = url.strip(_TRIMMED)
    split = re.search("[?#]", rest)
    head, tail = (rest[: split.start()], rest[split.start():]) if split else (rest, "")
    rest = head.replace("\\", "/") + tail
    if "#" not in rest and "@" not in head:
        simple = _SIMPLE_PATH.fullmatch(rest)
        if simple:
            search = simple.group(2)
            return simple.group(1), search[1:] if search else None
    rest = rest.translate(_AUTO_ESCAPE)
    rest = rest.split("#", 1)[0]
    path, question, query = rest.partition("?")
    return path or None, query if question else None


def url_pathname(url: str) -> str:
    """Node's ``url.parse(url).pathname`` (knox's ``signedUrl`` signs it), '' for null."""
    return _node_url_parse(url)[0] or ""


def _node_querystring_parse(query: Optional[str]) -> dict[str, Union[str, list[str]]]:
    """Node's ``querystring.parse``: names and values go through ``_node_unescape``, a
    repeated key collects a list, and only the first 1000 ``&``-separated pieces count
    (its ``maxKeys``)."""
    parsed: dict[str, Union[str, list[str]]] = {}
    for piece in query.split("&")[:1000] if query else []:
        if not piece:
            continue
        raw_key, _, raw_value = piece.partition("=")
        key = _node_unescape(raw_key, _PERCENT_BYTE)
        value = _node_unescape(raw_value, _VALUE_ESCAPE)
        seen = parsed.get(key)
        if seen is None:
            parsed[key] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            parsed[key] = [seen, value]
    return parsed


_BAD_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")
_PERCENT_BYTE = re.compile("%[0-9A-Fa-f]{2}")
# Node's scan for "holds an escape": '+' (already a space) is skipped over inside a value.
_VALUE_ESCAPE = re.compile(r"%\+*[0-9A-Fa-f]\+*[0-9A-Fa-f]")


def _node_unescape(text: str, escape: re.Pattern[str]) -> str:
    """A query name or value as Node's ``querystring.parse`` decodes it.

    ``+`` is a space. The rest is left alone unless Node's scan finds a ``%XX`` (``escape``).
    Then ``decodeURIComponent``; when that throws (a stray ``%``, bad UTF-8), Node's
    ``unescapeBuffer``: ``%XX`` becomes the byte, any other character the low byte of its
    UTF-16 code unit (so ``ü`` is byte 0xFC), then the bytes are read as UTF-8 with U+FFFD.
    """
    plain = text.replace("+", " ")
    if not escape.search(text):
        return plain
    if not _BAD_PERCENT.search(plain):
        try:
            return unquote_to_bytes(plain).decode("utf-8")
        except UnicodeError:
            pass
    out = bytearray()
    last = 0
    for byte in _PERCENT_BYTE.finditer(plain):
        out += plain[last : byte.start()].encode("utf-16-le", "surrogatepass")[0::2]
        out.append(int(byte.group()[1:], 16))
        last = byte.end()
    out += plain[last:].encode("utf-16-le", "surrogatepass")[0::2]
    return out.decode("utf-8", "replace")


def _form_decode(text: str) -> bytes:
    """Decode a query name or value from the wire: ``+`` is a space, ``%XX`` a byte."""
    return unquote_to_bytes(text.replace("+", " "))


hmac_sha1 = hmacSha1
sign_query = signQuery
string_to_sign = stringToSign
query_string_to_sign = queryStringToSign
canonicalize_headers = canonicalizeHeaders
canonicalize_resource = canonicalizeResource


# --------------------------------------------------------------------------------------
# Signature Version 4
# --------------------------------------------------------------------------------------

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600

# Headers never signed: hop-by-hop or rewritten by proxies (botocore's list), and the
# Authorization header itself.
_UNSIGNABLE = frozenset(
    [
        "authorization", "baggage", "connection", "expect", "keep-alive",
        "proxy-authenticate", "proxy-authorization", "te", "traceparent", "tracestate",
        "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    ]
)
# Query parameters that presign_v4 itself sets.
_PRESIGN_PARAMS = frozenset(
    name.lower()
    for name in (
        "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
        "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature",
    )
)


def derive_region(region: Optional[str]) -> str:
    """The region to sign for: knox's ``'us-standard'`` (and no region) is ``us-east-1``."""
    return "us-east-1" if region in (None, "", "us-standard") else str(region)


def uri_encode(text: Union[str, bytes], encode_slash: bool = True) -> str:
    """AWS ``UriEncode``: keep ``A-Za-z0-9-_.~``, write every other UTF-8 byte as ``%XX``.

    >>> uri_encode('a b/ü*'), uri_encode('a b/ü*', encode_slash=False)
    ('a%20b%2F%C3%BC%2A', 'a%20b/%C3%BC%2A')
    """
    return quote(text, safe="" if encode_slash else "/")


@functools.lru_cache(maxsize=4096)  # pure, and called for every request
def canonical_uri(path: str) -> str:
    """The canonical URI of a path as it goes on the wire.

    S3 decodes the path it receives and encodes each byte once; unlike other services it
    neither removes ``.``/``..`` segments nor merges ``//``. So ``/my%20key``, ``/my key``
    and knox's ``/a%2bb`` for ``/a+b`` all canonicalise like S3 does. A ``+`` in a path is
    a plus. A ``%`` not followed by two hex digits is taken literally.

    >>> canonical_uri('/photos//te$t%20file.jpg')
    '/photos//te%24t%20file.jpg'
    """
    return uri_encode(unquote_to_bytes(path), encode_slash=False) or "/"


def _query_pairs(query: Query) -> list[tuple[bytes, bytes]]:
    """Decoded ``(name, value)`` pairs of a wire query string, a mapping or pairs.

    In a wire query ``+`` is a space, as S3 reads it (form encoding): S3 accepts a URL
    that carries ``a+b`` for a signature computed over ``a%20b``. Empty pieces (``a&&b``)
    are no parameters. A ``None`` value is a bare name (``?acl``), signed as ``acl=``.
    """
    if query is None:
        return []
    if isinstance(query, str):
        pieces = (piece.partition("=") for piece in query.removeprefix("?").split("&") if piece)
        return [(_form_decode(name), _form_decode(value)) for name, _, value in pieces]
    items = query.items() if isinstance(query, Mapping) else query
    return [(_as_bytes(name), _as_bytes(value)) for name, value in items]


def _as_bytes(value: Union[str, bytes, int, None]) -> bytes:
    return b"" if value is None else _utf8(value if isinstance(value, bytes) else str(value))


def canonical_query(query: Query) -> str:
    """The canonical query string: names and values ``uri_encode``d, sorted by name then value.

    ``query`` is the raw wire query (``'prefix=a%20b&max-keys=5'``, ``'acl'``), a mapping
    or a sequence of decoded ``(name, value)`` pairs.

    >>> canonical_query('prefix=a+b&acl&max-keys=5')
    'acl=&max-keys=5&prefix=a%20b'
    """
    if not query:  # most requests: nothing to encode or sort
        return ""
    pairs = sorted((uri_encode(name), uri_encode(value)) for name, value in _query_pairs(query))
    return "&".join(f"{name}={value}" for name, value in pairs)


def _trimall(value: Union[str, int]) -> str:
    """Trim the value and turn each run of whitespace into one space (as botocore does)."""
    return " ".join(str(value).split())


def _merged_values(headers: Mapping[str, HeaderValue], skip: AbstractSet[str] = frozenset()
                   ) -> dict[str, str]:
    """Lower-case name -> trimmed value (a repeated header's values joined by ``,``), for
    every header whose name is not in ``skip``."""
    merged: dict[str, str] = {}
    for name, value in headers.items():
        key = name.strip().lower()
        if key in skip:
            continue
        if type(value) is str:  # what knoxpy's client sends: trimmed without a call
            text = " ".join(value.split())
        else:
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            text = (_trimall(value) if isinstance(value, (str, int))
                    else ",".join([_trimall(v) for v in value]))
        known = merged.get(key)
        merged[key] = text if known is None else f"{known},{text}"
    return merged


def canonical_headers(headers: Mapping[str, HeaderValue]) -> Tuple[str, str]:
    """``(canonical headers, signed headers)`` for the headers to sign.

    Names are lower-cased and sorted; values trimmed, inner whitespace runs collapsed; the
    values of a repeated header (a list value, or names differing in case) joined by ``,``.

    >>> canonical_headers({'Host': 'b.s3.amazonaws.com', 'X-Amz-Meta-A': ['1', ' x  y ']})
    ('host:b.s3.amazonaws.com\\nx-amz-meta-a:1,x y\\n', 'host;x-amz-meta-a')
    """
    merged = _merged_values(headers)
    names = sorted(merged)
    return "".join([f"{name}:{merged[name]}\n" for name in names]), ";".join(names)


def canonical_request_v4(
    method: str, path: str, query: Query, headers: Mapping[str, HeaderValue], payload_hash: str
) -> str:
    """The V4 canonical request. ``headers`` are exactly the headers to sign (with ``host``)."""
    block, signed = canonical_headers(headers)
    # Spec:
    #
    #    <HTTPMethod>\n
    #    <CanonicalURI>\n
    #    <CanonicalQueryString>\n
    #    <CanonicalHeaders>\n      (each 'name:value\n', so an empty line follows them)
    #    <SignedHeaders>\n
    #    <HashedPayload>
    return "\n".join(
        [method, canonical_uri(path), canonical_query(query), block, signed, payload_hash]
    )


def credential_scope(date_stamp: str, region: str, service: str = "s3") -> str:
    """``<yyyymmdd>/<region>/<service>/aws4_request``."""
    return f"{date_stamp}/{region}/{service}/aws4_request"


def string_to_sign_v4(amz_date: str, scope: str, canonical_request: str) -> str:
    """The V4 string to sign for a canonical request."""
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    # Spec:
    #
    #    AWS4-HMAC-SHA256\n
    #    <timestamp, yyyymmddThhmmssZ>\n
    #    <scope>\n
    #    Hex(SHA256(<canonical request>))
    return "\n".join([ALGORITHM, amz_date, scope, digest])


def content_md5(body: Union[bytes, bytearray, memoryview]) -> str:
    """The ``Content-MD5`` header of a body: base64 of its MD5 digest (RFC 1864).

    >>> content_md5(b'hello')
    'XUFAKrxLKna5cZ2REBfFkg=='
    """
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")


def _hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.digest(key, message.encode("utf-8"), "sha256")  # the one-shot C path


def signing_key_steps(secret: str, date_stamp: str, region: str, service: str = "s3"
                      ) -> list[Tuple[str, str, bytes]]:
    """The four HMAC steps from the secret to the signing key: ``(name, input, key)``.

    Each key is as secret as the secret for its day: show them truncated, if at all.

    >>> [name for name, _, _ in signing_key_steps('s', '20130524', 'us-east-1')]
    ['kDate', 'kRegion', 'kService', 'kSigning']
    """
    # Spec: HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
    key = _utf8("AWS4" + secret)
    steps = []
    for name, part in zip(("kDate", "kRegion", "kService", "kSigning"),
                          (date_stamp, region, service, "aws4_request")):
        key = _hmac_sha256(key, part)
        steps.append((name, part, key))
    return steps


@functools.lru_cache(maxsize=64)
def signing_key(secret: str, date_stamp: str, region: str, service: str = "s3") -> bytes:
    """The V4 signing key, derived from the secret for one day, region and service.

    Pure, so it is cached: a client signs every request of a day with the same key.
    """
    return signing_key_steps(secret, date_stamp, region, service)[-1][2]


_DaySigner = Tuple[str, "hashlib._Hash", "hashlib._Hash"]


@functools.lru_cache(maxsize=64)
def _day_signer(secret: str, date_stamp: str, region: str, service: str) -> _DaySigner:
    """``(credential scope, inner, outer)``: what signing every request of one day, region
    and service takes, made once (the scope, and the signing key's prepared HMAC states)."""
    inner, outer = _prepared_hmac(signing_key(secret, date_stamp, region, service))
    return credential_scope(date_stamp, region, service), inner, outer


def _sign_traced(signer: _DaySigner, secret: str, amz_date: str, request: str,
                 trace: Optional[dict[str, Any]]) -> str:
    """The signature of a canonical request; ``trace`` (when given) receives each step."""
    scope, inner, outer = signer
    string = string_to_sign_v4(amz_date, scope, request)
    signature = _hmac_hex(inner, outer, string)
    if trace is not None:  # the teaching mode (knoxpy._explain) shows how it was built
        date_stamp, region, service, _ = scope.split("/")
        trace.update(version=4, canonical_request=request, string_to_sign=string, scope=scope,
                     signature=signature,
                     key_steps=signing_key_steps(secret, date_stamp, region, service))
    return signature


def signature_v4(key: bytes, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign with the signing key."""
    return _hmac_hex(*_prepared_hmac(key), string_to_sign)


def _hmac_hex(inner: hashlib._Hash, outer: hashlib._Hash, message: str) -> str:
    """Hex HMAC (RFC 2104) of ``message`` from copies of the key's two padded hash states
    (:func:`_prepared_hmac`): no OpenSSL HMAC context or digest lookup per request (a
    third of the signing's cost)."""
    mac = inner.copy()
    mac.update(message.encode("utf-8"))
    done = outer.copy()
    done.update(mac.digest())
    return done.hexdigest()


@functools.lru_cache(maxsize=64)
def _prepared_hmac(key: bytes) -> Tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states that have taken ``key`` XOR ipad and XOR opad (the key is shorter
    than SHA-256's 64-byte block: a signing key is 32 bytes, else hashed first)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(64, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in padded)),
            hashlib.sha256(bytes(b ^ 0x5C for b in padded)))


def _timestamps(now: datetime) -> Tuple[str, str]:
    """``(amz_date, date_stamp)``: ``20130524T000000Z`` and ``20130524``."""
    global _last_stamp
    now = _utc(now)
    start, end, stamps = _last_stamp
    # Many requests share a second: the last one's stamps are reused while ``now`` is in
    # it, told by two comparisons (strftime is slow, and so is replace(): ~9k instructions)
    if start <= now < end:
        return stamps
    start = now.replace(microsecond=0)
    amz_date = start.strftime("%Y%m%dT%H%M%SZ")
    stamps = (amz_date, amz_date[:8])
    _last_stamp = (start, start + _SECOND, stamps)
    return stamps


_SECOND = timedelta(seconds=1)
_NO_STAMP = datetime.min.replace(tzinfo=timezone.utc)
# (the second the stamps were made for, the next second, the stamps): one tuple, replaced
# whole, so that threads signing at once read a consistent one
_last_stamp: Tuple[datetime, datetime, Tuple[str, str]] = (_NO_STAMP, _NO_STAMP, ("", ""))


def _signed_headers(host: str, headers: Mapping[str, HeaderValue], added: Mapping[str, str]
                    ) -> dict[str, str]:
    """``host``, the caller's signable headers and the signer's own (which win): lower-case
    names and their canonical values."""
    signed = _merged_values(headers, _UNSIGNABLE)
    signed["host"] = " ".join(host.split())  # replaces any the caller gave, as the signer's own do
    for name, value in added.items():
        signed[name] = " ".join(value.split())
    return signed


def sign_v4(
    *,
    method: str,
    host: str,
    path: str,
    query: Query,
    headers: Mapping[str, HeaderValue],
    key: str,
    secret: str,
    region: Optional[str],
    now: datetime,
    payload_hash: str,
    token: Optional[str] = None,
    service: str = "s3",
    trace: Optional[dict[str, Any]] = None,
) -> dict[str, str]:
    """Sign a request with V4 in the ``Authorization`` header; return the headers to add.

    ``host`` is the exact ``Host`` header that will be sent (with the port when it is not
    the scheme's default); ``path`` and ``query`` are as they go on the wire. Every header
    in ``headers`` is signed except hop-by-hop ones, ``User-Agent``, ``Expect`` and
    ``Authorization``. The result holds ``x-amz-date``, ``x-amz-content-sha256``
    (``payload_hash``: a hex SHA-256, ``UNSIGNED_PAYLOAD``...), ``x-amz-security-token``
    when there is a ``token``, and ``Authorization``; they replace any of the same name.

    A ``trace`` dict, when given, receives the steps: ``canonical_request``,
    ``string_to_sign``, ``scope``, ``key_steps`` and ``signature``.
    """
    amz_date, date_stamp = _timestamps(now)
    added = {"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    if token:
        added["x-amz-security-token"] = token
    signer = _day_signer(secret, date_stamp, derive_region(region), service)
    # Every request is signed, and a dozen small calls cost more than the hashing: the
    # canonical request is built here in one pass over the merged headers.
    merged = _signed_headers(host, headers, added)
    names = sorted(merged)
    signed_headers = ";".join(names)
    block = "".join([f"{name}:{merged[name]}\n" for name in names])
    request = "\n".join([method, canonical_uri(path), canonical_query(query), block,
                         signed_headers, payload_hash])
    signature = _sign_traced(signer, secret, amz_date, request, trace)
    added["Authorization"] = (
        f"{ALGORITHM} Credential={key}/{signer[0]}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return added


def presign_v4(
    *,
    method: str,
    host: str,
    path: str,
    query: Query,
    key: str,
    secret: str,
    region: Optional[str],
    now: datetime,
    expires: int,
    token: Optional[str] = None,
    headers: Optional[Mapping[str, HeaderValue]] = None,
    service: str = "s3",
    trace: Optional[dict[str, Any]] = None,
) -> str:
    """Presign a request with V4; return the query string to put after ``path?``.

    The result is the canonical query (``X-Amz-Algorithm``, ``X-Amz-Credential``,
    ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-Security-Token`` with a ``token``,
    ``X-Amz-SignedHeaders`` and the caller's ``query``, all sorted and encoded) followed by
    ``&X-Amz-Signature=...``: the URL carries exactly what was signed. The payload is
    ``UNSIGNED-PAYLOAD``; ``headers`` (say a ``Content-Type`` the uploader must send) are
    signed with ``host``. ``expires`` is in seconds, 1 to 604800 (7 days), S3's limit.
    ``trace`` as for :func:`sign_v4`.
    """
    if isinstance(expires, bool) or not isinstance(expires, int) or not (
        1 <= expires <= MAX_PRESIGN_EXPIRES
    ):
        raise ValidationError(
            f"expires must be a whole number of seconds from 1 to {MAX_PRESIGN_EXPIRES} "
            f"(7 days, the longest a V4 presigned URL may live); got {expires!r}"
        )
    given = _query_pairs(query)
    names = {name.decode("utf-8", "replace") for name, _ in given}
    clash = sorted(name for name in names if name.lower() in _PRESIGN_PARAMS)
    if clash:
        raise ValidationError(f"query must not set {', '.join(clash)}: presign_v4 sets it")
    amz_date, date_stamp = _timestamps(now)
    signer = _day_signer(secret, date_stamp, derive_region(region), service)
    scope = signer[0]
    signed = _signed_headers(host, headers or {}, {})
    auth: list[tuple[bytes, bytes]] = [
        (b"X-Amz-Algorithm", ALGORITHM.encode()),
        (b"X-Amz-Credential", _utf8(f"{key}/{scope}")),
        (b"X-Amz-Date", amz_date.encode()),
        (b"X-Amz-Expires", str(expires).encode()),
        (b"X-Amz-SignedHeaders", ";".join(sorted(signed)).encode()),
    ]
    if token:
        auth.append((b"X-Amz-Security-Token", _utf8(token)))
    request = canonical_request_v4(method, path, auth + given, signed, UNSIGNED_PAYLOAD)
    signature = _sign_traced(signer, secret, amz_date, request, trace)
    return canonical_query(auth + given) + "&X-Amz-Signature=" + signature


def post_policy_v4(
    *,
    bucket: str,
    key: str,
    key_id: str,
    secret: str,
    region: Optional[str],
    now: datetime,
    expires: int,
    conditions: Sequence[Any] = (),
    fields: Optional[Mapping[str, str]] = None,
    token: Optional[str] = None,
) -> dict[str, str]:
    """The form fields of a V4 presigned POST (a browser upload straight to S3).

    ``key`` may end in ``${filename}`` (S3 puts the uploaded file's name there; the policy
    then asks for a key that starts with the rest). ``fields`` (``Content-Type``, ``acl``,
    ``success_action_status``...) go in the form, and each is also made a condition, so
    the policy allows exactly the form it comes with; ``conditions`` add the caller's own
    (``["content-length-range", 0, 10485760]``, ``["starts-with", "$Content-Type",
    "image/"]``). ``expires``: seconds from ``now``. ``token`` adds
    ``x-amz-security-token``.

    >>> from datetime import datetime, timedelta, timezone
    >>> form = post_policy_v4(bucket='b', key='up/${filename}', key_id='AKID', secret='s',
    ...     region='us-east-1', now=datetime(2026, 1, 1, tzinfo=timezone.utc), expires=300)
    >>> sorted(form)
    ['key', 'policy', 'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-signature']
    """
    # Spec (S3 API, "Authenticating Requests: Browser-Based Uploads Using POST"):
    #
    #    policy    = Base64(UTF-8 JSON {"expiration": ISO 8601, "conditions": [...]})
    #    signature = Hex(HMAC-SHA256(signing key of <date>/<region>/s3, policy))
    #
    # The conditions name the bucket, the key, x-amz-algorithm, x-amz-credential and
    # x-amz-date (and x-amz-security-token); the form carries the same values.
    if isinstance(expires, bool) or not isinstance(expires, int) or expires < 1:
        raise ValidationError(f"expires must be a whole number of seconds, 1 or more; got "
                              f"{expires!r}")
    amz_date, date_stamp = _timestamps(now)
    scope = credential_scope(date_stamp, derive_region(region))
    form: dict[str, str] = {"key": key}
    form.update({str(k): str(v) for k, v in (fields or {}).items()})
    form.update({"x-amz-algorithm": ALGORITHM, "x-amz-credential": f"{key_id}/{scope}",
                 "x-amz-date": amz_date})
    if token:
        form["x-amz-security-token"] = token
    wildcard = "${filename}"
    policy_conditions: list[Any] = [{"bucket": bucket}]
    if key.endswith(wildcard):
        policy_conditions.append(["starts-with", "$key", key[: -len(wildcard)]])
    else:
        policy_conditions.append({"key": key})
    policy_conditions += list(conditions)
    policy_conditions += [{name: value} for name, value in form.items() if name != "key"]
    expiration = _utc(now).replace(microsecond=0) + timedelta(seconds=expires)
    document = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "conditions": policy_conditions}
    policy = base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")
    form["policy"] = policy
    form["x-amz-signature"] = signature_v4(signing_key(secret, date_stamp, scope.split("/")[1]),
                                           policy)
    return form
