"""A trace of every request a client makes: HAR 1.2, and a page with its waterfall.

``createClient(..., trace='run.har')`` (or ``'run.html'``, or a callable) and the CLI's
``knoxpy --trace run.har ...`` record each HTTP request knoxpy sends: method, URL, status,
headers, sizes, timings, and what caused it (the knoxpy call, the part number, the
request it retries, the region it was redirected from), with the teaching mode's signing
steps (canonical request, string to sign, key derivation) in a ``_knoxpy`` field of each
entry. ``knoxpy trace run.har -o run.html`` turns a HAR into the page. docs/explain.md
tells how to read it.

Where it goes: a path ending in ``.html``/``.htm`` gets the page, any other path the HAR;
the file is written by ``client.trace.save()``, at the end of a CLI command, and at
interpreter exit (after knoxpy's loop has drained, and once before in case draining
fails). A callable gets each finished entry (a HAR entry dict) on the I/O thread that
finished it: keep it quick. Memory is bounded: past ``max_entries`` finished entries the
oldest are folded into a summary (``log._knoxpy.summarised``).

Secrets never reach an entry: the signature is cut to its first 8 hex digits, the secret,
the session token and SSE-C keys are masked wherever they appear, and so are presigned
query parameters (``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``).

Timings (milliseconds, HAR's names; ``_knoxpy.timings`` keeps the raw clock):

- ``blocked``: from the request's hand-over to knoxpy's workers (or the end of a retry's
  back-off) until it was signed; measured.
- ``connect``/``ssl``: a new connection's TCP connect (name lookup included; ``dns`` is
  -1, as it is not seen apart) and TLS handshake; measured on knoxpy's own pools, -1 for
  a reused connection or a caller's ``agent``. HAR counts ``ssl`` inside ``connect``.
- ``send``: the head and body written (for a streamed body, until its last byte was taken).
- ``wait``: until knoxpy read the response head (first byte, to the poll's precision). For
  bodies urllib3 streams itself (a caller's agent) the head is read with the send: ``send``
  then holds the wait too.
- ``receive``: until the body was read to its end (by knoxpy for small bodies, by your
  code for the rest).
"""
from __future__ import annotations

import atexit
import collections
import contextvars
import datetime as _dt
import html
import itertools
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import weakref
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Sequence

from . import _explain, _loop
from .errors import ValidationError

__all__ = ["DEFAULT_MAX_ENTRIES", "Recorder", "har_to_page", "page_html", "recorder_for"]

DEFAULT_MAX_ENTRIES = 5000
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
# Frames of these files are not "the knoxpy call": the CLI is a caller, and the loop and
# emitters are where callbacks come from (a request made in a callback is its own call).
_CALLERS = {os.path.join(_PACKAGE, n) for n in ("cli.py", "__main__.py")}
_BOUNDARIES = {os.path.join(_PACKAGE, n) for n in ("_loop.py", "_emitter.py")}
_MASKED_QUERY = {"x-amz-signature": "<masked>", "signature": "<masked>",
                 "x-amz-security-token": "<session token>", "x-amz-credential": "<masked>",
                 "awsaccesskeyid": "<masked>"}
_ITERATORS = {"Lister": "listAll", "VersionLister": "listAllVersions"}  # knoxpy.bulk's
_SIGNATURE = re.compile(r"(Signature=|^AWS [^:]+:)[^,\s]+")


# -- the knoxpy call that caused a request -------------------------------------------------
class Call:
    """One knoxpy call (``upload``, ``putFile``, ...) and the requests it made."""

    __slots__ = ("id", "name", "started")
    _ids = itertools.count(1)

    def __init__(self, name: str) -> None:
        self.id = f"call-{next(Call._ids)}"
        self.name = name
        self.started = time.time()


_CALL: contextvars.ContextVar[Optional[Call]] = contextvars.ContextVar("knoxpy_call",
                                                                         default=None)


def _call_from_stack(depth: int = 2) -> Call:
    """The outermost knoxpy function between the caller's code and here."""
    frame: Any = sys._getframe(depth)
    name = "request"
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(_PACKAGE) or path in _CALLERS or path in _BOUNDARIES:
            break
        name = frame.f_code.co_name
        if name.startswith("__"):  # an iterator's __next__: named by what made it
            owner = type(frame.f_locals.get("self")).__name__
            name = _ITERATORS.get(owner, f"{owner}.{name}")
        frame = frame.f_back
    return Call(name)


