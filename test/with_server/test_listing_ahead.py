"""A listing asks for its next page while it parses the one it has (knoxpy.bulk.Lister).

The next page's start is read from the answer before it is parsed (``_xml.peek_next_token``),
and that page asked for on another worker; the parsed page decides whether that answer is the
next page. Against the fault server (every page asked for once, whatever the shape), and a
server of scripted pages on loopback (a guess that the parsed page contradicts is dropped).
"""
from __future__ import annotations

import http.server
import threading
import urllib.parse
from typing import Any, Dict, Iterator, List, Optional

import pytest
from conftest import fault_client
from servers.s3shaped import S3Server

import knoxpy


def test_every_page_is_asked_for_once_and_every_key_comes_once(srv: S3Server) -> None:
    c = fault_client(srv)
    keys = [f"p/{i:02d}" for i in range(9)]
    for key in keys:
        c.putBuffer(b"x", key).wait().resume()
    srv.requests.clear()
    assert [e["Key"] for e in c.listAll({"prefix": "p/", "max-keys": 2})] == keys
    pages = [r for r in srv.requests if r.method == "GET" and "list-type" in r.query]
    tokens = [r.query.get("continuation-token") for r in pages]
    assert len(pages) == 5 and len(set(tokens)) == 5, tokens  # none asked twice, none more
    flowing: List[str] = []
    c.listAll({"prefix": "p/", "max-keys": 2}).on(
        "data", lambda e: flowing.append(e["Key"])).wait(30)
    assert flowing == keys


def test_a_page_asked_for_ahead_tells_its_retry_once_when_used(srv: S3Server) -> None:
    c = fault_client(srv)
    for i in range(6):
        c.putBuffer(b"x", f"p/{i}").wait().resume()
    # the second page (the first asked for ahead) is answered 503 once, then served
    srv.inject("status", count=1, status=503, code="SlowDown",
               match=lambda r: r.method == "GET" and "continuation-token" in r.query)
    retries: List[Dict[str, Any]] = []
    listing = c.listAll({"prefix": "p/", "max-keys": 2}).on("retry", retries.append)
    keys: List[str] = []
    assert listing.on("data", lambda e: keys.append(e["Key"])).wait(30) == 6
    assert keys == [f"p/{i}" for i in range(6)]
    assert [(r["reason"], r["attempt"]) for r in retries] == [("503 SlowDown", 1)]


# Page one's comment names a page that is not the next: a fast look at the answer finds
# that token first, the parsed page names "t2".
PAGES = {
    None: ("<!-- <NextContinuationToken>fake</NextContinuationToken> -->"
           "<IsTruncated>true</IsTruncated><NextContinuationToken>t2</NextContinuationToken>"
           + "".join(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>" for k in "ab")),
    "t2": ("<IsTruncated>false</IsTruncated>"
           + "".join(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>" for k in "cd")),
    "fake": ("<IsTruncated>false</IsTruncated>"
             "<Contents><Key>WRONG</Key><Size>1</Size></Contents>"),
}


HANG_GUARD = 30  # seconds


class _Pages(http.server.BaseHTTPRequestHandler):
    asked: List[Optional[str]] = []
    fake_asked = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        query: Dict[str, List[str]] = urllib.parse.parse_qs(urllib.parse.urlsplit(
            self.path).query)
        token = query.get("continuation-token", [None])[0]
        self.asked.append(token)
        if token == "fake":
            self.fake_asked.set()
        body = (f"<ListBucketResult><Name>bkt</Name>{PAGES[token]}"
                "</ListBucketResult>").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def pages() -> Iterator[http.server.ThreadingHTTPServer]:
    _Pages.asked, _Pages.fake_asked = [], threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_page_asked_for_on_a_wrong_guess_is_not_delivered(
        pages: http.server.ThreadingHTTPServer) -> None:
    c = knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt", endpoint="127.0.0.1",
                            port=pages.server_address[1], style="path")
    assert [e["Key"] for e in c.listAll()] == ["a", "b", "c", "d"]
    # it was guessed and asked for (on a worker the listing does not wait for: its
    # request may arrive after the listing has ended) ...
    assert _Pages.fake_asked.wait(HANG_GUARD)
    assert _Pages.asked.count("t2") == 1  # ... and the parsed page's start followed
