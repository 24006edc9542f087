"""A small threaded HTTP proxy on 127.0.0.1 that forwards to an S3 server and can rewrite answers.

Put it in front of moto (or ``s3shaped``) to make one real answer hostile while every other
request goes through untouched::

    from servers.rewriting_proxy import RewritingProxy, error_xml, lazy

    with RewritingProxy(moto_port) as proxy:            # proxy.port: point a client there
        rule = proxy.rewrite("PUT /bkt/dst", body=error_xml("InternalError"),
                             pad=b" " * 4096, pieces=4, pause=0.05, count=5)
        ...                                              # the copy sees 200, padding, <Error>
        assert rule.hits == 1 and rule.sent > 4096

``proxy.rewrite(match, *, status=None, headers=None, body=None, pad=b'', pieces=1, pause=0.0,
gate=None, length=None, chunked=None, count=1)`` adds a :class:`Rewrite` and returns it. The next ``count``
requests that ``match`` are forwarded as usual, then their answer is rewritten:

  match    a substring of ``'METHOD /raw/path?query'`` or ``callable(ProxyRequest) -> bool``
           (``.method``, ``.target``, ``.headers`` (lower-case names), ``.body``)
  status   the status to send instead of upstream's (e.g. 200 for an error answer)
  headers  ``{name: value}`` set over upstream's headers; a value of None removes that header
  body     None: upstream's body; bytes: this body; ``callable(upstream_body) -> bytes or an
           iterable of bytes``; an iterable of bytes (e.g. :func:`lazy`): streamed as it is
           generated, never held whole
  pad      bytes sent before the body (S3's keep-alive whitespace), in ``pieces`` writes with
           ``pause`` seconds after each (the padding reaches the client in pieces)
  gate     a ``threading.Event``: after the padding, wait for it before sending the body (an
           answer held open for as long as the test wants, with no timing involved)
  length   the Content-Length to declare (may lie); default: the true length when the body is
           bytes, else the answer is chunked (``chunked=True`` forces chunking, ``chunked=False``
           with no length ends the body by closing the connection)

Counters: ``rule.hits`` (answers rewritten), ``rule.sent`` (body bytes, padding included, that
the proxy managed to write to the client: a client that refuses a body and hangs up stops it),
``rule.done`` (an Event set when a rewritten answer is over), ``proxy.requests`` (every
``'METHOD target'`` forwarded), ``proxy.sent`` (all body bytes sent to clients).

Helpers: :func:`error_xml` (an S3 ``<Error>`` document), :func:`lazy` (a large generated body,
never in memory), :func:`replace_tag` (a body transform: set an element's text everywhere, e.g.
to make listing continuation tokens cycle), :func:`rename_root` (a body transform: the same
document under another root name or with a namespace prefix on every element).

Script: ``python test/servers/rewriting_proxy.py UPSTREAM_PORT`` prints the port and forwards.
"""
from __future__ import annotations

import http.client
import http.server
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

Body = Union[None, bytes, Callable[[bytes], Any], Iterable[bytes]]
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection",
        "te", "trailer", "upgrade"}


def error_xml(code: str, message: str = "We encountered an internal error. Please try again.",
              **extra: str) -> bytes:
    """An S3 ``<Error>`` document, as S3 sends inside a 200 after its padding."""
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message>{fields}<RequestId>PROXY</RequestId></Error>"
            ).encode()


