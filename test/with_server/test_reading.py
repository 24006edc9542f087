"""Bodies read into the caller's buffer: ``res.readinto`` and a body piped into a file.

Both read straight from http.client into one reused buffer (knoxpy._transport.read_into);
these tests hold them to what ``read()`` and ``'data'`` promise: every byte once, in order,
``'end'`` at the end, and a body cut short an error, never a short file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List

import pytest
from conftest import fault_client, read_interleaved
from servers.s3shaped import S3Server

import knoxpy

SIZE = 3 * 1024 * 1024 + 12345  # more than one read of every buffer size used here


@pytest.mark.parametrize("size,bufsize", [  # small answers (read whole at once) and large
    (size, bufsize) for size in (0, 10, 70_000, SIZE) for bufsize in (1, 1000, 256 * 1024)
    if bufsize > 1 or size <= 70_000])
def test_readinto_reads_every_byte_once_and_then_ends(srv: S3Server, size: int,
                                                      bufsize: int) -> None:
    data = os.urandom(size)
    c = fault_client(srv)
    c.putBuffer(data, "/k").wait(10)
    res = c.get("/k").end().wait(10)
    events: List[str] = []
    res.on("end", lambda: events.append("end"))
    buf = bytearray(bufsize)
    got = bytearray()
    while True:
        n = res.readinto(buf)
        if not n:
            break
        got += buf[:n]
    assert bytes(got) == data
    knoxpy.run(5)
    assert events == ["end"]


def test_readinto_after_read_goes_on_where_read_stopped(srv: S3Server) -> None:
    data = os.urandom(SIZE)
    c = fault_client(srv)
    c.putBuffer(data, "/k").wait(10)
    res = c.get("/k").end().wait(10)
    head = res.read(1000)
    buf = bytearray(64 * 1024)
    rest = bytearray()
    while (n := res.readinto(buf)):
        rest += buf[:n]
    assert head + bytes(rest) == data


def test_small_reads_and_large_readintos_in_turn_give_every_byte_once(srv: S3Server) -> None:
    data = os.urandom(SIZE)
    c = fault_client(srv)
    c.putBuffer(data, "/k").wait(10)
    assert read_interleaved(c.get("/k").end().wait(10)) == data


@pytest.mark.parametrize("fault", ["short_body", "reset_response_body"])
def test_readinto_of_a_body_cut_short_raises(srv: S3Server, fault: str) -> None:
    c = fault_client(srv, maxRetries=0)
    c.putBuffer(os.urandom(SIZE), "/k").wait(10)
    srv.inject(fault, count=1, match="GET /bkt/k", after=1_000_000)
    res = c.get("/k").end().wait(10)
    buf = bytearray(256 * 1024)
    with pytest.raises(knoxpy.RequestError) as info:
        while res.readinto(buf):
            pass
    assert info.value.code == "ECONNRESET"


def test_a_body_piped_into_a_file_arrives_whole(srv: S3Server, tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    c = fault_client(srv)
    c.putBuffer(data, "/k").wait(10)
    path = tmp_path / "out.bin"
    events: List[str] = []

    def on_response(err: Any, res: Any) -> None:
        res.on("end", lambda: events.append("end"))
        res.pipe(open(path, "wb"))

    c.getFile("/k", on_response)
    knoxpy.run(20)
    assert events == ["end"] and path.read_bytes() == data


@pytest.mark.parametrize("mode", ["wb", "r+b"])
def test_a_body_piped_into_a_file_goes_where_the_file_stands(srv: S3Server, tmp_path: Path,
                                                             mode: str) -> None:
    """A body goes socket to file by os.splice (plain HTTP), at the file's position:
    after what the file object had buffered, and Python's writes after it go on from
    where it ended."""
    data = os.urandom(SIZE)
    c = fault_client(srv)
    c.putBuffer(data, "/k").wait(10)
    path = tmp_path / "out.bin"
    path.write_bytes(b"x" * (SIZE + 100))
    f = open(path, mode)
    f.write(b"head")  # buffered by the file object, not yet written
    done: List[str] = []

    def on_response(err: Any, res: Any) -> None:
        res.on("end", lambda: done.append("end"))
        res.pipe(f, end=False)

    c.getFile("/k", on_response)
    knoxpy.run(20)
    assert done == ["end"] and f.tell() == 4 + SIZE
    f.write(b"tail")
    f.close()
    want = b"head" + data + b"tail"
    got = path.read_bytes()
    assert got[:len(want)] == want
    assert got[len(want):] == (b"x" * 92 if mode == "r+b" else b"")


def test_a_body_piped_into_a_file_opened_for_appending_goes_at_its_end(
        srv: S3Server, tmp_path: Path) -> None:
    """splice refuses a file opened with O_APPEND (EINVAL): such a file is written by
    Python, every byte after what the file held."""
    data = os.urandom(SIZE)
    c = fault_client(srv)
    c.putBuffer(data, "/k").wait(10)
    path = tmp_path / "log.bin"
    path.write_bytes(b"before")
    done: List[Any] = []

    def on_response(err: Any, res: Any) -> None:
        res.on("end", lambda: done.append("end"))
        res.on("error", done.append)
        res.pipe(open(path, "ab"))

    c.getFile("/k", on_response)
    knoxpy.run(20)
    assert done == ["end"]
    assert path.read_bytes() == b"before" + data


@pytest.mark.parametrize("fault", ["short_body", "reset_response_body"])
def test_a_body_piped_into_a_file_and_cut_short_is_an_error_never_an_end(
        srv: S3Server, tmp_path: Path, fault: str) -> None:
    c = fault_client(srv, maxRetries=0)
    c.putBuffer(os.urandom(SIZE), "/k").wait(10)
    srv.inject(fault, count=1, match="GET /bkt/k", after=1_000_000)
    path = tmp_path / "out.bin"
    events: List[Any] = []

    def on_response(err: Any, res: Any) -> None:
        res.on("end", lambda: events.append("end"))
        res.on("error", lambda e: events.append(e.code))
        res.pipe(open(path, "wb"))

    c.getFile("/k", on_response)
    knoxpy.run(20)
    assert events == ["ECONNRESET"]
    assert path.stat().st_size < SIZE


@pytest.mark.skipif(not hasattr(os, "splice"), reason="os.splice is Linux's")
def test_a_file_that_refuses_splice_still_gets_every_byte(srv: S3Server, tmp_path: Path) -> None:
    """A filesystem without splice (vboxsf, WSL 1's drvfs) answers EINVAL, as a file opened
    with O_APPEND does here: the bytes already in the pipe, and all after them, are
    written by Python instead; nothing is lost or written twice."""
    from knoxpy import _transport

    data = os.urandom(SIZE)
    c = fault_client(srv)
    c.putBuffer(data, "/k").wait(10)
    path = tmp_path / "out.bin"
    path.write_bytes(b"before")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    pipe = _transport.SplicePipe()
    try:
        res = c.get("/k").end().wait(10)
        view = memoryview(bytearray(8192))
        done = 0
        while done < SIZE:
            n = res._splice_into(fd, None, SIZE - done, pipe)
            if n is None:  # what was read ahead of the socket (the first packet) comes first
                n = res.readinto(view)
                os.write(fd, view[:n])
            assert n, "the body ended early"
            done += n
        assert res.read() == b""  # the end: the connection goes back to the pool
        assert pipe.into_files is False  # splice was tried, refused, and the fallback took over
    finally:
        pipe.close()
        os.close(fd)
    assert path.read_bytes() == b"before" + data
