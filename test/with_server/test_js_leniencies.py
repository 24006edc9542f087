"""Issue 12: the JS leniencies a literal port of knox code relies on, against moto."""
from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import textwrap
import time
import urllib.parse
from pathlib import Path
from typing import Any, List

import pytest

import knoxpy
from knoxpy import _js

ROOT = Path(__file__).resolve().parents[2]


# -- callbacks and listeners with fewer parameters (JS ignores extra arguments) ----------------

def test_a_callback_that_takes_only_err_is_called_with_err(client: Any) -> None:
    client.putBuffer(b"x", "/lenient/one").wait(10)
    seen: List[Any] = []
    op = client.deleteMultiple(["lenient/one"], lambda err: seen.append(err))
    knoxpy.run(timeout=10)
    assert seen == [None]
    op.wait(10)


def test_a_callback_with_no_parameters_is_called(client: Any) -> None:
    seen: List[str] = []
    client.putBuffer(b"x", "/lenient/two", lambda: seen.append("done"))
    knoxpy.run(timeout=10)
    assert seen == ["done"]


def test_a_transfer_callback_that_takes_only_err(client: Any, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"y" * 100)
    seen: List[Any] = []
    client.upload(str(src), "/lenient/three", lambda err: seen.append(err)).wait(30)
    knoxpy.run(timeout=10)
    assert seen == [None]


def test_listeners_with_fewer_parameters_and_once_removal(client: Any) -> None:
    ended: List[str] = []
    responses: List[str] = []
    req = client.get("/lenient/two")
    req.once("response", lambda: responses.append("response"))
    req.on("response", lambda res: (res.on("end", lambda: ended.append("end")), res.resume()))
    req.end()
    knoxpy.run(timeout=10)
    assert responses == ["response"] and ended == ["end"]
    assert req.listenerCount("response") == 1  # the once listener went, by its own function


def test_a_once_listener_can_be_removed_by_the_function_given() -> None:
    em = knoxpy.createClient(key="k", secret="s", bucket="bkt").get("/x")
    f = lambda: None  # noqa: E731
    em.once("response", f)
    em.removeListener("response", f)
    assert em.listenerCount("response") == 0


def test_a_varargs_callable_gets_every_argument_and_is_not_wrapped() -> None:
    def every(*args: Any) -> Any:
        return args

    assert _js.fit(every) is every
    assert _js.fit(lambda a, b: (a, b))(1, 2, 3) == (1, 2)


class _Relay:
    def __init__(self) -> None:
        self.seen: List[Any] = []

    def done(self, err: Any) -> None:
        self.seen.append(err)

    def __call__(self, err: Any, res: Any) -> None:
        self.seen.append((err, res))


def test_bound_methods_and_callable_objects_get_what_they_accept() -> None:
    relay = _Relay()
    _js.fit(relay.done)(None, "res", "extra")
    _js.fit(relay)(None, "res", "extra")
    assert relay.seen == [None, (None, "res")]


# -- a naive datetime is local time, Python's own rule ------------------------------------------

_SIGN = textwrap.dedent("""
    import datetime as dt, time, urllib.parse, knoxpy
    c = knoxpy.createClient(key='k', secret='s', bucket='bkt', signatureVersion=2)
    url = c.signedUrl('/f', dt.datetime.now() + dt.timedelta(minutes=5))
    expires = int(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)['Expires'][0])
    print(expires - int(time.time()))
""")


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "America/Los_Angeles", "UTC"])
def test_a_naive_expiration_is_local_time_in_every_zone(tz: str) -> None:
    env = dict(os.environ, TZ=tz, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _SIGN], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 295 <= int(out.stdout) <= 301  # five minutes from now, whatever the zone


