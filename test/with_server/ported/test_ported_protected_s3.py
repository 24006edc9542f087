"""Ported: LOKE/protected-s3, routes/buckets.coffee with src/aws.coffee.

An HTTP server in front of a private bucket: for ``GET /content/<file>`` (``index.html``
when the name has no extension) it calls ``client.getFile('/' + fileName, cb)``, then
``res.set awsRes.headers`` and ``awsRes.pipe res``; an error renders an error page.
Ported literally onto ``http.server``: the handler copies S3's headers, pipes the object
into ``self.wfile`` and runs its thread's loop. Several requests in a row on one
keep-alive connection must each get their object.
"""
from __future__ import annotations

import http.client
import http.server
import os.path
import threading
from typing import Any, Iterator, List, Tuple

import pytest
from ported_support import knoxpy_client, needs_knox, prefix, run_js

import knoxpy

# moto answers `Connection: close`; forwarded, that would close every connection (in Node
# too), so the port drops the hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding"}

def make_server(client: Any, under: str, peers: List[Any]) -> http.server.ThreadingHTTPServer:
    class Buckets(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            peers.append(self.client_address)  # the test's: which connection served it
            fileName = self.path[len("/content/"):] or "index.html"
            if os.path.splitext(fileName)[1] == "":
                fileName = os.path.join(fileName, "index.html")

            def returnFile(err: Any, awsRes: Any = None) -> None:
                if err:
                    body = f"Cannot retrieve file: {err}".encode()
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(awsRes.statusCode)
                for name, value in awsRes.headers.items():  # res.set awsRes.headers
                    if name not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.end_headers()
                awsRes.pipe(self.wfile)

            client.getFile(f"/{under}/{fileName}", returnFile)
            knoxpy.run(timeout=30)  # this thread's loop runs the callback and the pipe

        def log_message(self, *args: Any) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Buckets)


@pytest.fixture
def site(client: Any) -> Iterator[Tuple[Any, str]]:
    under = prefix("site")
    for name, body in FILES.items():
        client.putBuffer(body, f"/{under}/{name}",
                         {"Content-Type": "text/html" if name.endswith("html") else "text/css"}
                         ).wait(15).resume()
    yield client, under


FILES = {"index.html": b"<h1>home</h1>", "docs/index.html": b"<h1>docs</h1>" * 500,
         "style.css": b"body { color: red }"}


def _get_in_a_row(port: int, paths: List[str]) -> List[Tuple[int, str, bytes]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    for path in paths:
        conn.request("GET", path)
        r = conn.getresponse()
        out.append((r.status, r.getheader("content-type") or "", r.read()))
    conn.close()
    return out


PATHS = ["/content/", "/content/docs", "/content/style.css", "/content/missing.css",
         "/content/style.css"]


def test_objects_are_piped_into_responses_on_one_connection(site: Tuple[Any, str]) -> None:
    client, under = site
    peers: List[Any] = []
    server = make_server(client, under, peers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = _get_in_a_row(server.server_address[1], PATHS)
    finally:
        server.shutdown()
        server.server_close()
    assert [(s, t, b) for s, t, b in got if s == 200] == [
        (200, "text/html", FILES["index.html"]), (200, "text/html", FILES["docs/index.html"]),
        (200, "text/css", FILES["style.css"]), (200, "text/css", FILES["style.css"])]
    assert got[3][0] == 404 and b"NoSuchKey" in got[3][2]  # S3's answer, piped as it came
    assert len(peers) == len(PATHS) and len(set(peers)) == 1  # all on one connection


NODE = r"""
var path = require('path');
var server = http.createServer(function (req, res) {
  var fileName = req.url.slice('/content/'.length) || 'index.html';
  if (path.extname(fileName) === '') fileName = path.join(fileName, 'index.html');
  client.getFile('/' + cfg.under + '/' + fileName, function (err, awsRes) {
    if (err) { res.statusCode = 500; return res.end('Cannot retrieve file: ' + err.message); }
    var headers = Object.assign({}, awsRes.headers);
    delete headers.connection; delete headers['keep-alive']; delete headers['transfer-encoding'];
    res.writeHead(awsRes.statusCode, headers);
    awsRes.pipe(res);
  });
});
server.listen(0, '127.0.0.1', function () {
  var agent = new http.Agent({keepAlive: true, maxSockets: 1}), out = [];
  (function next(i) {
    if (i === cfg.paths.length) { server.close(); agent.destroy(); return finish(out); }
    http.get({port: server.address().port, host: '127.0.0.1', path: cfg.paths[i], agent: agent},
      function (r) { var body = []; r.on('data', c => body.push(c)).on('end', () => {
        out.push([r.statusCode, r.headers['content-type'] || '',
                  Buffer.concat(body).toString('latin1')]); next(i + 1); }); });
  })(0);
});
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str) -> None:
    client = knoxpy_client(moto_port, bucket)
    under = prefix("site-both")
    for name, body in FILES.items():
        client.putBuffer(body, f"/{under}/{name}",
                         {"Content-Type": "text/html" if name.endswith("html") else "text/css"}
                         ).wait(15).resume()
    js = run_js(NODE, moto_port, bucket, under=under, paths=PATHS)
    peers: List[Any] = []
    server = make_server(client, under, peers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        py = _get_in_a_row(server.server_address[1], PATHS)
    finally:
        server.shutdown()
        server.server_close()

    assert len(set(peers)) == 1  # the Python server kept the connection, as Node's did

    def neutral(rows: Any) -> List[Any]:  # the 404 body carries a request id of its own
        return [(s, t, b if s == 200 else s) for s, t, b in rows]
    assert neutral([(s, t, b.encode("latin1")) for s, t, b in js]) == neutral(py)
