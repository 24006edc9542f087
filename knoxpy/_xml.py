"""Every XML shape knoxpy reads from S3 or sends to it, in one place: pure functions.

Parsing is safe: a document type declaration (where entity-expansion and
external-entity attacks live) is refused outright, documents over
``MAX_XML_BYTES`` are refused, and malformed XML raises :class:`MalformedXML`
naming what was expected.

Parsing is tolerant of what real S3-compatible stores send: a root named
``...Response`` where AWS documents ``...Result`` (moto's ``ListPartsResponse``),
namespace prefixes (``<s3:Key>``), attributes, and whitespace or a BOM before the
document (S3 pads a slow 200 answer with whitespace). A required field that is
missing is a :class:`MalformedXML` naming it.
"""
from __future__ import annotations

import datetime as _dt
import functools
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from xml.parsers.expat import ExpatError

from . import _validate
from ._js import Record
from .errors import KnoxError, PreconditionFailed, S3Error

__all__ = [
    "MalformedXML",
    "build_complete_multipart",
    "build_delete",
    "build_restore",
    "build_tagging",
    "error_from",
    "error_in_200",
    "may_fail_in_200",
    "parse",
    "parse_complete_multipart",
    "parse_copy_result",
    "parse_delete_result",
    "parse_error",
    "parse_initiate_multipart",
    "parse_list",
    "parse_list_multipart_uploads",
    "parse_list_parts",
    "parse_tagging",
    "parse_versions",
    "peek_next_token",
    "peek_next_version",
    "region_from_error",
    "too_large",
    "unreadable_answer",
]

MAX_XML_BYTES = 64 * 1024 * 1024
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_LEADING = b" \t\r\n\xef\xbb\xbf"  # whitespace (S3's keep-alive padding) and a UTF-8 BOM
# The name of the first element, past an XML declaration and comments.
_ROOT = re.compile(rb"(?:<\?xml[^>]*\?>)?(?:\s|<!--(?:[^-]|-[^-])*-->)*<([A-Za-z_][\w.:-]*)")

# The status S3 documents for an error code, for a 200 answer whose body is an <Error>
# (an unknown code counts as a server failure, as the 200 was one).
ERROR_STATUS = {
    "AccessDenied": 403, "BadDigest": 400, "EntityTooLarge": 400, "EntityTooSmall": 400,
    "InternalError": 500, "InvalidArgument": 400, "InvalidDigest": 400, "InvalidObjectState": 403,
    "InvalidPart": 400, "InvalidPartOrder": 400, "InvalidRange": 416, "InvalidRequest": 400,
    "KeyTooLongError": 400, "MalformedXML": 400, "NoSuchBucket": 404, "NoSuchKey": 404,
    "NoSuchUpload": 404, "NotImplemented": 501, "OperationAborted": 409,
    "PreconditionFailed": 412, "RequestTimeTooSkewed": 403, "RequestTimeout": 400,
    "ServiceUnavailable": 503, "SlowDown": 503,
}


class MalformedXML(KnoxError, ValueError):
    """The server's answer was not the XML document expected.

    A :class:`knoxpy.KnoxError`, so that ``except knoxpy.KnoxError`` around a
    ``listAll`` or ``copyAll`` catches a broken or hostile answer too.
    """


def may_fail_in_200(method: str, target: str, headers: Mapping[str, Any]) -> bool:
    """Whether S3 may answer ``200`` to this request and then fail in the body.

    CopyObject and UploadPartCopy (a PUT with ``x-amz-copy-source``),
    CompleteMultipartUpload (a POST with ``uploadId``) and DeleteObjects (a POST with
    ``delete``): S3 sends 200 at once, whitespace to keep the connection open, then the
    result or an ``<Error>``. Only the whole body says which.
    """
    method = method.upper()
    if method == "PUT":
        return "x-amz-copy-source" in map(str.lower, headers)  # asked for every PUT
    if method != "POST":  # GET, HEAD, DELETE: asked for every answer, so decided at once
        return False
    query = target.partition("?")[2]
    names = {kv.partition("=")[0] for kv in query.split("&")} if query else set()
    return "uploadId" in names or "delete" in names


