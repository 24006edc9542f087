"""CONTRACT §2: Node's event-loop guarantees, one test each, against moto on loopback."""
from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest

import knoxpy

ROOT = Path(__file__).resolve().parents[2]


def test_no_callback_before_the_call_returns(client: Any) -> None:
    """§2.1: putStream without Content-Length reports on a later tick, like process.nextTick."""
    calls: List[Any] = []
    op = client.putStream(io.BytesIO(b"x"), "/zalgo", {}, lambda err, res: calls.append(err))
    assert calls == []
    time.sleep(0.05)
    assert calls == []  # still nothing: only the loop delivers
    knoxpy.run(timeout=10)
    assert len(calls) == 1
    assert str(calls[0]) == "You must specify a Content-Length header."
    with pytest.raises(knoxpy.ValidationError):
        op.wait()


def test_callbacks_wait_for_the_loop_even_when_io_is_done(client: Any) -> None:
    """§2.1: a fast server does not make a callback run inside the caller's frame."""
    client.putBuffer(b"hi", "/fast").wait(10)
    seen: List[int] = []
    client.getFile("/fast", lambda err, res: (seen.append(res.statusCode), res.resume()))
    loop = knoxpy._loop.get_loop()
    deadline = time.monotonic() + 30
    while not loop._queue:  # the caller is busy: a worker gets the answer and queues it
        assert time.monotonic() < deadline, "no I/O happened while the caller was busy"
        time.sleep(0.01)
    assert seen == []
    knoxpy.run(timeout=10)
    assert seen == [200]


def test_late_listener_sees_every_event(client: Any, tmp_path: Path) -> None:
    """§2.2: attach listeners after the upload already finished in the background."""
    path = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    up = client.putFile(str(path), "/late-listener.bin")
    loop = knoxpy._loop.get_loop()
    deadline = time.monotonic() + 30
    while not any(getattr(fn, "__name__", "") == "_on_response" for fn, _ in list(loop._queue)):
        assert time.monotonic() < deadline, "the upload did not finish in the background"
        time.sleep(0.01)  # let the I/O run to completion (its answer queued) before anyone listens
    progress: List[dict] = []
    statuses: List[int] = []
    up.on("progress", progress.append)
    up.on("response", lambda res: statuses.append(res.statusCode))
    res = up.wait(30)
    assert statuses == [200] and res.statusCode == 200
    assert progress, "no progress events delivered"
    assert progress[-1] == {"written": len(data), "total": len(data), "percent": 100}
    assert [p["written"] for p in progress] == sorted(p["written"] for p in progress)
    assert client.get("/late-listener.bin").end().wait(30).read() == data


def test_callbacks_run_one_at_a_time_on_the_loop_thread(client: Any) -> None:
    """§2.3: many concurrent requests; every callback on this thread, never overlapping."""
    client.putBuffer(b"x" * 300_000, "/one-thread").wait(10)
    me = threading.get_ident()
    threads: set = set()
    active = [0]
    overlaps = [0]

    def on_data(_chunk: bytes) -> None:
        active[0] += 1
        if active[0] > 1:
            overlaps[0] += 1
        threads.add(threading.get_ident())
        time.sleep(0.001)  # widen the window a concurrent dispatch would need
        active[0] -= 1

    def on_response(err: Any, res: Any) -> None:
        threads.add(threading.get_ident())
        res.on("data", on_data)

    for _ in range(12):
        client.getFile("/one-thread", on_response)
    knoxpy.run(timeout=30)
    assert threads == {me}
    assert overlaps == [0]


def test_io_is_concurrent_while_user_code_runs(client: Any, tmp_path: Path) -> None:
    """§2.4: the upload proceeds while the caller is busy; wait() then has little left."""
    path = tmp_path / "c.bin"
    path.write_bytes(os.urandom(2 * 1024 * 1024))
    up = client.putFile(str(path), "/concurrent.bin")
    deadline = time.monotonic() + 20
    while not getattr(up, "req", None) or up.req.res is None and time.monotonic() < deadline:
        time.sleep(0.05)  # user code busy; not running the loop
        if up.req._loop._queue:  # the response is queued for delivery: the I/O happened
            break
    assert up.req._loop._queue, "no I/O happened while user code ran"
    assert up.wait(10).statusCode == 200


def test_concurrent_requests_overlap_in_time() -> None:
    """§2.4: eight requests are in flight at once: the server answers none of them until all
    eight have arrived (one after another, they would meet a 400 BarrierBroken after 30 s)."""
    from servers.s3shaped import S3Server

    with S3Server() as srv:
        c = knoxpy.createClient(key="k", secret="s", bucket="bkt", endpoint="127.0.0.1",
                                port=srv.port, style="path")
        c.putBuffer(b"hello", "/stall").wait(30)
        srv.inject("barrier", count=8, match="GET /bkt/stall")
        reqs = [c.get("/stall").end() for _ in range(8)]
        bodies = [r.wait(60).read() for r in reqs]
    assert bodies == [b"hello"] * 8, "the requests were not in flight at once"


