"""Object tags and restores of archived objects (issue 15 item 6), against moto."""
from __future__ import annotations

from typing import Any, List

import pytest

import knoxpy


def test_tags_are_put_and_read_back(client: Any) -> None:
    client.putBuffer(b"x", "/tagged").wait(10).resume()
    assert client.getTags("/tagged").wait(10) == {}
    stored = client.putTags("/tagged", {"team": "data ml", "tier": "gold",
                                        "gone": None}).wait(10)
    assert stored == {"team": "data ml", "tier": "gold"}
    assert client.getTags("/tagged").wait(10) == stored
    client.putTags("/tagged", {"only": "one"}).wait(10)  # replaced, not merged
    assert client.getTags("/tagged").wait(10) == {"only": "one"}


def test_tags_set_with_the_put_header_are_read(client: Any) -> None:
    client.putBuffer(b"x", "/tagged-at-put", {"x-amz-tagging": "a=1&b=two%20words"}).wait(10)
    assert client.getTags("/tagged-at-put").wait(10) == {"a": "1", "b": "two words"}


def test_tags_of_a_missing_key_fail_with_no_such_key(client: Any) -> None:
    with pytest.raises(knoxpy.S3Error) as caught:
        client.getTags("/never-there").wait(10)
    assert caught.value.code == "NoSuchKey"


@pytest.mark.parametrize("tags, message", [
    ({str(i): "v" for i in range(11)}, "at most 10"),
    ({"": "v"}, "non-empty"),
    (["a"], "dict"),
])
def test_bad_tags_are_refused_before_sending(client: Any, tags: Any, message: str) -> None:
    with pytest.raises(knoxpy.ValidationError, match=message):
        client.putTags("/tagged", tags).wait(10)


def test_a_glacier_object_is_restored_with_progress(client: Any) -> None:
    client.putBuffer(b"archived", "/cold", {"x-amz-storage-class": "GLACIER"}).wait(10)
    res = client.get("/cold").end().wait(10)
    assert res.statusCode == 403  # InvalidObjectState: archived, not readable yet
    res.resume()
    seen: List[Any] = []
    op = client.restore("/cold", {"days": 2, "tier": "Bulk", "poll": 0.1})
    op.on("progress", lambda p: seen.append(p))
    result = op.wait(60)
    assert result.Key == "cold" and result.ongoing is False and result.expiry
    assert seen and seen[-1] == result
    assert client.get("/cold").end().wait(10).read() == b"archived"


@pytest.mark.parametrize("options, message", [
    ({"days": 0}, "days"), ({"tier": "Fast"}, "tier"), ({"poll": -1}, "poll"),
])
def test_bad_restore_options_are_refused(client: Any, options: Any, message: str) -> None:
    with pytest.raises(knoxpy.ValidationError, match=message):
        client.restore("/cold", options).wait(10)


def test_restore_state_reads_the_header() -> None:
    from knoxpy.objects import restore_state

    assert restore_state('ongoing-request="true"') == {"ongoing": True, "expiry": None}
    assert restore_state(None) is None


def test_a_multipart_upload_carries_tags_and_storage_class(client: Any) -> None:
    data = bytes(range(256)) * (24 * 1024)  # 6 MiB: two parts of 5 MiB
    client.upload(data, "/tagged-upload", {"x-amz-tagging": "kind=backup",
                                           "x-amz-storage-class": "STANDARD_IA"},
                  partSize=5 << 20).wait(60)
    assert client.getTags("/tagged-upload").wait(10) == {"kind": "backup"}
    head = client.headFile("/tagged-upload").wait(10)
    assert head.headers.get("x-amz-storage-class") == "STANDARD_IA"
    assert head.headers["content-length"] == str(len(data))