def error_in_200(body: bytes) -> Optional[Tuple[int, S3Error]]:
    """For the body of a 200 that ``may_fail_in_200``: None if it is not an ``<Error>``,
    else (the status S3 documents for its code, the error)."""
    m = _ROOT.match(body.lstrip(_LEADING))
    if m is None or m.group(1).rpartition(b":")[2] not in (b"Error", b"ErrorResponse"):
        return None
    data = parse_error(body, 500)
    status = ERROR_STATUS.get(str(data["Code"]), 500)
    return status, error_from(data, status)


def too_large(max_bytes: int = MAX_XML_BYTES) -> MalformedXML:
    """The error for an XML answer over ``max_bytes`` (refused before it is all read)."""
    return MalformedXML(f"expected an XML document from S3, got one over {max_bytes} bytes "
                        "(refused)")


def _roots(root: str) -> Tuple[str, ...]:
    """The names a store may give ``root``: AWS's ``...Result`` or a ``...Response``."""
    if root.endswith("Result"):
        return root, root[: -len("Result")] + "Response"
    return (root,)


def parse(body: bytes, root: Optional[str] = None, max_bytes: int = MAX_XML_BYTES
          ) -> Tuple[str, Dict[str, Any]]:
    """Parse an S3 document safely; returns (root element name, its children as a dict).

    The root's name is given as ``root`` when the document carries a variant of it
    (``ListPartsResponse`` for ``ListPartsResult``, or a namespace prefix).
    """
    what = f"<{root}>" if root else "an XML document"
    if len(body) > max_bytes:
        raise MalformedXML(f"expected {what} from S3, got a document over {max_bytes} bytes")
    if _DOCTYPE.search(body):
        raise MalformedXML(f"expected {what} from S3, got XML with a DTD/entities (refused)")
    try:
        # Whitespace is kept: keys may begin or end with spaces.
        import xmltodict  # on first use: it is a good part of knoxpy's import time

        doc = xmltodict.parse(body.lstrip(_LEADING), disable_entities=True,
                              strip_whitespace=False)
    except (ExpatError, ValueError) as exc:
        raise MalformedXML(f"expected {what} from S3, got malformed XML: {exc}") from None
    if not isinstance(doc, dict) or len(doc) != 1:
        raise MalformedXML(f"expected {what} from S3, got an empty document")
    name, content = next(iter(doc.items()))
    name = _local(name)
    if root is not None and name != "Error":
        if name not in _roots(root):
            raise MalformedXML(f"expected {what} from S3, got <{name}>")
        name = root
    content = _clean(content)
    return name, content if isinstance(content, dict) else {}


def _local(name: str) -> str:
    """An element's name without its namespace prefix (``s3:Key`` -> ``Key``)."""
    return name.rpartition(":")[2]


def _clean(node: Any) -> Any:
    """xml2js's shape: attributes and prefixes dropped, empty elements as ''; elements as
    Records (``data.Contents[0].Key`` reads as in JS)."""
    if node is None:
        return ""
    if isinstance(node, dict):
        children = {k: v for k, v in node.items() if not k.startswith(("@", "#"))}
        if not children and "#text" in node:  # text with attributes: <Key a="1">k</Key>
            return node["#text"]
        # '#text' beside child elements is only indentation
        out = Record()
        for k, v in children.items():
            k, v = _local(k), _clean(v)
            if k in out:  # the same element under two prefixes: one list, as xml2js's
                v = _as_list(out[k]) + _as_list(v)
            out[k] = v
        return out if out or not node else ""
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _require(data: Dict[str, Any], shape: str, *fields: str) -> Dict[str, Any]:
    """``data`` if each of ``fields`` is there and not empty, else a MalformedXML naming it."""
    for f in fields:
        if data.get(f) in (None, "") or isinstance(data.get(f), (dict, list)):
            raise MalformedXML(f"expected <{f}> in <{shape}> from S3, got none")
    return data


