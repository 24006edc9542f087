"""knoxpy._xml: S3's XML shapes, knox's list normalisation, safe parsing."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knoxpy import _xml, utils
from knoxpy.errors import S3Error

LIST_V1 = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>learnboost</Name><Prefix>my-prefix</Prefix><Marker></Marker><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>whatever</Key><LastModified>2012-12-25T00:00:00.000Z</LastModified>
    <ETag>&quot;abc&quot;</ETag><Size>123</Size>
    <Owner><ID>id1</ID><DisplayName>you</DisplayName></Owner>
    <StorageClass>STANDARD</StorageClass></Contents>
</ListBucketResult>"""


def test_list_is_normalised_as_knox_does() -> None:
    data = _xml.parse_list(LIST_V1)
    assert data["MaxKeys"] == 1000 and data["IsTruncated"] is True
    assert data["Marker"] == "" and data["Prefix"] == "my-prefix"
    [entry] = data["Contents"]  # one element: still a list, as knox makes it
    assert entry == {
        "Key": "whatever",
        "LastModified": dt.datetime(2012, 12, 25, tzinfo=dt.timezone.utc),
        "ETag": '"abc"', "Size": 123,
        "Owner": {"ID": "id1", "DisplayName": "you"}, "StorageClass": "STANDARD",
    }


def test_empty_list_has_empty_contents_and_common_prefixes_are_lists() -> None:
    body = (b"<ListBucketResult><Name>b</Name><MaxKeys>5</MaxKeys><IsTruncated>false"
            b"</IsTruncated><CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>"
            b"</ListBucketResult>")
    data = _xml.parse_list(body)
    assert data["Contents"] == [] and data["IsTruncated"] is False
    assert data["CommonPrefixes"] == [{"Prefix": "a/"}]


def test_delete_body_is_knoxs() -> None:
    body = _xml.build_delete(["/a&b<c>\"d", "plain"])
    assert body == (b'<?xml version="1.0" encoding="UTF-8"?><Delete>'
                    b"<Object><Key>a&amp;b&lt;c&gt;&quot;d</Key></Object>"
                    b"<Object><Key>plain</Key></Object></Delete>")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"),
                                                blacklist_characters="\ufffe\uffff"), min_size=1),
                min_size=1, max_size=20))
def test_delete_result_round_trips_any_key(keys: list) -> None:
    deleted = "".join(f"<Deleted><Key>{_xml._escape(k)}</Key></Deleted>" for k in keys)
    parsed = _xml.parse_delete_result(f"<DeleteResult>{deleted}</DeleteResult>".encode())
    assert [d["Key"] for d in parsed["Deleted"]] == keys  # spaces at either end survive
    assert parsed["Errors"] == []


def test_delete_result_with_errors() -> None:
    parsed = _xml.parse_delete_result(
        b"<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied"
        b"</Code><Message>Access Denied</Message></Error></DeleteResult>")
    assert parsed == {"Deleted": [{"Key": "a"}],
                      "Errors": [{"Key": "b", "Code": "AccessDenied", "Message": "Access Denied"}]}


def test_error_bodies_and_empty_bodies() -> None:
    err = _xml.parse_error(b"<Error><Code>NoSuchKey</Code><Message>gone</Message>"
                           b"<RequestId>R1</RequestId><Key>k</Key></Error>", 404)
    assert (err["Code"], err["Message"], err["RequestId"], err["Key"]) == ("NoSuchKey", "gone", "R1", "k")
    assert _xml.parse_error(b"", 404)["Code"] == "NotFound"
    assert _xml.parse_error(b"<html>oops", 503)["Code"] == "ServiceUnavailable"


def test_multipart_shapes() -> None:
    init = _xml.parse_initiate_multipart(
        b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>U1"
        b"</UploadId></InitiateMultipartUploadResult>")
    assert init == {"Bucket": "b", "Key": "k", "UploadId": "U1"}
    body = _xml.build_complete_multipart([(1, '"e1"'), (2, '"e2"')])
    assert b"<Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part>" in body
    parts = _xml.parse_list_parts(b"<ListPartsResult><IsTruncated>false</IsTruncated><Part>"
                                  b"<PartNumber>1</PartNumber><ETag>x</ETag><Size>5</Size></Part>"
                                  b"</ListPartsResult>")
    assert parts["Part"] == [{"PartNumber": 1, "ETag": "x", "Size": 5}]


def test_a_200_with_an_error_body_raises_s3error() -> None:
    with pytest.raises(S3Error) as info:
        _xml.parse_complete_multipart(b"<Error><Code>InternalError</Code><Message>We encountered"
                                      b" an internal error</Message></Error>")
    assert info.value.code == "InternalError" and info.value.statusCode == 200
    with pytest.raises(S3Error):
        _xml.parse_copy_result(b"<Error><Code>SlowDown</Code></Error>")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ListBucketResult><Name>&lol3;</Name></ListBucketResult>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<ListBucketResult><Name>&e;</Name></ListBucketResult>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL])
