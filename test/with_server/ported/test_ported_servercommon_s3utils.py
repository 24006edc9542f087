"""Ported: meetmikey/serverCommon, lib/s3Utils.js.

Two helpers of a mail app's common library: ``signedURL`` (an expiry made with
``var expires = new Date(); expires.setMinutes(expires.getMinutes() + minutes)``, then
``client.signedUrl(s3Path, expires, headers)`` where ``headers`` carries a
``response-content-disposition`` that knox 0.9.2 takes as an option and ignores) and
``uploadResponseToS3`` (an image fetched with ``http.get`` streamed on with
``client.putStream(response, s3Path, {'Content-Length': response.headers['content-length'],
'Content-Type': response.headers['content-type']}, cb)``). Ported literally: ``new Date()``
as the naive ``datetime.now()``, ``http.get`` as ``urllib.request.urlopen``.
"""
from __future__ import annotations

import datetime as dt
import http.server
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterator, List

import pytest
from ported_support import fetch, needs_knox, prefix, run_js, stored, stored_head

import knoxpy

DEFAULT_EXPIRES_MINUTES = 30
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 300


def signedURL(client: Any, s3Path: str, expiresMinutesInput: Any, model: Any) -> str:
    expiresMinutes = expiresMinutesInput or DEFAULT_EXPIRES_MINUTES
    headers = None
    if model.get("hash"):  # passing an empty dict to the client causes errors, says the original
        headers = {"response-content-disposition": "inline; filename=" + model["filename"]}
    expires = dt.datetime.now()
    expires += dt.timedelta(minutes=expiresMinutes)
    return str(client.signedUrl(s3Path, expires, headers))


def uploadResponseToS3(client: Any, response: Any, s3Path: str,
                       callback: Callable[..., Any]) -> None:
    headers = {"Content-Length": response.headers["content-length"],
               "Content-Type": response.headers["content-type"]}

    def done(s3Err: Any, s3Response: Any = None) -> None:
        if s3Err:
            return callback(s3Err)
        s3Response.resume()
        if s3Response.statusCode != 200:
            return callback(Exception(f"putStream non 200 status code {s3Response.statusCode}"))
        callback()
    client.putStream(response, s3Path, headers, done)


@pytest.fixture
def image_server() -> Iterator[str]:
    class Image(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(IMAGE)))
            self.end_headers()
            self.wfile.write(IMAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Image)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/logo.png"
    server.shutdown()
    server.server_close()


def _expires_in(url: str) -> int:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    if "Expires" in query:
        return int(query["Expires"][0]) - int(time.time())
    return int(query["X-Amz-Expires"][0])


def test_a_signed_url_made_from_a_naive_now_lives_thirty_minutes(client: Any) -> None:
    key = "/" + prefix("signed") + "/mail body"
    client.putBuffer(b"the mail", key).wait(15).resume()
    url = signedURL(client, key, None, {"hash": "abc", "filename": "body.txt"})
    assert 1795 <= _expires_in(url) <= 1801
    assert "response-content-disposition" not in url  # an option knox does not know
    r = fetch(url)
    assert (r.status, r.data) == (200, b"the mail")


def test_an_http_response_is_streamed_into_s3(client: Any, moto_port: int, bucket: str,
                                               image_server: str) -> None:
    key = "/" + prefix("static") + "/logo.png"
    seen: List[Any] = []
    with urllib.request.urlopen(image_server) as response:
        uploadResponseToS3(client, response, key, lambda err=None: seen.append(err))
        knoxpy.run(timeout=30)
    assert seen == [None]
    assert stored(moto_port, bucket, key) == IMAGE
    assert stored_head(moto_port, bucket, key)["content-type"] == "image/png"


NODE = r"""
var expires = new Date();
expires.setMinutes(expires.getMinutes() + 30);
var url = client.signedUrl(cfg.object, expires,
                           {'response-content-disposition': 'inline; filename=body.txt'});
http.get(cfg.image, function (response) {
  var headers = {'Content-Length': response.headers['content-length'],
                 'Content-Type': response.headers['content-type']};
  client.putStream(response, cfg.dest, headers, function (err, res) {
    res.resume(); finish({url: url, status: res.statusCode, err: err && String(err)});
  });
});
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str, image_server: str) -> None:
    from ported_support import knoxpy_client

    key = "/" + prefix("signed-both") + "/mail body"
    js_dest, py_dest = ("/" + prefix(n) + "/logo.png" for n in ("static-js", "static-py"))
    client = knoxpy_client(moto_port, bucket, signatureVersion=2)  # knox's URLs
    client.putBuffer(b"the mail", key).wait(15).resume()
    js = run_js(NODE, moto_port, bucket, object=key, image=image_server, dest=js_dest)
    py_url = signedURL(client, key, None, {"hash": "abc", "filename": "body.txt"})
    with urllib.request.urlopen(image_server) as response:
        uploadResponseToS3(client, response, py_dest, lambda err=None: None)
        knoxpy.run(timeout=30)

    assert js["status"] == 200 and js["err"] is None
    strip = lambda u: urllib.parse.urlsplit(u)._replace(query="").geturl()  # noqa: E731
    assert strip(js["url"]) == strip(py_url)  # same host, path and escaping
    assert abs(_expires_in(js["url"]) - _expires_in(py_url)) <= 2
    assert set(urllib.parse.parse_qs(urllib.parse.urlsplit(js["url"]).query)) == set(
        urllib.parse.parse_qs(urllib.parse.urlsplit(py_url).query))
    assert fetch(js["url"]).data == fetch(py_url).data == b"the mail"
    assert stored(moto_port, bucket, js_dest) == stored(moto_port, bucket, py_dest) == IMAGE
    assert stored_head(moto_port, bucket, js_dest)["content-type"] == stored_head(
        moto_port, bucket, py_dest)["content-type"] == "image/png"