def _as_list(value: Any) -> List[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=4096)  # S3 lists in whole seconds: many keys share one
def _parse_date(value: str) -> Any:
    try:
        return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value


_NUMBERS = ("MaxKeys", "Size", "KeyCount", "MaxUploads", "MaxParts", "PartNumber",
            "NextPartNumberMarker", "PartNumberMarker")
_BOOLS = ("IsTruncated", "IsLatest")
_ARRAYS = ("Contents", "CommonPrefixes", "Part", "Upload", "Deleted", "Version",
           "DeleteMarker")
_DATES = ("LastModified", "Initiated")


def _leaf(key: str, value: str) -> Any:
    """:func:`_normalize` of one element that holds text."""
    if key in _NUMBERS:
        return int(value) if value.lstrip("-").isdigit() else value
    if key in _BOOLS:
        return value == "true"
    if key in _DATES:
        return _parse_date(value)
    if key in _ARRAYS:
        return _as_list(value)
    return value


def _normalize(data: Dict[str, Any]) -> Dict[str, Any]:
    """knox's ``normalizeResponse``: numbers, booleans, dates and arrays from strings."""
    for key, value in list(data.items()):
        if isinstance(value, str):
            data[key] = _leaf(key, value)
        elif key in _BOOLS:
            data[key] = False  # not the text "true"
        elif key in _ARRAYS:
            data[key] = _as_list(value)
        if isinstance(data[key], list):
            for item in data[key]:
                if isinstance(item, dict):
                    _normalize(item)
        elif isinstance(data[key], dict):
            _normalize(data[key])
    return data


# -- the fast path of listing pages ------------------------------------------------------------
# A ListObjects page is up to 1000 entries of one flat shape (~200 KB); through xmltodict's
# Python callbacks (three per element) it cost most of a listing's CPU. _flat reads the shape
# S3 documents with a few regular expressions and gives what parse() and _normalize() give.
# Anything else in a document (a comment, CDATA, an attribute, a namespace prefix, deeper
# nesting, a repeated element, a character reference, a DTD, a CR, a character XML refuses)
# makes it answer None: the general parser takes that page, so the results never differ.
_FLAT_HEAD = re.compile(r'(?:<\?xml version="1\.0"(?: encoding="[Uu][Tt][Ff]-8")?\?>)?[ \t\n]*'
                        r'<([A-Za-z_][\w.-]*)(?: xmlns="[^"<&]*")?>', re.ASCII)
# (a block's text is matched as "no '<' but the ones not closing it", which re runs in C)
_FLAT_ITEM = re.compile(r'[ \t\n]*(?:<(Contents|CommonPrefixes)>((?:[^<]*<(?!/\1>))*[^<]*)'
                        r'</\1>|<([A-Za-z_][\w.-]*)>([^<]*)</\3>)', re.ASCII)
_FLAT_CONTENTS = re.compile(r"<Contents><Key>([^<]*)</Key><LastModified>([^<]*)</LastModified>"
                            r"<ETag>([^<]*)</ETag><Size>([0-9]+)</Size>"
                            r"<StorageClass>([^<]*)</StorageClass></Contents>", re.ASCII)
_FLAT_LEAF = re.compile(r"<([A-Za-z_][\w.-]*)>([^<]*)</\1>", re.ASCII)
_FLAT_REFUSED = bytes(range(9)) + bytes(range(11, 32))  # CR and the controls XML refuses
_ENTITIES = ("&amp;", "&lt;", "&gt;", "&quot;", "&apos;")
_CONVERTED = frozenset(_NUMBERS + _BOOLS + _DATES + _ARRAYS)  # what _leaf may change


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))


