"""Listings that would never end (issue 11 item 10): every paginated loop must stop with an error.

Against the project's fault server (test/servers/s3shaped.py): continuation tokens that cycle
(``cycle_tokens``), fresh tokens on empty pages for ever, V1 markers that go back and a ListParts
marker that does not advance (``stuck_marker``). Each is met by ``listAll`` (iterated and
flowing), by the CLI's ``ls`` and by a resumed upload's ListParts; each must end with an error
naming the problem. The waits are hang guards only: the old code ran until they expired.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fault_client
from servers.s3shaped import S3Server

import knoxpy
from knoxpy import _paging
from knoxpy.transfer import UPLOAD_JOURNAL_SUFFIX

HANG_GUARD = 60  # seconds; the fixed code ends after a few pages
FOREVER = 10 ** 9  # a fault for every request
PART = 5 * 1024 * 1024


def test_cycling_continuation_tokens_end_an_iterated_listing(srv: S3Server) -> None:
    srv.inject("cycle_tokens", count=FOREVER, tokens=["A", "B"])
    listing = fault_client(srv).listAll({"prefix": "p/"})
    listing.on("data", lambda entry: None)
    with pytest.raises(knoxpy.MalformedXML,
                       match=r"listing of bucket 'bkt' prefix 'p/' repeated continuation token "
                             r"'A' after 3 pages"):
        listing.wait(HANG_GUARD)
    tokens = [r.query.get("continuation-token") for r in srv.requests]
    assert tokens == [None, "A", "B"]  # no fourth page asked for


def test_a_token_that_repeats_itself_ends_the_iterator(srv: S3Server) -> None:
    srv.inject("cycle_tokens", count=FOREVER, tokens=["A"])
    keys = []
    with pytest.raises(knoxpy.MalformedXML, match="repeated continuation token 'A' after 2"):
        for entry in fault_client(srv).listAll():
            keys.append(entry["Key"])
            assert len(keys) < 100, "the listing goes on"
    assert keys == ["cycled"]  # the page that repeats is not delivered


def test_endless_empty_truncated_pages_end_the_listing(srv: S3Server) -> None:
    srv.inject("cycle_tokens", count=FOREVER, tokens=None, empty=True)  # new tokens, no keys
    listing = fault_client(srv).listAll().on("data", lambda entry: None)
    with pytest.raises(knoxpy.MalformedXML,
                       match=f"answered {_paging.MAX_EMPTY_PAGES + 1} empty truncated pages"):
        listing.wait(HANG_GUARD)
    assert len(srv.requests) == _paging.MAX_EMPTY_PAGES + 1


def test_a_v1_marker_that_goes_back_ends_the_listing(srv: S3Server) -> None:
    srv.inject("stuck_marker", count=FOREVER, keys=["m/b", "m/a"])
    listing = fault_client(srv).listAll({"prefix": "m/"}).on("data", lambda entry: None)
    with pytest.raises(knoxpy.MalformedXML,
                       match=r"did not advance: start-after 'm/a' is not after 'm/b'"):
        listing.wait(HANG_GUARD)


def test_copy_all_and_delete_all_fail_on_a_cycling_listing(srv: S3Server) -> None:
    srv.inject("cycle_tokens", count=FOREVER, key="p/cycled")
    c = fault_client(srv)
    for start in (lambda: c.copyAll("p/", {"prefix": "q/"}),
                  lambda: c.deleteAll(c.listAll({"prefix": "p/"}))):
        with pytest.raises(knoxpy.MalformedXML, match="repeated continuation token"):
            start().wait(HANG_GUARD)


def test_cli_ls_of_a_cycling_listing_prints_one_error_line(srv: S3Server, tmp_path: Path) -> None:
    srv.inject("cycle_tokens", count=FOREVER, key="p/k")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="s3cr3t")
    done = subprocess.run([sys.executable, "-m", "knoxpy", "--endpoint-url", srv.url, "ls",
                           "--recursive", "s3://bkt/p/"], env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.splitlines() == [
        "knoxpy: error: listing of bucket 'bkt' prefix 'p/' repeated continuation token 'A' "
        "after 3 pages"]


def test_resume_fails_on_a_list_parts_marker_that_does_not_advance(srv: S3Server,
                                                                   tmp_path: Path) -> None:
    data = random.Random(11).randbytes(23 * 1024 * 1024)  # 5 parts
    path = tmp_path / "resume.bin"
    path.write_bytes(data)
    srv.inject("status", count=1, match="partNumber=4&", status=500, code="InternalError")
    with pytest.raises(knoxpy.S3Error):
        fault_client(srv, maxRetries=0, partSize=PART).upload(str(path), "/resume.bin", resume=True,
                                               concurrency=1).wait(HANG_GUARD)
    assert os.path.exists(str(path) + UPLOAD_JOURNAL_SUFFIX)
    srv.inject("stuck_marker", count=FOREVER)
    with pytest.raises(knoxpy.MalformedXML,
                       match=r"ListParts of 'resume.bin' \(upload .+\) did not advance: "
                             r"part-number-marker 0 is not after 0 after 1 page"):
        fault_client(srv, partSize=PART).upload(str(path), "/resume.bin",
                                                resume=True).wait(HANG_GUARD)
    assert "resume.bin" not in srv.buckets["bkt"].objects  # nothing completed from half a list
    assert len(srv.buckets["bkt"].uploads) == 1  # left to resume, as any failed resumable upload


def _page(contents: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bkt</Name>'
            f'<IsTruncated>false</IsTruncated><Contents>{contents}</Contents>'
            '</ListBucketResult>').encode()


@pytest.mark.parametrize("size, shown", [("12abc", "'12abc'"), ("-5", "-5"), ("", "''")])
def test_a_listed_size_that_is_not_a_number_fails_the_listing(srv: S3Server, size: str,
                                                              shown: str) -> None:
    srv.inject("bad_xml", body=_page(f"<Key>p/a</Key><Size>{size}</Size>"))
    with pytest.raises(knoxpy.MalformedXML,
                       match=f"listing of bucket 'bkt' prefix 'p/' listed key 'p/a' with Size "
                             f"{shown}, not a number of bytes"):
        list(fault_client(srv).listAll({"prefix": "p/"}))


def test_cli_ls_of_a_bad_listing_prints_one_error_line(srv: S3Server, tmp_path: Path) -> None:
    srv.inject("bad_xml", body=_page("<Key>p/a</Key><Size>12abc</Size>"))
    srv.inject("bad_xml", body=_page("<Key>p/b</Key><Size>3</Size>"
                                     "<LastModified>last week</LastModified>"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="s3cr3t")
    argv = [sys.executable, "-m", "knoxpy", "--endpoint-url", srv.url, "ls", "s3://bkt/p/"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=HANG_GUARD,
                          stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stderr.splitlines()) == (1, [
        "knoxpy: error: listing of bucket 'bkt' prefix 'p/' listed key 'p/a' with Size "
        "'12abc', not a number of bytes"])
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=HANG_GUARD,
                          stdin=subprocess.DEVNULL)  # a date it cannot read is shown as sent
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "last week                    3 b\n", "")


def test_a_store_that_answers_v1_is_listed_to_the_end(srv: S3Server) -> None:
    """A V1-only store ignores start-after: the next page is asked for with marker too."""
    keys = [f"p/k{i:04d}" for i in range(2500)]
    for key in keys:
        srv.put("bkt", key, b"")
    srv.inject("answer_v1", count=FOREVER)
    listing = fault_client(srv).listAll({"prefix": "p/"})
    assert [e["Key"] for e in listing] == keys
    assert [r.query.get("marker") for r in srv.requests] == [None, "p/k0999", "p/k1999"]