def test_an_aware_expiration_is_its_instant() -> None:
    c = knoxpy.createClient(key="k", secret="s", bucket="bkt", signatureVersion=2)
    at = dt.datetime(2030, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    url = c.signedUrl("/f", at)
    expires = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["Expires"][0]
    assert int(expires) == int(dt.datetime(2030, 1, 1, 0, tzinfo=dt.timezone.utc).timestamp())


# -- None is JS undefined: not given --------------------------------------------------------------

def test_a_pager_with_none_params_lists_from_the_start(client: Any) -> None:
    for name in ("a", "b", "c"):
        client.putBuffer(b"x", f"/pager/{name}").wait(10)
    data = client.list({"prefix": "pager/", "marker": None, "delimiter": None,
                        "max-keys": 2}).wait(10)
    assert [e["Key"] for e in data["Contents"]] == ["pager/a", "pager/b"]
    data = client.list({"prefix": None, "marker": "pager/b"}).wait(10)
    assert [e["Key"] for e in data["Contents"]][:1] == ["pager/c"]


def test_a_none_header_is_left_out(client: Any) -> None:
    client.putBuffer(b"x", "/none-meta", {"x-amz-meta-note": None,
                                         "Content-Type": None}).wait(10)
    res = client.headFile("/none-meta").wait(10)
    assert "x-amz-meta-note" not in res.headers
    assert res.headers.get("content-type") != "None"


def test_set_header_none_is_refused_naming_the_header(client: Any) -> None:
    req = client.put("/x")
    with pytest.raises(knoxpy.ValidationError, match="x-amz-meta-note"):
        req.setHeader("x-amz-meta-note", None)


def test_none_options_mean_not_given(client_options: Any, tmp_path: Path) -> None:
    c = knoxpy.createClient(dict(client_options, region=None, token=None, timeout=None,
                                 maxRetries=None))
    src = tmp_path / "f"
    src.write_bytes(b"z" * 10)
    c.upload(str(src), "/none-opts", partSize=None, concurrency=None, resume=None).wait(30)
    url = c.signedUrl("/none-opts", time.time() + 60, {"verb": None, "qs": {"versionId": None},
                                          "contentType": None})
    assert "versionId" not in url and "None" not in url


# -- plain objects read like JS objects ------------------------------------------------------------

def test_list_results_read_both_ways(client: Any) -> None:
    client.putBuffer(b"x", "/objs/a").wait(10)
    data = client.list({"prefix": "objs/"}).wait(10)
    assert data.Contents[0].Key == data["Contents"][0]["Key"] == "objs/a"
    assert data.IsTruncated is False and data.Contents[0].Size == 1
    entry = next(iter(client.listAll({"prefix": "objs/"})))
    assert entry.Key == "objs/a"


def test_progress_and_results_read_both_ways(client: Any, tmp_path: Path) -> None:
    seen: List[Any] = []
    req = client.put("/objs/p", {"Content-Length": 3})
    req.on("progress", lambda p: seen.append((p.written, p.total, p.percent)))
    req.end(b"abc")
    req.wait(10)
    assert seen[-1] == (3, 3, 100)
    src = tmp_path / "f"
    src.write_bytes(b"q" * 1000)
    parts: List[Any] = []
    op = client.upload(str(src), "/objs/u")
    op.on("progress", lambda p: parts.append(p.written))
    result = op.wait(30)
    assert result.Key == "objs/u" and result.ETag == result["ETag"] and parts[-1] == 1000
    got = client.download("/objs/u", str(tmp_path / "g")).wait(30)
    assert got.size == 1000
    deleted = client.deleteAll(["objs/u", "objs/p", "objs/a"]).wait(30)
    assert deleted.deleted == deleted["deleted"] == 3 and deleted.errors == []


def test_event_payloads_read_both_ways(srv: Any) -> None:
    """Every dict an event carries is a Record where it is made ('part', 'copied',
    'keyError', 'retry'): ``info.delay`` reads as in JS."""
    from conftest import fault_client

    c = fault_client(srv, partSize=5 * 1024 * 1024)
    parts: List[Any] = []
    c.upload(b"z" * (6 * 1024 * 1024), "/ev/big").on("part", parts.append).wait(30)
    assert sorted(p.partNumber for p in parts) == [1, 2] and all(p.ETag for p in parts)
    srv.inject("status", count=1, match="GET /bkt/ev/big", status=503, code="SlowDown")
    retries: List[Any] = []
    res = c.get("/ev/big").on("retry", retries.append).end().wait(30)
    assert len(res.read()) == 6 * 1024 * 1024  # read whole: no body left flowing after the test
    assert [(r.attempt, r.delay >= 0) for r in retries] == [(1, True)]
    c.putBuffer(b"s", "/ev/small").wait(10)
    copied: List[Any] = []
    failed: List[Any] = []
    srv.inject("status", count=1, match="PUT /bkt/to/big", status=403, code="AccessDenied")
    c.copyAll("ev/", {"prefix": "to/"}).on("copied", copied.append).on(
        "keyError", failed.append).wait(30)
    assert [(e.Key, e.Code) for e in failed] == [("ev/big", "AccessDenied")]
    assert [(e.Key, e.DestKey) for e in copied] == [("ev/small", "to/small")]


def test_a_record_is_still_a_plain_dict() -> None:
    import copy
    import json
    import pickle

    r = _js.records({"a": 1, "b": [{"c": 2}]})
    assert r == {"a": 1, "b": [{"c": 2}]} and r.b[0].c == 2
    assert json.loads(json.dumps(r)) == r
    assert pickle.loads(pickle.dumps(r)) == r and copy.deepcopy(r).b[0].c == 2
    with pytest.raises(AttributeError):
        r.missing  # noqa: B018
    with pytest.raises(KeyError):
        r["missing"]  # noqa: B018
    r.d = 4
    assert r["d"] == 4 and "d" in dir(r)


# -- one region probe per client, not one per stream ------------------------------------------------

class _Pipe(io.RawIOBase):
    """A non-seekable source, as a socket or a pipe is."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._data.readinto(b)


def test_put_streams_probe_the_region_once(srv: Any, forget_learned: None) -> None:
    from conftest import fault_client

    c = fault_client(srv)
    for i in range(3):
        c.putStream(_Pipe(b"abc"), f"/s{i}", {"Content-Length": 3}).wait(10)
    heads = [r for r in srv.requests if r.method == "HEAD"]
    puts = [r for r in srv.requests if r.method == "PUT"]
    assert len(puts) == 3 and len(heads) == 1


# -- res.pipe(dest) ends what it owns, flushes the rest ---------------------------------------------

def test_a_request_handler_pipes_objects_into_its_response_again_and_again(client: Any) -> None:
    """The port of ``http.createServer((req, res) => s3.getFile(path, (e, r) => r.pipe(res)))``."""
    import http.client
    import http.server
    import threading

    client.putBuffer(b"hello from s3", "/served/hello.txt").wait(10)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a closed wfile would break the next one

        def do_GET(self) -> None:
            def on_file(err: Any, res: Any) -> None:
                self.send_response(res.statusCode)
                self.send_header("Content-Length", res.headers["content-length"])
                self.end_headers()
                res.pipe(self.wfile)

            client.getFile("/served" + self.path, on_file)
            knoxpy.run(timeout=30)  # this thread's loop: the callback and the pipe run here

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
        for _ in range(3):
            conn.request("GET", "/hello.txt")
            answer = conn.getresponse()
            assert (answer.status, answer.read()) == (200, b"hello from s3")
        conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_pipe_closes_a_file_on_disk_but_not_an_in_memory_buffer(client: Any,
                                                                  tmp_path: Path) -> None:
    client.putBuffer(b"abc", "/served/abc").wait(10)
    path = tmp_path / "out"
    f = open(path, "wb")
    buf = io.BytesIO()
    client.getFile("/served/abc", lambda err, res: res.pipe(f))
    client.getFile("/served/abc", lambda err, res: res.pipe(buf))
    knoxpy.run(timeout=30)
    assert f.closed and path.read_bytes() == b"abc"
    assert not buf.closed and buf.getvalue() == b"abc"


# -- errors say what happened ------------------------------------------------------------------------

_HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


def _scripted_client(port: int) -> Any:
    return knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt", endpoint="localhost",
                               port=port, style="path", maxRetries=0)


def test_an_html_error_page_names_the_status_and_the_request() -> None:
    from servers.scripted import Scripted

    with Scripted() as srv:
        srv.answer = (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(_HTML) + _HTML)
        c = _scripted_client(srv.port)
        with pytest.raises(knoxpy.S3Error) as caught:
            c.list({"prefix": "a b", "delimiter": "/"}).wait(30)
    text = str(caught.value)
    assert caught.value.statusCode == 502 and "502" in text
    # the URL as it went on the wire: a query, not a path with an escaped '?'
    assert f"GET http://localhost:{srv.port}/bkt/?prefix=a%20b&delimiter=%2F" in text
    assert "DTD" not in text


def test_an_unreadable_success_names_the_status_and_the_request() -> None:
    from servers.scripted import Scripted

    with Scripted() as srv:
        srv.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nnot xml"
        c = _scripted_client(srv.port)
        with pytest.raises(knoxpy.MalformedXML, match=r"GET http://localhost:\d+/bkt/ .*200"):
            c.list().wait(30)


def test_a_bodiless_error_of_a_transfer_names_the_request(tmp_path: Path) -> None:
    from servers.scripted import Scripted

    with Scripted() as srv:
        srv.answer = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
        c = _scripted_client(srv.port)
        with pytest.raises(knoxpy.S3Error, match=r"GET http://localhost:\d+/bkt/missing.*500"):
            c.download("/missing", str(tmp_path / "x")).wait(30)