def _flat(body: bytes, roots: Tuple[str, ...]) -> Optional[Tuple[str, Dict[str, Any]]]:
    """A document whose root is one of ``roots``, read fast: (root name, what
    :func:`_normalize` makes of its content); None if it is not of the plain shape (text
    elements, and Contents/CommonPrefixes of text elements)."""
    if len(body) > MAX_XML_BYTES:
        return None
    raw = body.lstrip(_LEADING)
    if (len(raw.translate(None, _FLAT_REFUSED)) != len(raw) or b"]]>" in raw
            or b"\xef\xbf\xbe" in raw or b"\xef\xbf\xbf" in raw):  # U+FFFE, U+FFFF
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    escaped = False
    amps = text.count("&")
    if amps:
        if amps != sum(text.count(e) for e in _ENTITIES):
            return None  # a character reference, or an entity XML does not define
        # Without "&lt;" no unescaped character can pass for markup: unescape it all once.
        escaped = "&lt;" in text
        if not escaped:
            text = _unescape(text)
    head = _FLAT_HEAD.match(text)
    if head is None or head.group(1) not in roots:
        return None
    end = text.rstrip(" \t\n")
    close = f"</{head.group(1)}>"
    if not end.endswith(close):
        return None
    stop, pos = len(end) - len(close), head.end()
    data: Dict[str, Any] = Record()
    first = text.find("<Contents>", pos, stop)
    if first >= 0 and not escaped:
        # S3's own run of Contents, each in its fields' order: read in one call, and the
        # elements before and after it on their own (nothing may straddle the run)
        last = text.rfind("</Contents>", first, stop) + len("</Contents>")
        rows = _FLAT_CONTENTS.findall(text, first, last)
        if text.count("<", first, last) == 12 * len(rows):  # no other element among them
            data["Contents"] = [
                Record(Key=k, LastModified=_parse_date(m), ETag=e, Size=int(n),
                       StorageClass=c)
                for k, m, e, n, c in rows]
            if _flat_items(text, pos, first, data, False) and _flat_items(
                    text, last, stop, data, False):
                return head.group(1), data
            return None
    return (head.group(1), data) if _flat_items(text, pos, stop, data, escaped) else None


def _flat_items(text: str, pos: int, stop: int, data: Dict[str, Any], escaped: bool) -> bool:
    """Read ``text[pos:stop]``, the root's elements, into ``data``; False if they are not
    of the plain shape. ``escaped``: the values still hold entities."""
    item, leaf = _FLAT_ITEM.match, _FLAT_LEAF.findall
    while True:
        m = item(text, pos, stop)
        if m is None:
            return not text[pos:stop].strip(" \t\n")
        pos = m.end()
        block, tag = m.group(2), m.group(3)
        if block is None:
            if tag in data:
                return False
            value = m.group(4)
            data[tag] = _leaf(tag, _unescape(value) if escaped else value)
            continue
        leaves = leaf(block)
        entry = Record(leaves)
        if not leaves or len(entry) != len(leaves) or block.count("<") != 2 * len(leaves):
            return False
        if escaped:
            for k, v in leaves:
                entry[k] = _unescape(v)
        for k in _CONVERTED.intersection(entry):
            entry[k] = _leaf(k, entry[k])
        data.setdefault(m.group(1), []).append(entry)


def _peek(body: bytes, name: bytes) -> str:
    m = re.search(b"<" + name + b">([^<]*)</" + name + b">", body)
    try:
        return _unescape(m.group(1).decode("utf-8")) if m else ""
    except UnicodeDecodeError:
        return ""


def peek_next_token(body: bytes) -> Optional[Tuple[str, str]]:
    """Where a ListObjectsV2 page says the next one starts, ``("continuation-token",
    token)``, found without parsing the page: a guess (a page that is not of the plain
    shape may say otherwise once parsed). None: not truncated, or no token seen.

    >>> peek_next_token(b'<ListBucketResult><IsTruncated>true</IsTruncated>'
    ...                 b'<NextContinuationToken>a&amp;b</NextContinuationToken>')
    ('continuation-token', 'a&b')
    """
    if b"<IsTruncated>true</IsTruncated>" not in body:
        return None
    token = _peek(body, b"NextContinuationToken")
    return ("continuation-token", token) if token else None


