"""knoxpy and the real knox (Node), side by side against the same recording S3 server.

The same script of knox calls (every request-making method, with keys full of special
characters) runs once through knox@0.9.2 under Node and once through knoxpy with
``signatureVersion: 2``, each on a bucket of its own of test/servers/s3shaped.py, in both
URL styles. Then:

- the requests on the wire must be the same: method, path (how each key is escaped),
  Host, Content-Type, Content-Length, Content-MD5, x-amz-copy-source, x-amz-acl and body
  (known differences, each asserted: ``%xx`` case, the port in a virtual-hosted Host
  header, and the Content-MD5 knoxpy adds to ``putBuffer``);
- every V2 ``Authorization`` knoxpy sent must be what knox's own auth.js computes for
  that request (same Date), so knox is the verifier of knoxpy's signatures;
- what the callbacks got must be the same: status codes, bodies and ``list`` results
  (with LastModified compared as a type, since the two runs happen at different times).

Skipped when Node or knox is missing (see test/knox_node.py).
"""
from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from knox_node import KNOX, needs_knox
from servers.s3shaped import S3Server

import knoxpy

pytestmark = needs_knox

KEY, SECRET = "AKIDKNOXDIFF", "diff/secret+key="
STRANGE = "/test/strange ø+?#'()!*~ 日本.txt"
OPS: List[List[Any]] = [
    ["put", "/test/obj.json", {"Content-Type": "application/json", "Content-Length": 13,
                               "x-amz-acl": "private"}, '{"name":"tj"}'],
    ["putBuffer", "a string of stuff", "/buffer with spaces.txt", {"Content-Type": "text/plain"}],
    ["putBuffer", "pluses", "buffer+with+pluses.txt", {"content-type": "text/plain"}],
    ["putBuffer", "questions", "/buffer?with?questions.txt", {}],
    ["putFile", "user.json", "/test/user2.json"],
    ["putFile", "Readme.md", "/test/Readme.md"],
    ["putFile", "doodle.png", "/doodle.png"],
    ["putStream", "user.json", STRANGE, {"Content-Length": 13}],
    ["get", "test/obj.json"], ["get", STRANGE], ["get", "/test/whatever"],
    ["head", "/test/obj.json"], ["getFile", "/test/user2.json"], ["headFile", STRANGE],
    ["copy", "/test/obj.json", "/test/copy ø (1).json"],
    ["copyFile", STRANGE, "copied/" + STRANGE],
    ["copyTo", "/test/obj.json", "BUCKET2", "/to/obj.json"],
    ["copyFileTo", STRANGE, "BUCKET2", STRANGE],
    ["request", "GET", "/test/obj.json?acl"],
    ["list", {"prefix": "test/", "delimiter": "/", "max-keys": 50}],
    ["list", {"prefix": "buffer with"}],
    ["list", None],
    ["del", "/test/obj.json"], ["deleteFile", "test/user2.json"],
    ["deleteMultiple", ["/buffer with spaces.txt", "buffer+with+pluses.txt",
                        "/buffer?with?questions.txt", "x&y<z>\"'", "ø/ø"]],
    ["list", None],
]
WIRE_HEADERS = ("host", "content-type", "content-length", "content-md5", "x-amz-copy-source",
                "x-amz-acl", "x-amz-security-token")

NODE = r"""
const knox = require(process.argv[1]);
const http = require('http');
const cfg = JSON.parse(process.argv[2]), ops = JSON.parse(process.argv[3]);
// *.localhost is loopback (RFC 6761); Node does not resolve it by itself.
const agent = new http.Agent({keepAlive: false, lookup: (h, o, cb) =>
  o && o.all ? cb(null, [{address: '127.0.0.1', family: 4}]) : cb(null, '127.0.0.1', 4)});
const client = knox.createClient({key: cfg.key, secret: cfg.secret, bucket: cfg.bucket,
  endpoint: 'localhost', port: cfg.port, style: cfg.style, agent: agent});
function bucketOf(b) { return b === 'BUCKET2' ? cfg.bucket2 : b; }
function collect(res, done) {
  let body = ''; res.setEncoding('utf8');
  res.on('data', c => { body += c; }).on('end', () => done({status: res.statusCode, body}));
}
function run(op) {
  const [name, ...a] = op;
  return new Promise((resolve, reject) => {
    const cb = (err, res) => err ? reject(err) : collect(res, resolve);
    const onRes = req => req.on('response', res => collect(res, resolve)).on('error', reject);
    switch (name) {
      case 'put': onRes(client.put(a[0], a[1])).end(a[2]); break;
      case 'putBuffer': client.putBuffer(Buffer.from(a[0]), a[1], a[2], cb); break;
      case 'putFile': client.putFile(cfg.dir + '/' + a[0], a[1], cb); break;
      case 'putStream': client.putStream(require('fs').createReadStream(cfg.dir + '/' + a[0]),
                                         a[1], a[2], cb); break;
      case 'get': case 'head': case 'del': onRes(client[name](a[0])).end(); break;
      case 'getFile': case 'headFile': case 'deleteFile': client[name](a[0], cb); break;
      case 'copy': onRes(client.copy(a[0], a[1])).end(); break;
      case 'copyFile': client.copyFile(a[0], a[1], cb); break;
      case 'copyTo': onRes(client.copyTo(a[0], bucketOf(a[1]), a[2])).end(); break;
      case 'copyFileTo': client.copyFileTo(a[0], bucketOf(a[1]), a[2], cb); break;
      case 'request': onRes(client.request(a[0], a[1])).end(); break;
      case 'deleteMultiple': client.deleteMultiple(a[0], cb); break;
      case 'list': (a[0] ? client.list.bind(client, a[0]) : client.list.bind(client))(
        (err, data) => err ? reject(err) : resolve({data})); break;
      default: reject(new Error('unknown op ' + name));
    }
  });
}
(async () => {
  const out = [];
  for (const op of ops) out.push(await run(op));
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
"""