def lazy(size: int, fill: bytes = b" ", prefix: bytes = b"", suffix: bytes = b"",
         piece: int = 64 * 1024) -> Iterator[bytes]:
    """``prefix``, then ``fill`` repeated to make ``size`` bytes in all, then ``suffix``:
    generated a piece at a time, never held whole."""
    yield prefix
    left = size - len(prefix) - len(suffix)
    block = (fill * (piece // len(fill) + 1))[:piece]
    while left > 0:
        n = min(left, len(block))
        yield block[:n]
        left -= n
    yield suffix


def replace_tag(tag: str, value: str) -> Callable[[bytes], bytes]:
    """A body transform: the text of every ``<tag>`` (any namespace prefix) becomes ``value``."""
    pattern = re.compile(rb"(<(?:\w+:)?" + tag.encode() + rb">)[^<]*(</)")
    return lambda body: pattern.sub(lambda m: m.group(1) + value.encode() + m.group(2), body)


def rename_root(root: Optional[str] = None, prefix: Optional[str] = None,
                lead: bytes = b"") -> Callable[[bytes], bytes]:
    """A body transform: the root element renamed to ``root``; with ``prefix``, every element
    given that namespace prefix (declared on the root); ``lead`` put before the document."""
    def transform(body: bytes) -> bytes:
        text = body.decode()
        text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
        m = re.match(r"\s*<([\w.-]+)", text)
        assert m, f"not an XML document: {body[:80]!r}"
        old = m.group(1)
        if root is not None:
            text = re.sub(rf"<(/?){old}\b", rf"<\g<1>{root}", text)
        if prefix is not None:
            text = re.sub(r"\sxmlns=\"[^\"]*\"", "", text)
            text = re.sub(r"<(/?)([A-Za-z_][\w.-]*)", rf"<\1{prefix}:\2", text)
            first = text.index(">")
            text = (text[:first] + f' xmlns:{prefix}="http://s3.amazonaws.com/doc/2006-03-01/"'
                    + text[first:])
        return lead + b'<?xml version="1.0" encoding="UTF-8"?>\n' + text.encode()
    return transform


@dataclass
class ProxyRequest:
    method: str
    target: str
    headers: Dict[str, str]
    body: bytes

    @property
    def line(self) -> str:
        return f"{self.method} {self.target}"


@dataclass
class Rewrite:
    match: Union[str, Callable[[ProxyRequest], bool]]
    status: Optional[int] = None
    headers: Dict[str, Optional[str]] = field(default_factory=dict)
    body: Body = None
    pad: bytes = b""
    pieces: int = 1
    pause: float = 0.0
    gate: Optional[threading.Event] = None
    length: Optional[int] = None
    chunked: Optional[bool] = None
    count: int = 1
    hits: int = 0
    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def matches(self, req: ProxyRequest) -> bool:
        if callable(self.match):
            return bool(self.match(req))
        return self.match in req.line


class RewritingProxy:
    """Forwards every request to ``127.0.0.1:upstream_port``; see the module docstring."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.rules: List[Rewrite] = []
        self.requests: List[str] = []
        self.sent = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RewritingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RewritingProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def rewrite(self, match: Union[str, Callable[[ProxyRequest], bool]], *,
                status: Optional[int] = None, headers: Optional[Dict[str, Optional[str]]] = None,
                body: Body = None, pad: bytes = b"", pieces: int = 1, pause: float = 0.0,
                gate: Optional[threading.Event] = None, length: Optional[int] = None,
                chunked: Optional[bool] = None, count: int = 1) -> Rewrite:
        rule = Rewrite(match, status, dict(headers or {}), body, pad, max(1, pieces), pause,
                       gate, length, chunked, count)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _take(self, req: ProxyRequest) -> Optional[Rewrite]:
        with self._lock:
            self.requests.append(req.line)
            for rule in self.rules:
                if rule.hits < rule.count and rule.matches(req):
                    rule.hits += 1
                    return rule
        return None

    def _count(self, rule: Optional[Rewrite], n: int) -> None:
        with self._lock:
            self.sent += n
            if rule is not None:
                rule.sent += n


class _Handler(http.server.BaseHTTPRequestHandler):
    owner: RewritingProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _any(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(headers.get("content-length") or 0))
        req = ProxyRequest(self.command, self.path, headers, body)
        rule = self.owner._take(req)
        up = http.client.HTTPConnection(*self.owner.upstream, timeout=120)
        try:
            sent_headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            if body or self.command in ("PUT", "POST"):
                sent_headers["Content-Length"] = str(len(body))
            up.request(self.command, self.path, body=body or None, headers=sent_headers)
            answer = up.getresponse()
            status, reason = answer.status, answer.reason
            out = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP]
            if self.command == "HEAD" and answer.getheader("Content-Length"):
                out.append(("Content-Length", answer.getheader("Content-Length")))
            data = answer.read()
        finally:
            up.close()
        try:
            if rule is None:
                self._plain(status, reason, out, data)
            else:
                self._rewritten(rule, status, out, data)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up: as it may
            self.close_connection = True
        finally:
            if rule is not None:
                rule.done.set()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline().strip():
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _head(self, status: int, headers: List[Any]) -> None:
        reason = http.client.responses.get(status, "Unknown")
        lines = [f"HTTP/1.1 {status} {reason}\r\n"] + [f"{k}: {v}\r\n" for k, v in headers]
        self.wfile.write(("".join(lines) + "\r\n").encode("latin-1"))

    def _plain(self, status: int, reason: str, headers: List[Any], data: bytes) -> None:
        if self.command != "HEAD" and status not in (204, 304):
            headers = headers + [("Content-Length", str(len(data)))]
        else:
            data = b""
        self._head(status, headers)
        self.wfile.write(data)
        self.owner._count(None, len(data))

    def _rewritten(self, rule: Rewrite, status: int, headers: List[Any], data: bytes) -> None:
        body: Any = rule.body
        if body is None:
            body = data
        elif callable(body):
            body = body(data)
        status = rule.status if rule.status is not None else status
        names = {k.lower() for k in rule.headers}
        out = [(k, v) for k, v in headers if k.lower() not in names]
        out += [(k, v) for k, v in rule.headers.items() if v is not None]
        known = isinstance(body, (bytes, bytearray))
        chunked = rule.chunked if rule.chunked is not None else (rule.length is None and not known)
        if rule.length is not None:
            out.append(("Content-Length", str(rule.length)))
        elif chunked:
            out.append(("Transfer-Encoding", "chunked"))
        elif known:
            out.append(("Content-Length", str(len(rule.pad) + len(body))))
        else:
            out.append(("Connection", "close"))
            self.close_connection = True
        self._head(status, out)
        step = -(-len(rule.pad) // rule.pieces) if rule.pad else 0
        for i in range(0, len(rule.pad), step or 1):
            self._send(rule, rule.pad[i:i + step], chunked)
            if rule.pause:
                time.sleep(rule.pause)
        if rule.gate is not None:
            rule.gate.wait(120)
        for piece in ([bytes(body)] if known else body):
            self._send(rule, piece, chunked)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _send(self, rule: Rewrite, piece: bytes, chunked: bool) -> None:
        if not piece:
            return
        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        self.owner._count(rule, len(piece))


if __name__ == "__main__":
    with RewritingProxy(int(sys.argv[1])) as p:
        print(p.port, flush=True)
        threading.Event().wait()