def peek_next_version(body: bytes) -> Optional[Tuple[str, str]]:
    """:func:`peek_next_token` of a ListObjectVersions page: ``("version-marker",
    "<NextKeyMarker>\\n<NextVersionIdMarker>")``."""
    if b"<IsTruncated>true</IsTruncated>" not in body:
        return None
    key = _peek(body, b"NextKeyMarker")
    return ("version-marker", f"{key}\n{_peek(body, b'NextVersionIdMarker')}") if key else None


def parse_list(body: bytes) -> Dict[str, Any]:
    """knox's ``list`` result: ListBucketResult (V1 or V2) normalised; Contents always a list.

    An error document comes back normalised the same way (``Code``, ``Message``...),
    as knox passes whatever S3 sent.
    """
    fast = _flat(body, _roots("ListBucketResult"))
    if fast is not None:
        data = fast[1]
        _each(data.get("Contents"), "Contents", "Key")
        data.setdefault("Contents", [])
        return data
    return _parse_list_general(body)


def _parse_list_general(body: bytes) -> Dict[str, Any]:
    """:func:`parse_list` of any document (the fast path's reference)."""
    name, data = parse(body, "ListBucketResult")
    if name != "Error":
        _each(data.get("Contents"), "Contents", "Key")
    data = _normalize(data)
    data.setdefault("Contents", [])
    return data


def parse_versions(body: bytes) -> Dict[str, Any]:
    """ListVersionsResult, knox's ``list`` shape: ``Versions`` holds every version and
    delete marker in S3's order (by key, newest first), each with ``Key``, ``VersionId``,
    ``IsLatest``, ``LastModified`` and ``DeleteMarker`` (bool); versions also ``ETag``,
    ``Size``, ``StorageClass``. An error document comes back as :func:`parse_list`'s does.
    """
    _, data = parse(body, "ListVersionsResult")
    data = _normalize(data)
    versions = [dict(v, DeleteMarker=False) for v in data.pop("Version", [])]
    markers = [dict(m, DeleteMarker=True) for m in data.pop("DeleteMarker", [])]
    merged = versions + markers
    # S3 sends them interleaved by key, newest first; grouping by tag loses that order, so
    # it is rebuilt: by key, the latest first, then newest first (a stable sort for ties).
    merged.sort(key=lambda e: (str(e.get("Key", "")), not e.get("IsLatest"),
                               _newest_first(e.get("LastModified"))))
    data["Versions"] = [Record(e) for e in merged]
    return data


def _newest_first(when: Any) -> float:
    return -when.timestamp() if isinstance(when, _dt.datetime) else 0.0


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def build_delete(keys: Iterable[Union[str, Tuple[str, Optional[str]]]], quiet: bool = False
                 ) -> bytes:
    """knox's ``makeDeleteXmlBuffer``: a Delete document, leading slashes removed.

    A key may come as ``(key, version_id)`` to delete that version (or delete marker).
    A key with a control character is refused (XML 1.0 cannot carry most of them)."""
    objects = [(k, None) if isinstance(k, str) else (k[0], k[1]) for k in keys]
    for k, _ in objects:
        _validate.check_key(k)
    tags = "".join(
        "<Object><Key>" + _escape(k[1:] if k.startswith("/") else k) + "</Key>"
        + ("" if version is None else "<VersionId>" + _escape(version) + "</VersionId>")
        + "</Object>"
        for k, version in objects
    )
    quiet_tag = "<Quiet>true</Quiet>" if quiet else ""
    return ('<?xml version="1.0" encoding="UTF-8"?><Delete>' + quiet_tag + tags
            + "</Delete>").encode("utf-8")


def parse_delete_result(body: bytes) -> Dict[str, List[Dict[str, Any]]]:
    """DeleteResult: ``{'Deleted': [{Key, ...}], 'Errors': [{Key, Code, Message}]}``."""
    name, data = parse(body, "DeleteResult")
    if name == "Error":
        raise error_from(data, 200)
    _each(data.get("Deleted"), "Deleted", "Key")
    _each(data.get("Error"), "Error", "Key", "Code")
    return {"Deleted": _as_list(data.get("Deleted")), "Errors": _as_list(data.get("Error"))}


