"""Answer headers the CLI parses, sent bad by a hostile server (issue 11, the end of item 13).

``knoxpy stat`` and ``knoxpy get`` against the project's fault server (test/servers/s3shaped.py,
fault ``bad_header``): a Content-Length or a Last-Modified that is not one must give one error
line naming the header and exit 1, never a traceback, and ``get`` must leave no file behind.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from servers.s3shaped import S3Server

HANG_GUARD = 60


def cli(srv: S3Server, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DEBUG"}
    env.update(HOME=str(home), AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="s3cr3t")
    return subprocess.run([sys.executable, "-m", "knoxpy", "--endpoint-url", srv.url, *args],
                          env=env, cwd=home, capture_output=True, text=True, timeout=HANG_GUARD,
                          stdin=subprocess.DEVNULL)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines: List[str] = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.parametrize("value", ["12abc", "-5", "1e3", ""])
def test_stat_with_a_bad_content_length_prints_one_error_line(srv: S3Server, tmp_path: Path,
                                                              value: str) -> None:
    srv.put("bkt", "obj.txt", b"hello")
    srv.inject("bad_header", match="HEAD ", name="Content-Length", value=value)
    assert one_error_line(cli(srv, tmp_path, "stat", "s3://bkt/obj.txt")) == (
        f"knoxpy: error: s3://bkt/obj.txt: the server sent a bad Content-Length header: "
        f"{value!r}")


def test_stat_with_a_bad_last_modified_prints_one_error_line(srv: S3Server,
                                                             tmp_path: Path) -> None:
    srv.put("bkt", "obj.txt", b"hello")
    srv.inject("bad_header", match="HEAD ", name="Last-Modified", value="yesterday-ish")
    assert one_error_line(cli(srv, tmp_path, "stat", "--json", "s3://bkt/obj.txt")) == (
        "knoxpy: error: s3://bkt/obj.txt: the server sent a bad Last-Modified header: "
        "'yesterday-ish'")
    done = cli(srv, tmp_path, "stat", "s3://bkt/obj.txt")  # the next answer is honest
    assert done.returncode == 0 and "Size:          5 (5 Bytes)" in done.stdout


def test_get_with_a_bad_last_modified_fails_and_leaves_no_file(srv: S3Server,
                                                              tmp_path: Path) -> None:
    srv.put("bkt", "obj.txt", b"hello")
    srv.inject("bad_header", match="GET ", name="Last-Modified", value="Mon, 99 Foo 20x6")
    line = one_error_line(cli(srv, tmp_path, "get", "s3://bkt/obj.txt", "out.txt"))
    assert line == ("knoxpy: error: s3://bkt/obj.txt: the server sent a bad Last-Modified "
                    "header: 'Mon, 99 Foo 20x6'")
    assert sorted(os.listdir(tmp_path)) == []  # neither the file nor a partial one
