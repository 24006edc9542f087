"""The fast path of listing pages and copy results (knoxpy._xml._flat) gives what the
general parser gives."""
from __future__ import annotations

from typing import Any, Callable, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import listing_pages

from knoxpy import _xml
from knoxpy.errors import S3Error


def outcome(parse: Callable[[bytes], Any], body: bytes) -> Tuple[Any, ...]:
    try:
        return ("ok", parse(body))
    except Exception as exc:  # noqa: BLE001 - the two parsers must fail alike too
        return ("error", type(exc), str(exc))


@settings(max_examples=400, deadline=None)
@given(listing_pages())
def test_plain_pages_take_the_fast_path_and_parse_as_the_general_parser(body: bytes) -> None:
    assert _xml._flat(body, ("ListBucketResult", "ListBucketResponse")) is not None
    assert outcome(_xml.parse_list, body) == outcome(_xml._parse_list_general, body)


@settings(max_examples=400, deadline=None)
@given(listing_pages(odd=True))
def test_odd_pages_parse_as_the_general_parser_whichever_path(body: bytes) -> None:
    assert outcome(_xml.parse_list, body) == outcome(_xml._parse_list_general, body)


def test_markup_in_keys_is_unescaped() -> None:
    body = (b'<ListBucketResult><Contents><Key>a &amp;lt; b &lt;&gt; &quot;&apos;\xc3\xa9'
            b'</Key><Size>1</Size></Contents><IsTruncated>false</IsTruncated>'
            b'</ListBucketResult>')
    [entry] = _xml.parse_list(body)["Contents"]
    assert entry == {"Key": "a &lt; b <> \"'\u00e9", "Size": 1}
    assert _xml.parse_list(body.replace(b"&lt;&gt;", b"")) == _xml._parse_list_general(
        body.replace(b"&lt;&gt;", b""))  # without "&lt;": unescaped all at once


def test_what_the_fast_path_does_not_know_goes_to_the_general_parser() -> None:
    body = (b"<ListBucketResult><Contents><Key>k</Key><Owner><ID>i</ID></Owner>"
            b"</Contents></ListBucketResult>")
    assert _xml._flat(body, ("ListBucketResult",)) is None
    assert _xml.parse_list(body)["Contents"] == [{"Key": "k", "Owner": {"ID": "i"}}]


@settings(max_examples=200, deadline=None)
@given(listing_pages())
def test_the_next_page_peeked_at_is_the_parsed_pages_next(body: bytes) -> None:
    data = _xml.parse_list(body)
    token = data.get("NextContinuationToken") if data.get("IsTruncated") else None
    assert _xml.peek_next_token(body) == (("continuation-token", token) if token else None)


def test_the_next_version_page_peeked_at() -> None:
    body = (b"<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k&amp;1"
            b"</NextKeyMarker><NextVersionIdMarker>v1</NextVersionIdMarker>"
            b"</ListVersionsResult>")
    assert _xml.peek_next_version(body) == ("version-marker", "k&1\nv1")
    assert _xml.peek_next_version(body.replace(b"true", b"false")) is None


@st.composite
def copy_results(draw: Any) -> bytes:
    """CopyObjectResult / CopyPartResult answers, some padded, some odd, some an <Error>."""
    root = draw(st.sampled_from(["CopyObjectResult", "CopyPartResult", "CopyObjectResponse",
                                 "Error", "Other"]))
    fields = [f"<ETag>{draw(st.sampled_from(['&quot;e&quot;', '', 'x&amp;y']))}</ETag>",
              "<LastModified>2026-12-03T18:34:42.000Z</LastModified>",
              draw(st.sampled_from(["", "<ChecksumCRC32>AAAAAA==</ChecksumCRC32>",
                                    "<Code>SlowDown</Code><Message>m</Message>",
                                    "<!-- c -->", "<ETag>twice</ETag>", "<ETag/>"]))]
    pad = draw(st.sampled_from(["", "  \n", " " * 40]))
    body = f"{pad}<{root}>{''.join(draw(st.permutations(fields)))}</{root}>"
    if draw(st.booleans()):
        body = body[:draw(st.integers(0, len(body)))]
    return body.encode()


@settings(max_examples=300, deadline=None)
@given(copy_results())
def test_copy_results_parse_as_the_general_parser_whichever_path(body: bytes) -> None:
    fast = outcome(_xml.parse_copy_result, body)
    general = _xml._flat
    try:
        _xml._flat = lambda *a: None  # type: ignore[assignment]  # the general path only
        slow = outcome(_xml.parse_copy_result, body)
    finally:
        _xml._flat = general  # type: ignore[assignment]
    assert fast == slow
    assert fast[0] == "ok" or fast[1] in (S3Error, _xml.MalformedXML)


def test_a_copy_result_takes_the_fast_path() -> None:
    body = (b'  <CopyObjectResult><LastModified>2026-12-03T18:34:42.000Z</LastModified>'
            b'<ETag>&quot;e&quot;</ETag></CopyObjectResult>')
    assert _xml._flat(body, _xml._COPY_ROOTS) is not None
    assert _xml.parse_copy_result(body)["ETag"] == '"e"'
    with pytest.raises(S3Error, match="SlowDown"):
        _xml.parse_copy_result(b"<Error><Code>SlowDown</Code></Error>")