_CODE_OF_STATUS = {301: "PermanentRedirect", 307: "TemporaryRedirect", 400: "BadRequest",
                   403: "AccessDenied", 404: "NotFound", 405: "MethodNotAllowed",
                   409: "Conflict", 412: "PreconditionFailed", 416: "InvalidRange",
                   500: "InternalError", 503: "ServiceUnavailable"}


def parse_error(body: bytes, status: int) -> Dict[str, Any]:
    """An S3 error body, tolerant of empty or non-XML bodies (HEAD answers have none)."""
    data: Dict[str, Any] = {}
    if body and body.strip():
        try:
            name, data = parse(body)
        except MalformedXML:
            data = {}
        else:  # the AWS query protocol's <ErrorResponse><Error>...</Error></ErrorResponse>
            if name == "ErrorResponse" and isinstance(data.get("Error"), dict):
                data = data["Error"]
    data.setdefault("Code", _CODE_OF_STATUS.get(status, f"HTTP{status}"))
    data.setdefault("Message", "")
    return data


def unreadable_answer(err: MalformedXML, status: int, request: str,
                      request_id: Optional[str] = None) -> KnoxError:
    """The error for an answer whose body is not the XML expected, naming the request and
    its status: an S3Error for an error status (an HTML page from a proxy is still a 502),
    MalformedXML for a success whose body cannot be read."""
    if status >= 300:
        return S3Error(_CODE_OF_STATUS.get(status, f"HTTP{status}"),
                       f"{request} answered HTTP {status} with a body that is not S3's XML",
                       status, request_id)
    return MalformedXML(f"{request} answered HTTP {status}: {err}")


def region_from_error(body: bytes) -> Optional[str]:
    """The ``<Region>`` of an S3 error such as AuthorizationHeaderMalformed, if any."""
    m = re.search(rb"<Region>([a-z0-9-]{1,40})</Region>", body[:65536])
    return m.group(1).decode() if m else None


def parse_initiate_multipart(body: bytes) -> Dict[str, Any]:
    """InitiateMultipartUploadResult: ``{Bucket, Key, UploadId}``."""
    return _require(_expect(body, "InitiateMultipartUploadResult"),
                    "InitiateMultipartUploadResult", "UploadId")


def build_complete_multipart(parts: Sequence[Tuple[Any, ...]], algorithm: str = "crc32"
                             ) -> bytes:
    """CompleteMultipartUpload for ``[(part_number, etag), ...]``.

    A part may be ``(part_number, etag, checksum)``: an upload begun with
    ``x-amz-checksum-algorithm: <ALGORITHM>`` names each part's checksum (base64) in
    ``<Checksum<ALGORITHM>>`` (``ChecksumCRC32``, ``ChecksumCRC64NVME``, ...).
    """
    tag = "Checksum" + algorithm.upper()
    tags = "".join(
        f"<Part><PartNumber>{p[0]}</PartNumber><ETag>{_escape(p[1])}</ETag>"
        + (f"<{tag}>{_escape(p[2])}</{tag}>" if len(p) > 2 and p[2] else "")
        + "</Part>"
        for p in parts
    )
    return ('<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload>' + tags
            + "</CompleteMultipartUpload>").encode("utf-8")


def parse_complete_multipart(body: bytes) -> Dict[str, Any]:
    """CompleteMultipartUploadResult; S3 may answer 200 with an <Error>: that raises."""
    return _require(_expect(body, "CompleteMultipartUploadResult"),
                    "CompleteMultipartUploadResult", "ETag")