VERIFY = r"""
const auth = require(process.argv[1] + '/lib/auth');
const cases = JSON.parse(process.argv[2]);
console.log(JSON.stringify(cases.map(c => auth.authorization({
  key: c.key, secret: c.secret, verb: c.verb, date: c.date,
  resource: auth.canonicalizeResource(c.resource), contentType: c.contentType,
  md5: c.md5 || '', amazonHeaders: auth.canonicalizeHeaders(c.headers)}))));
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "user.json").write_bytes(b'{"name":"tj"}')
    (tmp_path / "Readme.md").write_bytes(b"# Readme\n" * 100)
    (tmp_path / "doodle.png").write_bytes(bytes(range(256)) * 50)
    return tmp_path


@pytest.fixture
def server() -> Iterator[S3Server]:
    with S3Server(mode="store") as srv:
        yield srv


def run_knoxpy(server: S3Server, bucket: str, bucket2: str, style: str, dir_: Path
               ) -> List[Any]:
    client = knoxpy.createClient(key=KEY, secret=SECRET, bucket=bucket, endpoint="localhost",
                                 port=server.port, style=style, signatureVersion=2)

    def collect(res: Any) -> Dict[str, Any]:
        return {"status": res.statusCode, "body": res.read().decode()}

    out: List[Any] = []
    for name, *a in OPS:
        a = [bucket2 if x == "BUCKET2" else x for x in a]
        if name == "put":
            res = client.put(a[0], a[1]).end(a[2]).wait(15)
        elif name == "putBuffer":
            res = client.putBuffer(a[0].encode(), a[1], a[2]).wait(15)
        elif name == "putFile":
            res = client.putFile(str(dir_ / a[0]), a[1]).wait(15)
        elif name == "putStream":
            with open(dir_ / a[0], "rb") as f:
                res = client.putStream(f, a[1], a[2]).wait(15)
        elif name in ("get", "head", "del", "copy", "copyTo", "request"):
            method = {"del": "del_"}.get(name, name)
            res = getattr(client, method)(*a).end().wait(15)
        elif name == "list":
            data = client.list(a[0]).wait(15) if a[0] else client.list().wait(15)
            out.append({"data": data})
            continue
        else:  # the fn(err, res) forms
            res = getattr(client, name)(*a).wait(15)
        out.append(collect(res))
    return out


def _jsonable(value: Any) -> Any:
    """knoxpy's results as JSON.stringify shows knox's (a Date becomes its ISO string)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{value.microsecond // 1000:03d}Z")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _neutral(value: Any, bucket: str, bucket2: str) -> Any:
    """A result with what differs between the two runs (buckets, times, ids) blanked out."""
    text = json.dumps(value, sort_keys=False, ensure_ascii=False)
    text = text.replace(bucket2, "<bucket2>").replace(bucket, "<bucket>")
    text = re.sub(r'"LastModified": "[^"]*"', '"LastModified": "<date>"', text)
    text = re.sub(r"<(RequestId|LastModified)>[^<]*<", r"<\1><", text)
    return json.loads(text)


def _upper_escapes(path: str) -> str:
    return re.sub(r"%[0-9a-f]{2}", lambda m: m.group(0).upper(), path)


def _wire(server: S3Server, bucket: str, bucket2: str) -> List[Dict[str, Any]]:
    """The requests that reached the server for ``bucket``, with the bucket names neutral."""
    out = []
    for req in server.requests:
        if req.bucket not in (bucket, bucket2):
            continue
        headers = {k.lower(): v for k, v in req.headers.items()}
        seen = {h: headers.get(h) for h in WIRE_HEADERS}
        row = {"method": req.method, "path": req.path, "body": req.body, **seen}
        text = json.dumps(row, default=repr)
        out.append(json.loads(text.replace(bucket2, "<bucket2>").replace(bucket, "<bucket>")))
    return out


@pytest.mark.parametrize("style", ["path", "virtualHosted"])
def test_same_requests_and_results_as_knox(server: S3Server, files: Path, style: str) -> None:
    assert KNOX is not None
    cfg = {"key": KEY, "secret": SECRET, "port": server.port, "style": style,
           "dir": str(files), "bucket": f"knox-{style.lower()}", "bucket2": f"knox2-{style.lower()}"}
    node = subprocess.run(["node", "-e", NODE, str(KNOX), json.dumps(cfg), json.dumps(OPS)],
                          capture_output=True, text=True, timeout=60)
    assert node.returncode == 0, node.stderr
    from_knox = json.loads(node.stdout)
    knox_wire = _wire(server, cfg["bucket"], cfg["bucket2"])

    mine, mine2 = f"py-{style.lower()}", f"py2-{style.lower()}"
    from_knoxpy = _jsonable(run_knoxpy(server, mine, mine2, style, files))
    knoxpy_wire = _wire(server, mine, mine2)

    assert len(knoxpy_wire) == len(knox_wire) == len(OPS)
    for op, theirs, ours in zip(OPS, knox_wire, knoxpy_wire):
        # urllib3 writes every %xx of a request target in upper case (knox's %2b is %2B on
        # the wire): the same bytes to S3, and knoxpy signs what it sends (next test).
        assert ours["path"] == _upper_escapes(theirs["path"]), op
        # knox's virtual-hosted Host header is ``bucket.endpoint`` without the port (it sets
        # ``headers.Host = this.host``); knoxpy sends the port, as HTTP asks, and signs it.
        assert ours["host"] == theirs["host"] + ("" if style == "path" else f":{server.port}")
        if op[0] == "putBuffer":  # knoxpy adds a Content-MD5 to a body it holds (on purpose)
            assert ours.pop("content-md5") and theirs.pop("content-md5") is None
        assert dict(ours, path="", host="") == dict(theirs, path="", host=""), op
    for op, theirs, ours in zip(OPS, from_knox, from_knoxpy):
        assert _neutral(ours, mine, mine2) == _neutral(theirs, cfg["bucket"], cfg["bucket2"]), op


@pytest.mark.parametrize("style", ["path", "virtualHosted"])
@pytest.mark.parametrize("token", [None, "FQoDYXdzE/+token=="])
def test_every_v2_authorization_is_what_knox_computes(server: S3Server, files: Path, style: str,
                                                      token: Any) -> None:
    bucket, bucket2 = f"auth-{style.lower()}", f"auth2-{style.lower()}"
    client = knoxpy.createClient(key=KEY, secret=SECRET, bucket=bucket, endpoint="localhost",
                                 port=server.port, style=style, signatureVersion=2, token=token)
    for name, *a in OPS[:8] + OPS[14:19] + OPS[24:25]:
        a = [bucket2 if x == "BUCKET2" else x for x in a]
        if name == "put":
            client.put(a[0], a[1]).end(a[2]).wait(15).resume()
        elif name == "putBuffer":
            client.putBuffer(a[0], a[1], a[2]).wait(15).resume()
        elif name in ("putFile", "putStream"):
            with open(files / a[0], "rb") as f:
                op = (client.putFile(str(files / a[0]), a[1]) if name == "putFile"
                      else client.putStream(f, a[1], a[2]))
                op.wait(15).resume()
        elif name in ("copy", "copyTo", "request"):
            getattr(client, name)(*a).end().wait(15).resume()
        else:
            getattr(client, name)(*a).wait(15).resume()
    cases, sent = [], []
    for req in server.requests:
        headers = dict(req.headers)
        lower = {k.lower(): v for k, v in headers.items()}
        path = req.path if style == "virtualHosted" else req.path[len("/" + req.bucket):]
        cases.append({"key": KEY, "secret": SECRET, "verb": req.method, "date": lower["date"],
                      "resource": "/" + req.bucket + path, "contentType": lower.get("content-type"),
                      "md5": lower.get("content-md5"), "headers": headers})
        sent.append(lower["authorization"])
        assert lower.get("x-amz-security-token") == token
    assert len(cases) == 14
    done = subprocess.run(["node", "-e", VERIFY, str(KNOX), json.dumps(cases)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sent == json.loads(done.stdout)
