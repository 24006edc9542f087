"""Hypothesis strategies shared by the tests of the wire: header names and values."""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# RFC 9110 token characters: what a header name may be made of
TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~"


def header_names(*excluded: str, max_size: int = 16) -> Any:
    """Header names (tokens), none of ``excluded`` (lower-case) whatever its case."""
    names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=max_size)
    return names.filter(lambda n: n.lower() not in excluded) if excluded else names


def header_values(max_size: int = 30) -> Any:
    """Latin-1 header values with no control characters (blanks included)."""
    return st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                          blacklist_characters="\x7f"), max_size=max_size)


# -- ListObjects pages, for the fast listing parser against the general one -----------------
# Key text: what S3 keys hold, markup characters and non-ASCII included (no control
# characters: S3 sends those as character references, which the odd pages cover).
KEY_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF,
                                          blacklist_categories=("Cs",)), max_size=12)
_BLANKS = st.sampled_from(["", "", " ", "\n", "\n  ", "\t"])


def _escape(text: str, draw: Any) -> str:
    """XML text escaping, quotes escaped or not as a store may choose."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if draw(st.booleans()):
        out = out.replace('"', "&quot;").replace("'", "&apos;")
    return out


@st.composite
def listing_pages(draw: Any, odd: bool = False) -> bytes:
    """A ListBucketResult page (V2, or V1's fields) as S3 documents it; ``odd``: with one
    thing S3 does not send or the plain shape lacks (a comment, CDATA, a character
    reference, an attribute, nesting, a prefix, CR LF, a repeated or empty element, a
    cut-off document)."""
    # S3's own shape (its fields in its order, no blanks) or any order, blanks, a checksum
    canonical = draw(st.booleans())
    blank = _BLANKS if not canonical else st.just("")

    def element(name: str, text: str) -> str:
        return f"<{name}>{_escape(text, draw)}</{name}>{draw(blank)}"

    def contents() -> str:
        fields = [element("Key", draw(KEY_TEXT.filter(bool))),
                  element("LastModified", draw(st.sampled_from(
                      ["2012-12-25T00:00:00.000Z", "2026-12-03T18:34:42.429Z", "yesterday"]))),
                  element("ETag", '"' + draw(st.text("0123456789abcdef", max_size=8)) + '"'),
                  element("Size", draw(st.sampled_from(["0", "100", "5368709121", "-1", "x"]))),
                  element("StorageClass", draw(st.sampled_from(["STANDARD", "GLACIER"])))]
        if not canonical:
            if draw(st.booleans()):
                fields.append(element("ChecksumAlgorithm", "CRC64NVME"))
            fields = draw(st.permutations(fields))
        return f"<Contents>{draw(blank)}{''.join(fields)}</Contents>{draw(blank)}"

    head = [element("Name", "bucket"), element("Prefix", draw(KEY_TEXT)),
            element("KeyCount", str(draw(st.integers(0, 1000)))),
            element("MaxKeys", "1000"),
            element("IsTruncated", draw(st.sampled_from(["true", "false"])))]
    for name in ("Delimiter", "NextContinuationToken", "StartAfter", "EncodingType",
                 "NextMarker"):
        if draw(st.booleans()):
            head.append(element(name, draw(KEY_TEXT)))
    items = [contents() for _ in range(draw(st.integers(0, 4)))]
    items += [f"<CommonPrefixes>{element('Prefix', draw(KEY_TEXT.filter(bool)))}"
              f"</CommonPrefixes>{draw(_BLANKS)}" for _ in range(draw(st.integers(0, 3)))]
    children = draw(st.permutations(head)) + items
    decl = draw(st.sampled_from(['', '<?xml version="1.0" encoding="UTF-8"?>\n']))
    root = draw(st.sampled_from(["ListBucketResult", "ListBucketResponse"]))
    xmlns = draw(st.sampled_from(["", ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"']))
    text = "".join(children)
    if odd:
        at = draw(st.integers(0, len(children)))
        oddity = draw(st.sampled_from([
            "<!-- a comment -->", "<Key><![CDATA[a<b]]></Key>", "<Marker>&#x1;&#233;</Marker>",
            '<Marker a="1">m</Marker>', "<Owner><ID>i</ID><DisplayName>d</DisplayName></Owner>",
            "<s3:Marker>m</s3:Marker>", "\r\n", "<Name>again</Name>", "<Marker/>",
            "<Contents></Contents>", "<Contents><Key>k</Key><Key>k2</Key></Contents>",
            "<Contents><Owner><ID>i</ID></Owner><Key>k</Key></Contents>", "&nbsp;", "]]>",
            "<Marker>a]]>b</Marker>", "<Marker>\x0c</Marker>", "<Marker>\uffff</Marker>",
            "<Contents><Key>k</Key>", "</Name>", "<?pi x?>", "\x01", "<Contents>t</Contents>",
            "<Marker><Contents><Key>k</Key><LastModified>x</LastModified><ETag>e</ETag>"
            "<Size>1</Size><StorageClass>S</StorageClass></Contents></Marker>",
            "<Foo><Bar>x</Bar></Foo>", "text", "<Contents><Key>k</Key><LastModified>x"
            "</LastModified><ETag>e</ETag><Size>1</Size><StorageClass>S</StorageClass>"
            "<Owner><ID>i</ID></Owner></Contents>",
        ]))
        text = "".join(children[:at]) + oddity + "".join(children[at:])
    body = f"{decl}<{root}{xmlns}>{draw(_BLANKS)}{text}</{root}>{draw(_BLANKS)}"
    if odd and draw(st.booleans()):
        body = body[:draw(st.integers(0, len(body)))]  # cut off
    return body.encode("utf-8")
