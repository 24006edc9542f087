"""The fast path of listing pages (knoxpy._xml._flat) gives what the general parser gives."""
from __future__ import annotations

from typing import Any, Callable, Tuple

from hypothesis import given, settings
from strategies import listing_pages

from knoxpy import _xml


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
