"""Ported: goodeggs/knox-copy, lib/index.js (compiled from src/index.coffee).

Extends knox with ``copyFromBucket`` (a raw ``client.request('PUT', encodeURI(toKey),
headers)`` carrying ``x-amz-copy-source: encodeURI('/bucket/key')`` and
``Content-Length: 0``), ``listPageOfKeys`` (a raw ``request('GET', '/')`` whose
``req.path`` gets ``'?' + qs.stringify({max-keys, prefix, marker})`` appended after the
request was made, the XML read whole and parsed), and ``copyBucket`` (every key under a
prefix, page by page with ``marker``, copied under another prefix, counted). Ported
literally; the one change is the source client, which the original creates for real S3.
"""
from __future__ import annotations

import re
import urllib.parse
from typing import Any, Callable, Dict, List

from ported_support import needs_knox, prefix, run_js, stored

import knoxpy

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def encodeURI(s: str) -> str:  # JS's encodeURI, as a port writes it
    return urllib.parse.quote(s, safe="~@#$&()*!+=:;,.?/'")


def stripLeadingSlash(key: str) -> str:
    return re.sub(r"^/", "", key)


def swapPrefix(key: str, oldPre: str, newPre: str) -> str:
    return f"{newPre}/{stripLeadingSlash(key[len(oldPre):])}"


def copyFromBucket(self: Any, fromBucket: str, fromKey: str, toKey: str, headers: Any,
                   cb: Any = None) -> Any:
    if callable(headers):
        cb, headers = headers, {}
    headers["x-amz-copy-source"] = encodeURI(f"/{fromBucket}/{stripLeadingSlash(fromKey)}")
    headers["Content-Length"] = 0
    req = self.request("PUT", encodeURI(toKey), headers)
    if cb is not None:
        req.on("response", lambda res: cb(None, res))
        req.on("error", lambda err: cb(Exception(f"Error copying {fromKey}: {err}")))
        req.end()
    return req


def listPageOfKeys(self: Any, arg: Dict[str, Any], cb: Callable[..., Any]) -> None:
    maxKeys, marker, prefix_ = arg.get("maxKeys") or 1000, arg.get("marker"), arg.get("prefix")
    if prefix_ is not None:
        prefix_ = stripLeadingSlash(prefix_)
    if marker is not None:
        marker = stripLeadingSlash(marker)
    req = self.request("GET", "/", arg.get("headers") or {})
    # qs.stringify writes an undefined value as "marker="; urlencode would write "None"
    query = {"max-keys": maxKeys, "prefix": prefix_ or "", "marker": marker or ""}
    req.path += "?" + urllib.parse.urlencode(query)
    chunks: List[bytes] = []

    def on_response(res: Any) -> None:
        if res.statusCode != 200:
            return cb(Exception(f"Error listing bucket {arg}: {res.statusCode}"))
        res.on("data", chunks.append)
        res.on("end", lambda: cb(None, parse(b"".join(chunks))))

    def parse(body: bytes) -> Dict[str, Any]:
        import xml.etree.ElementTree as ET
        root = ET.fromstring(body)
        return {"IsTruncated": root.findtext(NS + "IsTruncated") == "true",
                "Contents": [{"Key": c.findtext(NS + "Key")} for c in root.iter(NS + "Contents")]}

    req.on("error", cb)
    req.on("response", on_response)
    req.end()


def copyBucket(self: Any, arg: Dict[str, Any], cb: Callable[..., Any]) -> None:
    fromBucket = arg.get("fromBucket") or self.bucket
    fromClient = knoxpy.createClient(dict(self.options, bucket=fromBucket))
    fromPrefix = stripLeadingSlash(arg.get("fromPrefix") or "")
    toPrefix = stripLeadingSlash(arg.get("toPrefix") or "")
    count = [0]

    def next_page(marker: Any) -> None:
        listPageOfKeys(fromClient, {"prefix": fromPrefix, "marker": marker, "maxKeys": 2}, on_page)

    def on_page(err: Any, page: Any = None) -> None:
        if err:
            return cb(err, count[0])
        keys = [c["Key"] for c in page["Contents"]]
        copy_each(keys, lambda: next_page(keys[-1]) if page["IsTruncated"] else cb(None, count[0]))

    def copy_each(keys: List[str], then: Callable[[], None]) -> None:
        if not keys:
            return then()
        key = keys[0]

        def copied(err: Any, res: Any = None) -> None:
            if err or res.statusCode != 200:
                return cb(err or Exception(f"{res.statusCode} response copying key {key}"),
                          count[0])
            res.resume()
            count[0] += 1
            copy_each(keys[1:], then)

        copyFromBucket(self, fromBucket, key, swapPrefix(key, fromPrefix, toPrefix), copied)

    next_page(None)


NAMES = ["plain.txt", "with space.txt", "ünïcode ø.txt", "deep/er/key+plus.txt", "x(1)!.txt"]