def current_call() -> Call:
    """The call a request made now belongs to: carried to workers, else from the stack."""
    return _CALL.get() or _call_from_stack(3)


def _carry(fn: Callable[..., Any], args: Sequence[Any]
           ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """knoxpy._loop's spawn hook while tracing: work runs in the spawner's call."""
    call = _CALL.get() or _call_from_stack(3)
    ctx = contextvars.copy_context()
    ctx.run(_CALL.set, call)
    return ctx.run, (fn, *args)


# -- masking --------------------------------------------------------------------------------
def mask_url(url: str) -> str:
    """A URL with presigned signatures and credentials masked.

    >>> mask_url('https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&x=1')
    'https://b.s3.amazonaws.com/k?X-Amz-Signature=%3Cmasked%3E&x=1'
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(k.lower() in _MASKED_QUERY for k, _ in pairs):
        return url
    query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}="
        f"{urllib.parse.quote(_MASKED_QUERY.get(k.lower(), v), safe='-_.~')}"
        for k, v in pairs)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def mask_header(name: str, value: str) -> str:
    """A header value fit for a trace: signatures, tokens and SSE-C keys masked.

    >>> mask_header('Authorization', 'AWS4-HMAC-SHA256 Credential=A/x, Signature=0123abcd')
    'AWS4-HMAC-SHA256 Credential=A/x, Signature=<masked>'
    """
    lname = name.lower()
    if lname == "authorization":
        return _SIGNATURE.sub(lambda m: m.group(1) + "<masked>", value)
    if lname == "x-amz-security-token":
        return "<session token>"
    if lname.endswith("-customer-key"):
        return "<SSE-C key>"
    return value


def _headers(pairs: Iterable[tuple[str, Any]], secrets: Sequence[Optional[str]]
             ) -> List[Dict[str, str]]:
    return [{"name": k, "value": _explain._mask(mask_header(k, str(v)), secrets)}
            for k, v in pairs]


def _signing(sign: Dict[str, Any], secrets: Sequence[Optional[str]]) -> Dict[str, Any]:
    """The signing steps, with derived keys and the signature cut to 8 hex digits."""
    if not sign:
        return {}
    shown = dict(sign)
    if "signature" in shown:
        shown["signature"] = str(shown["signature"])[:8] + "…"
    steps = _explain._mask("\n".join(_explain._signing_lines(shown, numbered=1)), secrets)
    out: Dict[str, Any] = {"version": sign.get("version"), "steps": steps}
    for name in ("canonical_request", "string_to_sign", "scope"):
        if name in sign:
            out[name] = _explain._mask(str(sign[name]), secrets)
    if "key_steps" in sign:
        out["key_steps"] = [[n, str(p), _explain._short(k)] for n, p, k in sign["key_steps"]]
    return out


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def _region_of(sign: Dict[str, Any]) -> Optional[str]:
    scope = str(sign.get("scope") or "").split("/")
    return scope[1] if len(scope) > 2 else None


# -- one request, attempt by attempt ------------------------------------------------------
class Attempt:
    """One HTTP exchange: what was sent, what came back, and when (monotonic seconds)."""

    def __init__(self, recorder: Recorder, traced: Traced) -> None:
        self.id = next(recorder._ids)
        self.traced = traced
        self.queued = traced.ready
        self.signed = time.monotonic()
        self.connect: Any = None  # (start, TCP done, TLS done) of a new connection
        self.connection = ""
        self.sent: Optional[float] = None
        self.first_byte: Optional[float] = None
        self.done: Optional[float] = None
        self.method = self.url = ""
        self.request_headers: List[Dict[str, str]] = []
        self.request_size = 0
        self.status = 0
        self.status_text = ""
        self.response_headers: List[Dict[str, str]] = []
        self.response_size = -1
        self.error: Optional[str] = None
        self.cause: Dict[str, Any] = {}
        self.signing: Dict[str, Any] = {}
        self.region: Optional[str] = None
        self.finished = False

    def entry(self) -> Dict[str, Any]:
        """This attempt as a HAR 1.2 entry."""
        rec, ms = self.traced.recorder, _ms
        sent = self.sent if self.sent is not None else self.signed
        first = self.first_byte if self.first_byte is not None else sent
        done = self.done if self.done is not None else first
        connect = ssl = -1.0
        send_from = self.signed
        if self.connect is not None:
            c0, c1, c2 = self.connect
            connect, ssl = ms(c0, c2), (ms(c1, c2) if c2 > c1 else -1.0)
            send_from = max(self.signed, c2)
        timings = {"blocked": max(0.0, ms(self.queued, self.signed)), "dns": -1.0,
                   "connect": connect,
                   "ssl": ssl, "send": max(0.0, ms(send_from, sent)),
                   "wait": ms(sent, first), "receive": ms(first, done)}
        total = sum(v for k, v in timings.items() if v > 0 and k != "ssl")
        query = urllib.parse.urlsplit(self.url).query
        location = next((h["value"] for h in self.response_headers
                         if h["name"].lower() == "location"), "")
        mime = next((h["value"] for h in self.response_headers
                     if h["name"].lower() == "content-type"), "")
        call = self.traced.call
        knoxpy: Dict[str, Any] = {
            "id": self.id, "call": call.name, "callId": call.id, "attempt": self.traced.n,
            **self.cause, "connection": self.connection or None,
            "newConnection": self.connect is not None, "signing": self.signing,
            "timings": {k: round((v - rec._epoch_mono) * 1000, 3) for k, v in (
                ("queued", self.queued), ("signed", self.signed), ("sent", self.sent),
                ("firstByte", self.first_byte), ("done", self.done)) if v is not None},
        }
        if self.connect is not None:
            knoxpy["timings"]["connectStart"] = round((self.connect[0] - rec._epoch_mono)
                                                      * 1000, 3)
        part = urllib.parse.parse_qs(query).get("partNumber")
        if part:
            knoxpy["part"] = int(part[0]) if part[0].isdigit() else part[0]
        ranged = next((h["value"] for h in self.request_headers if h["name"].lower() == "range"),
                      None)
        if ranged:
            knoxpy["range"] = ranged
        if self.error is not None:
            knoxpy["error"] = self.error
        if not self.finished:
            knoxpy["unfinished"] = True
        return {
            "pageref": call.id,
            "startedDateTime": rec._iso(self.queued),
            "time": round(total, 3),
            "request": {
                "method": self.method, "url": self.url, "httpVersion": "HTTP/1.1",
                "cookies": [], "headers": self.request_headers,
                "queryString": [{"name": k, "value": v} for k, v in
                                urllib.parse.parse_qsl(query, keep_blank_values=True)],
                "headersSize": -1, "bodySize": self.request_size,
            },
            "response": {
                "status": self.status, "statusText": self.status_text,
                "httpVersion": "HTTP/1.1" if self.status else "", "cookies": [],
                "headers": self.response_headers,
                "content": {"size": max(self.response_size, 0), "mimeType": mime},
                "redirectURL": location, "headersSize": -1, "bodySize": self.response_size,
            },
            "cache": {},
            "timings": timings,
            "_knoxpy": knoxpy,
        }


class Traced:
    """The hooks of one ``ClientRequest``: each call is one event, on whichever thread."""

    def __init__(self, recorder: Recorder, call: Call) -> None:
        self.recorder = recorder
        self.call = call
        self.ready = time.monotonic()
        self.n = 0
        self.last: Optional[Attempt] = None
        self._why: Optional[Dict[str, Any]] = None

    def queued(self) -> None:
        """The request was handed to knoxpy's workers."""
        self.ready = time.monotonic()

    def sending(self, method: str, url: str, headers: Dict[str, str],
                sign: Optional[Dict[str, Any]], body: Any, secrets: Sequence[Optional[str]]
                ) -> Any:
        """Signed, about to go: record the request; returns the body (watched if streamed)."""
        if self.last is not None and not self.last.finished:
            self.finish()  # its body was discarded for this new attempt
        attempt = Attempt(self.recorder, self)
        self.n += 1
        attempt.method, attempt.url = method, _explain._mask(mask_url(url), secrets)
        attempt.request_headers = _headers(headers.items(), secrets)
        attempt.signing = _signing(sign or {}, secrets)
        attempt.region = _region_of(sign or {})
        previous, self.last = self.last, attempt
        with self.recorder._lock:
            self.recorder._pending[attempt.id] = attempt
        if previous is not None:
            why = self._why or {}
            self._why = None
            if "retryReason" in why:
                attempt.cause = {"retryOf": previous.id, **why}
            elif previous.region and attempt.region and previous.region != attempt.region:
                attempt.cause = {"redirectFrom": {"entry": previous.id, "region": previous.region,
                                                  "to": attempt.region,
                                                  "status": previous.status}}
            else:
                attempt.cause = {"resentAfter": previous.id}
        if isinstance(body, (bytes, bytearray, memoryview)):
            attempt.request_size = len(body)
            return body
        if body is None:
            return body
        return self._watch(attempt, body)

    @staticmethod
    def _watch(attempt: Attempt, body: Iterable[Any]) -> Iterator[Any]:
        for chunk in body:
            attempt.request_size += len(chunk)
            yield chunk
        attempt.sent = time.monotonic()

    def sent(self, exchange: Any) -> None:
        """The request is on the wire (for urllib3's own path, answered too)."""
        attempt = self.last
        if attempt is None:
            return
        now = time.monotonic()
        if attempt.sent is None:
            attempt.sent = now
        raw = getattr(exchange, "_raw", None)
        conn = getattr(exchange, "_conn", None) or getattr(raw, "_connection", None)
        if conn is not None:
            attempt.connection = f"{id(conn):x}"
            opened = getattr(conn, "opened", None)
            if opened is not None and opened[0] >= attempt.signed:
                attempt.connect = opened
        if raw is not None and attempt.first_byte is None:
            attempt.first_byte = now

    def answered(self, raw: Any, err: Optional[BaseException], body: Optional[bytes],
                 method: str) -> None:
        """The head came back (``raw``), or no answer (``err``); ``body``: read at once."""
        attempt = self.last
        if attempt is None:
            return
        now = time.monotonic()
        if attempt.first_byte is None or raw is None:
            attempt.first_byte = now
        if attempt.sent is None:
            attempt.sent = now
        secrets = self.recorder._secrets
        if raw is None:
            attempt.error = str(err) if err is not None else "no answer"
            self.finish()
            return
        attempt.status, attempt.status_text = raw.status, raw.reason or ""
        attempt.response_headers = _headers(raw.headers.items(), secrets)
        length = raw.headers.get("content-length")
        if body is not None:
            attempt.response_size = len(body)
        elif method == "HEAD" or raw.status in (204, 304):
            attempt.response_size = 0
        elif length is not None and length.isdigit():
            attempt.response_size = int(length)
        if body is not None or attempt.response_size == 0 or raw.length_remaining == 0:
            self.finish()

    def again(self, reason: str, delay: float) -> None:
        """The last attempt is retried after ``delay`` seconds, for ``reason``."""
        self._why = {"retryReason": reason, "backoffMs": round(delay * 1000, 3)}
        self.ready = time.monotonic() + delay

    def finish(self, error: Optional[BaseException] = None) -> None:
        """The last attempt's body was read to its end (or given up: ``error``)."""
        attempt = self.last
        if attempt is None or attempt.finished:
            return
        attempt.done = time.monotonic()
        if error is not None and attempt.error is None:
            attempt.error = str(error) or type(error).__name__
        attempt.finished = True
        self.recorder._finished(attempt)


# -- the recorder ----------------------------------------------------------------------------
class Recorder:
    """Where a client's requests are recorded: a ``.har`` or ``.html`` path, or a callable.

    >>> rec = Recorder(lambda entry: None)
    >>> rec.har()['log']['version']
    '1.2'
    """

    def __init__(self, target: Any, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.path: Optional[str] = None
        self._sink: Optional[Callable[[Dict[str, Any]], Any]] = None
        if isinstance(target, (str, os.PathLike)):
            self.path = os.fspath(target)
        elif callable(target):
            self._sink = target
        else:
            raise ValidationError("trace must be a file path (.har or .html) or a callable "
                                  f"taking each HAR entry, not {type(target).__name__}")
        if not isinstance(max_entries, int) or isinstance(max_entries, bool) or max_entries < 1:
            raise ValidationError(f"max_entries must be a positive int, not {max_entries!r}")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._entries: Deque[Dict[str, Any]] = collections.deque()
        self._pending: Dict[int, Attempt] = {}  # sent, body not read to its end yet
        self._calls: Dict[str, Dict[str, Any]] = {}
        self._summary: Dict[str, Any] = {"entries": 0, "bytesSent": 0, "bytesReceived": 0,
                                         "statuses": {}}
        self._secrets: Sequence[Optional[str]] = ()
        self._epoch_mono = time.monotonic()
        self._epoch_wall = time.time()
        _recording(+1)
        weakref.finalize(self, _recording, -1)
        if self.path is not None:
            atexit.register(_save_at_exit, weakref.ref(self))

    def __repr__(self) -> str:
        return f"<knoxpy.trace.Recorder {self.path or self._sink!r}>"

    def __reduce__(self) -> Any:
        # Client options travel to other processes (a Dask cluster's workers, fsspec's
        # pickled filesystems); a recording stays in this one: there the trace is off.
        return (_not_traced, ())

    def _iso(self, mono: float) -> str:
        wall = self._epoch_wall + (mono - self._epoch_mono)
        return _dt.datetime.fromtimestamp(wall, _dt.timezone.utc).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")

    def track(self, secrets: Sequence[Optional[str]]) -> Traced:
        """A new request of the current knoxpy call (its hooks)."""
        if secrets and not self._secrets:
            self._secrets = tuple(secrets)
        call = current_call()
        with self._lock:
            if call.id not in self._calls:
                self._calls[call.id] = {
                    "id": call.id, "title": call.name, "pageTimings": {},
                    "startedDateTime": _dt.datetime.fromtimestamp(
                        call.started, _dt.timezone.utc).isoformat(
                        timespec="milliseconds").replace("+00:00", "Z")}
        return Traced(self, call)

    def _finished(self, attempt: Attempt) -> None:
        entry = attempt.entry()
        with self._lock:
            self._pending.pop(attempt.id, None)
            if self._sink is None:
                self._entries.append(entry)
            while len(self._entries) > self.max_entries:
                self._summarise(self._entries.popleft())
            if len(self._calls) > 2 * self.max_entries:  # forget calls no entry names
                used = {e["pageref"] for e in self._entries}
                used.update(a.traced.call.id for a in self._pending.values())
                self._calls = {k: v for k, v in self._calls.items() if k in used}
        if self._sink is not None:
            self._sink(entry)

    def _summarise(self, entry: Dict[str, Any]) -> None:
        s = self._summary
        s["entries"] += 1
        s["bytesSent"] += max(entry["request"]["bodySize"], 0)
        s["bytesReceived"] += max(entry["response"]["bodySize"], 0)
        status = str(entry["response"]["status"])
        s["statuses"][status] = s["statuses"].get(status, 0) + 1
        s.setdefault("from", entry["startedDateTime"])
        s["to"] = entry["startedDateTime"]

    def entries(self) -> List[Dict[str, Any]]:
        """The finished entries kept, oldest first."""
        with self._lock:
            return list(self._entries)

    def har(self) -> Dict[str, Any]:
        """The whole trace as a HAR 1.2 document (requests still under way included, marked
        ``_knoxpy.unfinished``)."""
        with self._lock:
            pending = list(self._pending.values())
        unfinished = [a.entry() for a in pending]
        with self._lock:
            entries = sorted([*self._entries, *unfinished], key=lambda e: e["startedDateTime"])
            used = {e["pageref"] for e in entries}
            pages = [p for p in self._calls.values() if p["id"] in used]
            summary = dict(self._summary)
        from . import __version__

        creator = {"name": "knoxpy", "version": __version__}
        log: Dict[str, Any] = {"version": "1.2", "creator": creator, "pages": pages,
                               "entries": entries, "comment": "recorded by knoxpy"}
        if summary["entries"]:
            log["_knoxpy"] = {"summarised": summary}
        return {"log": log}

    def save(self, path: Optional[str] = None) -> str:
        """Write the trace (the page for ``.html``/``.htm``, else HAR) and return its path.

        Written whole to a temporary file, then renamed: a reader never sees half a trace.
        """
        path = path or self.path
        if path is None:
            raise ValidationError("this trace goes to a callable: give save() a path")
        text = (page_html(self.har()) if path.lower().endswith((".html", ".htm"))
                else json.dumps(self.har(), indent=1, ensure_ascii=False))
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        return path


_live = [0]  # recorders alive: while there is one, spawned work carries its knoxpy call
_live_lock = threading.Lock()


def _recording(change: int) -> None:
    with _live_lock:
        _live[0] += change
        _loop.set_spawn_hook(_carry if _live[0] else None)


def _save_at_exit(ref: weakref.ref[Recorder]) -> None:
    recorder = ref()
    if recorder is None:
        return
    try:
        recorder.save()  # in case draining the loop ends the process
        _loop._drain_at_exit()
        recorder.save()
    except OSError as err:
        print(f"knoxpy: could not write the trace {recorder.path}: {err}", file=sys.stderr)


def _not_traced() -> None:
    return None


def recorder_for(option: Any) -> Optional[Recorder]:
    """The client option ``trace``: None/False (off), a Recorder (shared), a path or callable."""
    if option is None or option is False:
        return None
    if isinstance(option, Recorder):
        return option
    return Recorder(option)


# -- the page --------------------------------------------------------------------------------
def page_html(har: Dict[str, Any]) -> str:
    """A self-contained HTML page (no network needed) showing the HAR's waterfall."""
    # In a <script> element nothing may close it or open a comment: <, > and & escaped
    data = (json.dumps(har, ensure_ascii=False).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))
    title = f"knoxpy trace: {len(har.get('log', {}).get('entries', []))} requests"
    return (_PAGE.replace("@TITLE@", html.escape(title))
            .replace("@STYLE@", _STYLE).replace("@SCRIPT@", _SCRIPT).replace("@DATA@", data))


def har_to_page(har_path: str, page_path: str) -> int:
    """``knoxpy trace FILE.har -o PAGE.html``: the page for a HAR; returns its entry count."""
    with open(har_path, encoding="utf-8") as f:
        har = json.load(f)
    if not isinstance(har, dict) or not isinstance(har.get("log"), dict) or not isinstance(
            har["log"].get("entries"), list):
        raise ValueError(f"{har_path} is not a HAR file (no log.entries)")
    tmp = f"{page_path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page_html(har))
    os.replace(tmp, page_path)
    return len(har["log"]["entries"])


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>@TITLE@</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>@STYLE@</style></head>
<body>
<header><h1>@TITLE@</h1><p id="summary"></p>
<p class="legend"><span class="seg blocked"></span>queued &amp; signing
<span class="seg connect"></span>connect <span class="seg ssl"></span>TLS
<span class="seg send"></span>send <span class="seg wait"></span>wait (first byte)
<span class="seg receive"></span>receive <span class="seg backoff"></span>retry back-off</p>
</header>
<main id="waterfall"><noscript>This page draws its waterfall with JavaScript.</noscript></main>
<script type="application/json" id="har">@DATA@</script>
<script>@SCRIPT@</script>
</body></html>
"""

_STYLE = """
body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fff}
header{padding:10px 16px;border-bottom:1px solid #ddd;background:#f7f7f9}
h1{font-size:17px;margin:0 0 4px}
#summary{margin:0 0 4px;color:#555}
.legend{margin:0;color:#555}.legend .seg{display:inline-block;width:14px;height:10px;
margin:0 3px 0 10px;vertical-align:middle}
main{padding:6px 16px 40px}
.call{margin-top:14px;padding:4px 6px;background:#eef1f6;font-weight:600;border-radius:3px}
.call .n{font-weight:400;color:#666}
.row{display:grid;grid-template-columns:42px 58px minmax(180px,2fr) 52px 170px 3fr;
align-items:center;gap:6px;padding:2px 6px;cursor:pointer;border-bottom:1px solid #f0f0f0}
.row:hover{background:#fafbff}.row.open{background:#f3f6ff}
.row .id{color:#888;font-variant-numeric:tabular-nums}
.row .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-family:monospace}
.row .status.bad{color:#b00020;font-weight:600}
.badges{white-space:nowrap;overflow:hidden}
.badge{display:inline-block;padding:0 5px;border-radius:8px;background:#e4e7ee;
font-size:11px;margin-right:3px;white-space:nowrap}
.badge.retry{background:#ffe2c2}.badge.redirect{background:#d7ecff}
.track{position:relative;height:14px;background:#fafafa}
.bar{position:absolute;top:2px;height:10px;display:flex;min-width:2px}
.seg{height:100%}.blocked{background:#c9c9c9}.connect{background:#f4a641}
.ssl{background:#b266ff}.send{background:#43a047}.wait{background:#2f80ed}
.receive{background:#00acc1}.backoff{background:repeating-linear-gradient(45deg,#ffd2a6,
#ffd2a6 3px,#fff 3px,#fff 6px)}
.gap{position:absolute;top:6px;height:2px;background:#f08a24}
.details{display:none;padding:6px 12px 12px 54px;background:#fbfcff;
border-bottom:1px solid #e3e6ef}
.details.open{display:block}
.details h3{font-size:13px;margin:10px 0 3px}
.details pre{margin:0;padding:6px;background:#f4f5f8;overflow-x:auto;font-size:12px}
.details table{border-collapse:collapse;font-size:12px}
.details td{padding:1px 8px 1px 0;vertical-align:top;font-family:monospace}
.details td:first-child{color:#555;white-space:nowrap}
"""

_SCRIPT = r"""
(function(){
const har = JSON.parse(document.getElementById('har').textContent);
const log = har.log || {}; const entries = (log.entries || []).slice();
const main = document.getElementById('waterfall');
const el = (tag, cls, text) => { const e = document.createElement(tag);
  if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const pos = v => (v > 0 ? v : 0);
const start = e => Date.parse(e.startedDateTime);
entries.sort((a, b) => start(a) - start(b));
const t0 = entries.length ? Math.min(...entries.map(start)) : 0;
const t1 = entries.length ? Math.max(...entries.map(e => start(e) + e.time)) : 1;
const span = Math.max(t1 - t0, 1);
const pct = ms => (100 * ms / span);
const kx = e => e._knoxpy || {};
const byId = {}; entries.forEach((e, i) => { byId[kx(e).id !== undefined ? kx(e).id : i] = e; });
const summary = document.getElementById('summary');
const sumd = (log._knoxpy || {}).summarised;
summary.textContent = entries.length + ' requests in ' + (span / 1000).toFixed(3) + ' s, '
  + 'grouped by the knoxpy call that made them; click a row for its signing steps and headers.'
  + (sumd ? ' ' + sumd.entries + ' older requests were summarised (not shown).' : '');
const groups = []; const groupOf = {};
(log.pages || []).forEach(p => { groupOf[p.id] = {title: p.title, id: p.id, rows: []};
  groups.push(groupOf[p.id]); });
entries.forEach(e => { const ref = e.pageref || 'other';
  if (!groupOf[ref]) { groupOf[ref] = {title: ref, id: ref, rows: []}; groups.push(groupOf[ref]); }
  groupOf[ref].rows.push(e); });
function kv(rows) { const t = el('table');
  rows.forEach(([k, v]) => { const tr = el('tr'); tr.append(el('td', '', k), el('td', '', v));
    t.append(tr); }); return t; }
function details(e) {
  const d = el('div', 'details'); const k = kx(e); const t = e.timings;
  d.append(el('h3', '', 'Request'), el('pre', 'url', e.request.method + ' ' + e.request.url));
  const cause = [['knoxpy call', k.call || ''], ['attempt', String(k.attempt || 1)]];
  if (k.part !== undefined) cause.push(['part', String(k.part)]);
  if (k.range) cause.push(['range', k.range]);
  if (k.retryOf !== undefined) cause.push(['retry of', '#' + k.retryOf + ' (' + k.retryReason
    + ', back-off ' + k.backoffMs + ' ms)']);
  if (k.redirectFrom) cause.push(['redirected from', '#' + k.redirectFrom.entry + ' (region '
    + k.redirectFrom.region + ' \u2192 ' + k.redirectFrom.to + ')']);
  if (k.resentAfter !== undefined) cause.push(['sent again after', '#' + k.resentAfter]);
  if (k.error) cause.push(['error', k.error]);
  cause.push(['connection', (k.newConnection ? 'new ' : 'reused ') + (k.connection || '')]);
  d.append(kv(cause));
  d.append(el('h3', '', 'Timings (ms)'), kv(['blocked', 'dns', 'connect', 'ssl', 'send', 'wait',
    'receive'].map(n => [n, t[n] === undefined || t[n] < 0 ? '\u2014' : t[n].toFixed(1)])));
  const sign = k.signing || {};
  d.append(el('h3', '', 'Signing steps'));
  d.append(el('pre', 'steps', sign.steps || '(not signed by knoxpy)'));
  d.append(el('h3', '', 'Request headers'),
           kv(e.request.headers.map(h => [h.name, h.value])));
  d.append(el('h3', '', 'Response: ' + e.response.status + ' ' + e.response.statusText),
           kv(e.response.headers.map(h => [h.name, h.value])));
  return d;
}
function bar(e) {
  const track = el('div', 'track'); const t = e.timings; const k = kx(e);
  const left = start(e) - t0;
  if (k.backoffMs > 0) { const g = el('div', 'seg backoff gap');
    g.style.left = pct(Math.max(0, left - k.backoffMs)) + '%';
    g.style.width = pct(Math.min(k.backoffMs, left)) + '%'; g.title = 'retry back-off';
    track.append(g); }
  const b = el('div', 'bar'); b.style.left = pct(left) + '%';
  b.style.width = pct(e.time) + '%';
  b.dataset.start = String(left); b.dataset.end = String(left + e.time);
  const connect = pos(t.connect) - pos(t.ssl);
  [['blocked', pos(t.blocked)], ['connect', connect], ['ssl', pos(t.ssl)], ['send', pos(t.send)],
   ['wait', pos(t.wait)], ['receive', pos(t.receive)]].forEach(([n, v]) => {
    if (v <= 0) return; const s = el('div', 'seg ' + n);
    s.style.width = (e.time > 0 ? 100 * v / e.time : 0) + '%'; s.title = n + ' ' + v.toFixed(1)
      + ' ms'; b.append(s); });
  b.title = e.request.method + ' ' + e.time.toFixed(1) + ' ms';
  track.append(b); return track;
}
// calls of the same name one after another (300 putBuffer calls) share one heading
const shown = [];
groups.forEach(g => { if (!g.rows.length) return; const last = shown[shown.length - 1];
  if (last && last.title === g.title) { last.rows.push(...g.rows); last.calls += 1; }
  else shown.push({title: g.title, id: g.id, rows: g.rows.slice(), calls: 1}); });
shown.forEach(g => {
  const n = g.rows.length;
  const head = el('div', 'call', g.title); head.append(el('span', 'n', '  \u2014 '
    + (g.calls > 1 ? g.calls + ' calls, ' : '') + n + ' request' + (n > 1 ? 's' : '')));
  head.dataset.call = g.id; main.append(head);
  g.rows.forEach(e => {
    const k = kx(e); const row = el('div', 'row'); row.id = 'e-' + k.id; row.dataset.id = k.id;
    let path = e.request.url; try { const u = new URL(e.request.url);
      path = decodeURIComponent(u.pathname) + u.search; } catch (_) {}
    const name = el('div', 'name', path); name.title = e.request.url;
    const status = el('div', 'status' + (e.response.status >= 300 || !e.response.status
      ? ' bad' : ''), e.response.status ? String(e.response.status) : 'error');
    const badges = el('div', 'badges');
    if (k.part !== undefined) badges.append(el('span', 'badge part', 'part ' + k.part));
    if (k.range) badges.append(el('span', 'badge range', k.range.replace('bytes=', '')));
    if (k.retryOf !== undefined) { row.classList.add('retry');
      const a = el('a', 'badge retry', '\u21bb retry of #' + k.retryOf);
      a.href = '#e-' + k.retryOf; a.dataset.retryOf = k.retryOf; badges.append(a); }
    if (k.redirectFrom) { row.classList.add('redirect');
      const a = el('a', 'badge redirect', '\u21aa from ' + k.redirectFrom.region);
      a.href = '#e-' + k.redirectFrom.entry; badges.append(a); }
    row.append(el('div', 'id', '#' + k.id), el('div', 'method', e.request.method), name,
               status, badges, bar(e));
    const d = details(e);
    row.addEventListener('click', ev => { if (ev.target.tagName === 'A') return;
      row.classList.toggle('open'); d.classList.toggle('open'); });
    main.append(row, d);
  });
});
document.body.dataset.rendered = String(entries.length);
})();
"""