def test_hostile_xml_is_refused(body: bytes) -> None:
    with pytest.raises(_xml.MalformedXML, match="DTD"):
        _xml.parse_list(body)


@pytest.mark.parametrize("body", [b"<ListBucketResult><Name>x", b"not xml", b"",
                                  b"<Other/>"])
def test_malformed_xml_names_what_was_expected(body: bytes) -> None:
    with pytest.raises(_xml.MalformedXML, match="ListBucketResult"):
        _xml.parse_list(body)


def test_huge_documents_are_refused() -> None:
    with pytest.raises(_xml.MalformedXML, match="over"):
        _xml.parse(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)


def test_region_from_error() -> None:
    assert _xml.region_from_error(b"<Error><Code>AuthorizationHeaderMalformed</Code>"
                                  b"<Region>eu-west-1</Region></Error>") == "eu-west-1"
    assert _xml.region_from_error(b"<Error/>") is None


def test_utils_are_knoxs() -> None:
    a = {"a": 1}
    assert utils.merge(a, {"b": 2}) is a and a == {"a": 1, "b": 2}
    assert utils.base64.encode("knox ☃") == "a25veCDimIM="
    assert utils.base64.decode("a25veCDimIM=") == "knox ☃"


# -- issue 11: which 200s may fail, and what S3-compatible stores send ------------------------
@pytest.mark.parametrize("method,target,headers,may", [
    ("PUT", "/b/k", {"x-amz-copy-source": "/b/a"}, True),            # CopyObject
    ("PUT", "/b/k?partNumber=2&uploadId=u", {"X-Amz-Copy-Source": "/b/a"}, True),  # UploadPartCopy
    ("POST", "/b/k?uploadId=u", {}, True),                            # CompleteMultipartUpload
    ("POST", "/b/?delete", {}, True),                                 # DeleteObjects
    ("PUT", "/b/k", {}, False), ("PUT", "/b/k?partNumber=1&uploadId=u", {}, False),
    ("POST", "/b/k?uploads", {}, False), ("GET", "/b/?delete", {}, False),
    ("GET", "/b/k?uploadId=u", {}, False),
])
def test_may_fail_in_200(method: str, target: str, headers: dict, may: bool) -> None:
    assert _xml.may_fail_in_200(method, target, headers) is may


def test_an_error_after_padding_gets_its_documented_status() -> None:
    body = b" " * 100_000 + b'<?xml version="1.0"?>\n<Error><Code>SlowDown</Code></Error>'
    status, err = _xml.error_in_200(body)  # type: ignore[misc]
    assert (status, err.code, err.statusCode) == (503, "SlowDown", 503)
    assert _xml.error_in_200(b"  \n<CopyObjectResult><ETag>e</ETag></CopyObjectResult>") is None
    prefixed = b"\xef\xbb\xbf<s3:Error xmlns:s3='u'><s3:Code>AccessDenied</s3:Code></s3:Error>"
    assert _xml.error_in_200(prefixed)[0] == 403  # type: ignore[index]


def test_response_roots_prefixes_attributes_and_a_bom_are_read() -> None:
    body = (b"\xef\xbb\xbf \n<?xml version='1.0'?><p:ListPartsResponse xmlns:p='u'>"
            b"<p:Part><p:PartNumber>1</p:PartNumber><p:ETag a='1'>\"e\"</p:ETag>"
            b"<p:Size>5</p:Size></p:Part></p:ListPartsResponse>")
    assert _xml.parse_list_parts(body)["Part"] == [{"PartNumber": 1, "ETag": '"e"', "Size": 5}]


@pytest.mark.parametrize("parse,body,missing", [
    (_xml.parse_initiate_multipart, b"<InitiateMultipartUploadResult><Key>k</Key>"
     b"</InitiateMultipartUploadResult>", "UploadId"),
    (_xml.parse_copy_result, b"<CopyObjectResult><LastModified>x</LastModified>"
     b"</CopyObjectResult>", "ETag"),
    (_xml.parse_complete_multipart, b"<CompleteMultipartUploadResult><Key>k</Key>"
     b"</CompleteMultipartUploadResult>", "ETag"),
    (_xml.parse_list_parts, b"<ListPartsResult><Part><PartNumber>1</PartNumber></Part>"
     b"</ListPartsResult>", "ETag"),
    (_xml.parse_list, b"<ListBucketResult><Contents><Size>1</Size></Contents>"
     b"</ListBucketResult>", "Key"),
    (_xml.parse_delete_result, b"<DeleteResult><Deleted/></DeleteResult>", "Key"),
    (_xml.parse_list_multipart_uploads, b"<ListMultipartUploadsResult><Upload><Key>k</Key>"
     b"</Upload></ListMultipartUploadsResult>", "UploadId"),
])
def test_a_missing_required_field_is_named(parse: Any, body: bytes, missing: str) -> None:
    with pytest.raises(_xml.MalformedXML, match=f"<{missing}>"):
        parse(body)
