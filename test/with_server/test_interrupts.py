"""Ctrl-C stops a transfer: SIGINT sent to a ``knoxpy`` process, or to a script blocked in
``wait()``, while the fault server holds one of its requests (test/servers/s3shaped.py,
``hold``), so that the interrupt surely lands mid-transfer.

The attack: Ctrl-C during ``knoxpy put`` printed "interrupted" only after every part was
sent and the upload completed; a script's KeyboardInterrupt was followed by the exit hook
completing the upload anyway. Now the process stops at once, the multipart upload is
aborted, no object is made and no partial file is left. A download's or a delete's held
request is released only once the process has exited (waiting for it would hang the
test); an upload's parts are released as the SIGINT is sent, its completion held to the
end, so an upload that went on regardless would hang there.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from servers.s3shaped import S3Server
from test_cli import TOKEN_FREE_ENV

SIZE = 24 * 1024 * 1024  # three parts, three ranges of 8 MiB
# Seconds: only ever reached when the interrupt is not obeyed. Shorter than the client's
# read timeout (60 s), so that a client waiting for a held request cannot time out first.
HANG_GUARD = 45


class Held:
    """The server's ``hold`` fault: ``arrived`` once a matching request came, and held
    until ``release`` (set when the test ends, never before the process has exited)."""

    def __init__(self, srv: S3Server, match: Any, **params: Any) -> None:
        self.arrived, self.release = threading.Event(), threading.Event()
        srv.inject("hold", count=1000, match=match, arrived=self.arrived,
                   release=self.release, seconds=HANG_GUARD * 2, **params)


@pytest.fixture
def server() -> Iterator[S3Server]:
    with S3Server(mode="store") as srv:
        yield srv


@pytest.fixture
def holds() -> Iterator[List[Held]]:
    made: List[Held] = []
    yield made
    for held in made:
        held.release.set()  # only now: the server's threads may end


def env(tmp_path: Path) -> dict[str, str]:
    return dict(TOKEN_FREE_ENV, HOME=str(tmp_path), AWS_ACCESS_KEY_ID="AKID",
                AWS_SECRET_ACCESS_KEY="s3cr3t", PYTHONFAULTHANDLER="1")


def start_cli(srv: S3Server, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "knoxpy", "--endpoint-url", srv.url, *args],
                            cwd=tmp_path, env=env(tmp_path), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_script(srv: S3Server, tmp_path: Path, body: str) -> subprocess.Popen[str]:
    code = textwrap.dedent("""\
        import sys, knoxpy
        client = knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt",
                                     endpoint="localhost", port=int(sys.argv[1]), style="path")
        """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code, str(srv.port)], cwd=tmp_path,
                            env=env(tmp_path), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt(proc: subprocess.Popen[str], held: Held, then_release: bool = False
              ) -> tuple[int, str, str]:
    """SIGINT once the server holds the request (released right after, with
    ``then_release``); the exit status, stdout and stderr."""
    try:
        assert held.arrived.wait(HANG_GUARD), "the held request never came"
        proc.send_signal(signal.SIGINT)
        if then_release:
            held.release.set()
        try:
            out, err = proc.communicate(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:  # show where it hangs: faulthandler on SIGABRT
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=HANG_GUARD)
            raise AssertionError(f"still running after SIGINT:\n{err}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


def assert_nothing_uploaded(srv: S3Server) -> None:
    bucket = srv.buckets["bkt"]
    assert bucket.uploads == {}  # ListMultipartUploads: none left, aborted
    assert "big.bin" not in bucket.objects
    assert any(r.method == "DELETE" and "uploadId=" in r.path for r in srv.requests)


def hold_upload(srv: S3Server, holds: List[Held]) -> Held:
    """Parts held until the SIGINT is sent, the completion held to the end: an upload
    that goes on after Ctrl-C (all its parts sent) never ends, one stopped is aborted
    (its completion, if sent before the Ctrl-C was seen, is cut like a part)."""
    holds.append(Held(srv, lambda r: r.method == "POST" and "uploadId=" in r.path))
    holds.append(Held(srv, lambda r: r.method == "PUT" and "partNumber=" in r.path))
    return holds[-1]


def test_ctrl_c_stops_knoxpy_put_and_aborts_the_upload(server: S3Server, holds: List[Held],
                                                       tmp_path: Path) -> None:
    big_file(tmp_path)
    parts = hold_upload(server, holds)
    proc = start_cli(server, tmp_path, "put", "big.bin", "s3://bkt/big.bin")
    status, out, err = interrupt(proc, parts, then_release=True)
    assert (status, out, err) == (130, "", "knoxpy: interrupted\n")
    assert_nothing_uploaded(server)
    assert sorted(os.listdir(tmp_path)) == ["big.bin"]  # no journal, no temporary file


def test_ctrl_c_in_a_script_blocked_in_upload_wait_aborts_the_upload(
        server: S3Server, holds: List[Held], tmp_path: Path) -> None:
    big_file(tmp_path)
    parts = hold_upload(server, holds)
    proc = start_script(server, tmp_path, """\
        client.upload("big.bin", "/big.bin").wait()
        print("completed")
        """)
    status, out, err = interrupt(proc, parts, then_release=True)
    assert status == -signal.SIGINT, err  # Python's own exit on a KeyboardInterrupt
    assert out == "" and err.rstrip().endswith("KeyboardInterrupt"), err
    assert_nothing_uploaded(server)


def test_a_cancelled_upload_waited_for_again_raises_cancelled(
        server: S3Server, holds: List[Held], tmp_path: Path) -> None:
    big_file(tmp_path)
    parts = hold_upload(server, holds)
    proc = start_script(server, tmp_path, """\
        op = client.upload("big.bin", "/big.bin")
        try:
            op.wait()
        except KeyboardInterrupt:
            try:
                op.wait()
            except knoxpy.Cancelled as err:
                print("Cancelled:", err)
        """)
    status, out, err = interrupt(proc, parts, then_release=True)
    assert (status, out, err) == (0, "Cancelled: cancelled (interrupted)\n", "")
    assert_nothing_uploaded(server)


def test_ctrl_c_in_knoxpy_run_cancels_at_exit_and_the_callback_gets_cancelled(
        server: S3Server, holds: List[Held], tmp_path: Path) -> None:
    big_file(tmp_path)
    parts = hold_upload(server, holds)
    proc = start_script(server, tmp_path, """\
        client.upload("big.bin", "/big.bin",
                      lambda err, res: print("callback:", type(err).__name__, flush=True))
        knoxpy.run()
        """)
    status, out, err = interrupt(proc, parts, then_release=True)
    assert status == -signal.SIGINT, err
    assert out == "callback: Cancelled\n"
    assert_nothing_uploaded(server)


def is_later_range(r: Any) -> bool:
    rng = r.headers.get("range", "")
    return r.method == "GET" and rng.startswith("bytes=") and not rng.startswith("bytes=0-")


def test_ctrl_c_in_a_script_blocked_in_download_wait_leaves_no_partial_file(
        server: S3Server, holds: List[Held], tmp_path: Path) -> None:
    server.put("bkt", "big.bin", os.urandom(SIZE))
    # the first range came, so the partial file exists; a later one sends its headers and
    # then a byte a second: a download that goes on regardless never ends, nor times out
    holds.append(Held(server, is_later_range, after=1))
    (tmp_path / "dl").mkdir()
    proc = start_script(server, tmp_path, """\
        client.download("/big.bin", "dl/big.bin").wait()
        """)
    status, _, err = interrupt(proc, holds[0])
    assert status == -signal.SIGINT, err
    assert os.listdir(tmp_path / "dl") == []


def test_ctrl_c_stops_knoxpy_get_and_leaves_no_partial_file(server: S3Server,
                                                            holds: List[Held],
                                                            tmp_path: Path) -> None:
    server.put("bkt", "big.bin", os.urandom(SIZE))
    # the answer's headers and 1 MiB of its body, then a byte a second: the partial file
    # is open, and a download that goes on regardless never ends, nor times out
    holds.append(Held(server, lambda r: r.method == "GET" and r.key == "big.bin",
                      after=1024 * 1024))
    (tmp_path / "dl").mkdir()
    proc = start_cli(server, tmp_path, "get", "s3://bkt/big.bin", "dl/")
    status, out, err = interrupt(proc, holds[0])
    assert (status, out, err) == (130, "", "knoxpy: interrupted\n")
    assert os.listdir(tmp_path / "dl") == []


def test_ctrl_c_stops_a_bulk_delete(server: S3Server, holds: List[Held],
                                    tmp_path: Path) -> None:
    for i in range(2500):
        server.put("bkt", f"p/{i:05d}", b"x")
    holds.append(Held(server, lambda r: r.method == "POST" and "delete" in r.query))
    proc = start_cli(server, tmp_path, "rm", "--recursive", "s3://bkt/p/")
    status, out, err = interrupt(proc, holds[0])
    assert (status, out, err) == (130, "", "knoxpy: interrupted\n")