def _fill(client: Any, under: str) -> None:
    for name in NAMES:
        client.putBuffer(name.encode(), f"/{under}/{name}").wait(15).resume()


def test_copy_bucket_copies_every_key_under_the_prefix(client: Any, moto_port: int,
                                                        bucket: str) -> None:
    src, dst = prefix("copy-src"), prefix("copy-dst")
    _fill(client, src)
    result: List[Any] = []
    copyBucket(client, {"fromPrefix": "/" + src, "toPrefix": dst},
               lambda err, count: result.append((err, count)))
    knoxpy.run(timeout=60)
    assert result == [(None, len(NAMES))]
    for name in NAMES:
        assert stored(moto_port, bucket, f"{dst}/{name}") == name.encode()


def test_a_page_of_keys_reads_the_query_appended_to_req_path(client: Any) -> None:
    under = prefix("copy-page")
    _fill(client, under)
    pages: List[Any] = []
    listPageOfKeys(client, {"prefix": under + "/", "maxKeys": 2}, lambda err, p=None: pages.append((err, p)))
    knoxpy.run(timeout=30)
    [(err, page)] = pages
    assert err is None and page["IsTruncated"] is True
    assert len(page["Contents"]) == 2  # max-keys went on the wire, after request() was made


NODE = r"""
var qs = require('querystring');
function strip(k) { return k.replace(/^\//, ''); }
function copyFromBucket(fromBucket, fromKey, toKey, cb) {
  var headers = {'x-amz-copy-source': encodeURI('/' + fromBucket + '/' + strip(fromKey)),
                 'Content-Length': 0};
  var req = client.request('PUT', encodeURI(toKey), headers);
  req.on('response', res => cb(null, res)).on('error', cb); req.end();
}
function listPage(marker, cb) {
  var req = client.request('GET', '/', {});
  req.path += '?' + qs.stringify({'max-keys': 2, prefix: cfg.src, marker: marker});
  var body = '';
  req.on('response', res => { res.setEncoding('utf8'); res.on('data', c => body += c);
    res.on('end', () => cb(null, {IsTruncated: /<IsTruncated>true/.test(body),
      Contents: (body.match(/<Key>[^<]*<\/Key>/g) || []).map(k => ({Key: k.slice(5, -6)
        .replace(/&amp;/g, '&')}))})); });
  req.on('error', cb); req.end();
}
var count = 0, statuses = [];
function page(marker) {
  listPage(marker, (err, p) => {
    var keys = p.Contents.map(c => c.Key);
    (function each(i) {
      if (i === keys.length) return p.IsTruncated ? page(keys[keys.length - 1])
                                                  : finish({count: count, statuses: statuses});
      var to = cfg.dst + '/' + strip(keys[i].slice(cfg.src.length));
      copyFromBucket(cfg.bucket, keys[i], to, (err, res) => {
        statuses.push(res.statusCode); res.resume(); count++; each(i + 1); });
    })(0);
  });
}
page(undefined);
"""


@needs_knox
def test_side_by_side_with_knox(moto_port: int, bucket: str) -> None:
    from ported_support import knoxpy_client

    client = knoxpy_client(moto_port, bucket)
    js_src, js_dst, py_src, py_dst = (prefix(n) for n in ("cjs-src", "cjs-dst", "cpy-src",
                                                          "cpy-dst"))
    _fill(client, js_src)
    _fill(client, py_src)
    js = run_js(NODE, moto_port, bucket, src=js_src, dst=js_dst)
    result: List[Any] = []
    copyBucket(client, {"fromPrefix": py_src, "toPrefix": py_dst},
               lambda err, count: result.append((err, count)))
    knoxpy.run(timeout=60)
    assert js == {"count": len(NAMES), "statuses": [200] * len(NAMES)}
    assert result == [(None, len(NAMES))]
    for name in NAMES:
        assert stored(moto_port, bucket, f"{js_dst}/{name}") == stored(
            moto_port, bucket, f"{py_dst}/{name}") == name.encode()


def test_the_url_errors_name_follows_a_query_appended_to_req_path() -> None:
    # knox-copy's `req.path += '?' + qs`: what goes on the wire (and is signed) is the new
    # path; req.url, which errors and the request's repr show, must say the same
    from servers.s3shaped import S3Server

    with S3Server(mode="store") as srv:
        client = knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt",
                                     endpoint="localhost", port=srv.port, style="path")
        req = client.request("GET", "/", {})
        req.path += "?" + urllib.parse.urlencode({"max-keys": 2, "prefix": "a b/"})
        assert req.url == f"http://localhost:{srv.port}/bkt/?max-keys=2&prefix=a+b%2F"
        assert req.url in repr(req)
        res = req.end().wait(15)
        res.resume()
        assert srv.requests[-1].path.endswith("/bkt/?max-keys=2&prefix=a+b%2F")
        assert res.url == req.url