def _run_script(body: str, **env: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(body)
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=full_env)


def test_script_waits_for_pending_work_at_exit(moto_port: int, bucket: str) -> None:
    """§2.5: a plain script that never runs the loop still gets its callbacks."""
    out = _run_script(f"""
        import knoxpy
        c = knoxpy.createClient(key='k', secret='s', bucket='{bucket}',
                                endpoint='localhost', port={moto_port})
        def done(err, res):
            print('put', err, res.statusCode)
            c.getFile('/exit.txt', lambda err, res: res.on('data', lambda d: print('got', d)))
        c.putBuffer(b'bye', '/exit.txt', done)
        print('main done')
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["main done", "put None 200", "got b'bye'"]


def test_work_left_at_exit_completes_where_no_thread_can_start(moto_port: int, bucket: str
                                                                ) -> None:
    """§2.5 on Python 3.12.0-3.12.1, which refuse new threads at exit, atexit hooks
    included (gh-113964): the exit drain then runs all the I/O left on the main thread, a
    streamed putFile and a multipart upload begun in its callbacks too. Simulated here on
    any Python by an atexit hook that runs before knoxpy's (atexit is LIFO)."""
    out = _run_script(f"""
        import atexit, os, tempfile, threading
        import knoxpy
        c = knoxpy.createClient(key='k', secret='s', bucket='{bucket}',
                                endpoint='localhost', port={moto_port})
        path = os.path.join(tempfile.mkdtemp(), 'six')
        with open(path, 'wb') as f:
            f.write(os.urandom(6 * 1024 * 1024))
        def refuse(self):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        atexit.register(setattr, threading.Thread, 'start', refuse)
        def got(err, res):
            body = bytearray()
            res.on('data', body.extend)
            res.on('end', lambda: print('got', len(body), body == open(path, 'rb').read()))
        def uploaded(err, res):
            print('upload', err)
            c.getFile('/exit-upload.bin', got)
        def put_file(err, res):
            print('putFile', err, res.statusCode)
            res.resume()
            c.upload(path, '/exit-upload.bin', None, uploaded, partSize=5 * 1024 * 1024)
        def put(err, res):
            print('put', err, res.statusCode)
            c.putFile(path, '/exit-file.bin', put_file)
        c.putBuffer(b'bye', '/exit.txt', put)
        print('main done')
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["main done", "put None 200", "putFile None 200",
                                       "upload None", "got 6291456 True"]


def test_unhandled_error_raises_from_run() -> None:
    """§2.6: an 'error' with no listener and no callback is raised, not swallowed."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    c = knoxpy.createClient(key="k", secret="s", bucket="bkt", endpoint="127.0.0.1", port=port,
                            style="path")
    c.get("/x").end()
    with pytest.raises(knoxpy.RequestError) as info:
        knoxpy.run(timeout=10)
    assert info.value.code == "ECONNREFUSED"


def test_unhandled_error_at_script_end_exits_1_with_traceback() -> None:
    """§2.6: at the end of a script, an unhandled error prints a traceback and exits 1."""
    out = _run_script("""
        import socket, knoxpy
        s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
        c = knoxpy.createClient(key='k', secret='s', bucket='bkt', endpoint='127.0.0.1', port=port, style='path')
        c.get('/x').end()
    """)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ECONNREFUSED" in out.stderr


def test_handled_error_goes_to_the_callback_and_wait_raises() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = knoxpy.createClient(key="k", secret="s", bucket="bkt", endpoint="127.0.0.1", port=port,
                            style="path")
    seen: List[Any] = []
    req = c.getFile("/x", lambda err, res: seen.append((err.code, res)))
    with pytest.raises(knoxpy.RequestError):
        req.wait(10)
    assert seen == [("ECONNREFUSED", None)]


def test_asyncio_objects_are_awaitable_and_deliver_on_the_running_loop(client: Any) -> None:
    async def main() -> Any:
        loop_thread = threading.get_ident()
        seen: List[int] = []
        await client.putBuffer(b"async!", "/aio.txt")
        req = client.get("/aio.txt")
        req.on("response", lambda res: seen.append(threading.get_ident()))
        res = await req.end()
        return res.statusCode, seen == [loop_thread], res

    status, same_thread, res = asyncio.run(main())
    assert status == 200 and same_thread
    assert res.read() == b"async!"


def test_wait_without_end_says_so(client: Any) -> None:
    with pytest.raises(RuntimeError, match="end"):
        client.get("/never-ended").wait(5)


def test_on_and_end_chain_like_node(client: Any) -> None:
    client.putBuffer(b"chain", "/chain.txt").wait(10)
    seen: List[bytes] = []
    client.get("/chain.txt").on("response", lambda res: res.on("data", seen.append)).end()
    knoxpy.run(timeout=10)
    assert b"".join(seen) == b"chain"