def parse_copy_result(body: bytes) -> Dict[str, Any]:
    """CopyObjectResult or CopyPartResult: ``{ETag, LastModified}`` (a 200 <Error> raises)."""
    fast = _flat(body, _COPY_ROOTS)
    if fast is not None:  # one per copied key: the fast path of listing pages reads it
        name, data = fast
    else:
        name, data = parse(body)
        if name == "Error":
            raise error_from(data, 200)
        data = _normalize(data)
    name = {"CopyObjectResponse": "CopyObjectResult",
            "CopyPartResponse": "CopyPartResult"}.get(name, name)
    if name not in ("CopyObjectResult", "CopyPartResult"):
        raise MalformedXML(f"expected <CopyObjectResult> from S3, got <{name}>")
    return _require(data, name, "ETag")


_COPY_ROOTS = _roots("CopyObjectResult") + _roots("CopyPartResult")


def parse_list_parts(body: bytes) -> Dict[str, Any]:
    """ListPartsResult, with ``Part`` always a list."""
    data = _expect(body, "ListPartsResult")
    _each(data.get("Part"), "Part", "PartNumber", "ETag", "Size")
    data = _normalize(data)
    data.setdefault("Part", [])
    return data


MAX_TAGS = 10  # S3's limit per object


def build_tagging(tags: Mapping[str, str]) -> bytes:
    """A Tagging document (PutObjectTagging) from ``{key: value}``.

    >>> build_tagging({'team': 'data & ml'})
    b'<Tagging><TagSet><Tag><Key>team</Key><Value>data &amp; ml</Value></Tag></TagSet></Tagging>'
    """
    body = "".join(f"<Tag><Key>{_escape(k)}</Key><Value>{_escape(v)}</Value></Tag>"
                   for k, v in tags.items())
    return f"<Tagging><TagSet>{body}</TagSet></Tagging>".encode()


def parse_tagging(body: bytes) -> Dict[str, str]:
    """GetObjectTagging's Tagging document as ``{key: value}``."""
    data = _expect(body, "Tagging")
    tag_set = data.get("TagSet") or {}
    tags = _as_list(tag_set.get("Tag") if isinstance(tag_set, dict) else None)
    return {str(t.get("Key", "")): str(t.get("Value", "")) for t in tags if isinstance(t, dict)}


def build_restore(days: int, tier: str) -> bytes:
    """A RestoreRequest document (RestoreObject): keep the copy ``days``, fetch at ``tier``."""
    return (f"<RestoreRequest><Days>{int(days)}</Days><GlacierJobParameters><Tier>"
            f"{_escape(tier)}</Tier></GlacierJobParameters></RestoreRequest>").encode()


def parse_list_multipart_uploads(body: bytes) -> Dict[str, Any]:
    """ListMultipartUploadsResult, with ``Upload`` always a list."""
    data = _expect(body, "ListMultipartUploadsResult")
    _each(data.get("Upload"), "Upload", "Key", "UploadId")
    data = _normalize(data)
    data.setdefault("Upload", [])
    return data


def _each(items: Any, shape: str, *fields: str) -> None:
    """Every ``<shape>`` element (``Contents``, ``Part``...), if any, holds ``fields``
    (an empty one too: ``<Deleted/>`` is not "nothing deleted")."""
    for item in [] if items is None else items if isinstance(items, list) else [items]:
        if not isinstance(item, dict):
            raise MalformedXML(f"expected <{shape}> elements holding <{fields[0]}> from S3, "
                               f"got {item!r:.40}")
        _require(item, shape, *fields)


def _expect(body: bytes, root: str) -> Dict[str, Any]:
    name, data = parse(body, root)
    if name == "Error":  # S3 can answer 200 and still fail (CompleteMultipartUpload, copies)
        raise error_from(data, 200)
    return data


def error_from(data: Dict[str, Any], status: int) -> S3Error:
    """An :class:`S3Error` from a parsed error document (a 412: :class:`PreconditionFailed`)."""
    kind = PreconditionFailed if status == 412 or data.get("Code") == "PreconditionFailed" \
        else S3Error
    return kind(
        str(data.get("Code") or f"HTTP{status}"), str(data.get("Message") or ""), status,
        data.get("RequestId") or None, key=data.get("Key") or None,
        bucket=data.get("BucketName") or None, region=data.get("Region") or None,
        resource=data.get("Resource") or None,
    )
