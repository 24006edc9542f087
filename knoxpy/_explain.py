"""The teaching mode: each request as S3 sees it, and how its signature was built.

``createClient(..., explain=True)`` (or a callable taking a string, or a file-like),
``knoxpy --explain ...`` and Node's ``DEBUG=knox`` (or ``DEBUG=knoxpy``, through the
``knoxpy.explain`` logger at DEBUG level) print, for every request sent:

1. the request line and headers, exactly as knoxpy hands them to the connection;
2. the canonical request, the string to sign, the four steps that derive the signing
   key and the signature (Signature V4), or knox's V2 string to sign;
3. the response status line and headers (bodies are left to the caller: they are
   streamed, and reading them here would consume them).

The secret and the session token never appear: every occurrence in the text is
masked, derived keys are cut to their first 8 hex digits (each is as good as the
secret for its day). The output is written from the I/O thread that sends the
request, one whole block at a time, like a logging handler: keep a callable quick.

>>> lines = []
>>> e = Explainer(lines.append)
>>> e.emit("GET /x HTTP/1.1  s3cr3t", secrets=("s3cr3t",))
>>> lines
['GET /x HTTP/1.1  <secret>']
"""
from __future__ import annotations

import fnmatch
import itertools
import logging
import sys
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

__all__ = ["Explainer", "customer_keys", "debug_enabled", "enable_from_env"]

log = logging.getLogger("knoxpy.explain")
_lock = threading.Lock()  # one block at a time, whichever worker writes it
_env_done: list[bool] = []

RULE = "─" * 72
_NOTES = {
    "request": "as sent; urllib3 adds Accept-Encoding and User-Agent, which are not signed",
    "canonical": "method, URI, query, headers, signed header names, payload hash;\n"
                 "   S3 rebuilds it from what it receives: any difference is"
                 " SignatureDoesNotMatch",
    "string": "algorithm, time, scope (date/region/service/aws4_request),\n"
              "   and the hex SHA-256 of the canonical request",
    "key": 'kSecret = "AWS4" + secret (not shown), then one HMAC-SHA256 per step;\n'
           "   keys cut short: each one signs anything for a day",
}


def debug_enabled(value: Optional[str]) -> bool:
    """Whether Node's ``DEBUG`` names knox: ``knox``, ``knoxpy``, ``knox*``, ``*`` (not ``-knox``).

    >>> debug_enabled('express,knox'), debug_enabled('*,-knox'), debug_enabled(None)
    (True, False, False)
    """
    enabled = False
    for name in (value or "").replace(",", " ").split():
        negate = name.startswith("-")
        pattern = name[1:] if negate else name
        if any(fnmatch.fnmatchcase(n, pattern) for n in ("knox", "knoxpy")):
            enabled = not negate
    return enabled


def enable_from_env(environ: Mapping[str, str]) -> None:
    """Once per process: ``DEBUG=knox`` turns the ``knoxpy`` logger on at DEBUG level.

    A stderr handler is added only when neither ``knoxpy`` nor the root logger has one,
    so an application's own logging setup is respected.
    """
    if _env_done:
        return
    _env_done.append(True)
    if not debug_enabled(environ.get("DEBUG")):
        return
    logger = logging.getLogger("knoxpy")
    logger.setLevel(logging.DEBUG)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("knoxpy %(message)s"))
        logger.addHandler(handler)


def _mask(text: str, secrets: Iterable[Optional[str]]) -> str:
    """Every form of each secret replaced by its label: the secret key, the session
    token, then any SSE-C keys (``x-amz-*-customer-key`` headers), in that order."""
    labels = itertools.chain(("<secret>", "<session token>"), itertools.repeat("<SSE-C key>"))
    for secret, label in zip(secrets, labels):
        if secret:
            for form in {secret, urllib.parse.quote(secret, safe=""),
                         urllib.parse.quote(secret, safe="-_.~")}:
                text = text.replace(form, label)
    return text


def customer_keys(headers: Mapping[str, Any]) -> list[str]:
    """The SSE-C keys a request carries (its own, and a copy source's): as secret as the
    secret key, so the teaching mode masks them too.

    >>> customer_keys({'x-amz-server-side-encryption-customer-key': 'K2V5', 'Range': 'x'})
    ['K2V5']
    """
    return [str(v) for k, v in headers.items() if k.lower().endswith("-customer-key")]


def _short(key: bytes) -> str:
    return key.hex()[:8] + "…"


def _headers(headers: Mapping[str, Any]) -> list[str]:
    return [f"{name}: {value}" for name, value in headers.items()]


class Explainer:
    """Where a client's explanations go: a callable, a file-like, ``True`` (stderr), or logging.

    With no target of its own it writes to the ``knoxpy.explain`` logger, and only
    explains when that logger is enabled for DEBUG (``DEBUG=knox`` does it).
    """

    def __init__(self, target: Any = None) -> None:
        self._sink: Optional[Callable[[str], Any]] = None
        if target is True:
            self._sink = lambda text: _write(sys.stderr, text)
        elif callable(target):
            self._sink = target
        elif target is not None and target is not False:
            if not hasattr(target, "write"):
                raise TypeError("explain must be True, a callable or a file-like object")
            self._sink = lambda text: _write(target, text)

    def active(self) -> bool:
        return self._sink is not None or log.isEnabledFor(logging.DEBUG)

    def emit(self, text: str, secrets: Sequence[Optional[str]] = ()) -> None:
        text = _mask(text, secrets)
        with _lock:
            if self._sink is not None:
                self._sink(text)
            else:
                log.debug("%s", text)

    # -- one request and its answer ----------------------------------------------------------
    def exchange(self, method: str, url: str, target: str, headers: Mapping[str, str],
                 trace: Dict[str, Any], send: Callable[[], Any],
                 secrets: Sequence[Optional[str]]) -> Any:
        """Explain the request, ``send()`` it, explain the answer; return what ``send`` did."""
        self.emit(self.request_text(method, url, target, headers, trace), secrets)
        started = time.monotonic()
        try:
            raw = send()
        except BaseException as err:
            self.emit(f"{RULE}\n✗ no answer to {method} {url}: {err}\n", secrets)
            raise
        ms = (time.monotonic() - started) * 1000
        number = 6 if trace.get("version") == 4 else 4
        self.emit(self.response_text(raw.status, raw.reason or "", raw.headers, ms, number),
                  secrets)
        return raw

    @staticmethod
    def request_text(method: str, url: str, target: str, headers: Mapping[str, str],
                     trace: Mapping[str, Any]) -> str:
        lines = [RULE, f"▶ {method} {url}", "",
                 f"1. The HTTP request — {_NOTES['request']}:", "",
                 f"   {method} {target} HTTP/1.1"]
        lines += ["   " + line for line in _headers(headers)]
        lines += [""] + _signing_lines(trace, numbered=2)
        return "\n".join(lines) + "\n"

    @staticmethod
    def response_text(status: int, reason: str, headers: Any, ms: float, number: int = 6
                      ) -> str:
        lines = [f"{number}. The response ({ms:.0f} ms):", "",
                 f"   HTTP/1.1 {status} {reason}"]
        lines += ["   " + f"{name}: {value}" for name, value in headers.items()]
        if status >= 300:
            lines += ["", "   (a non-2xx answer carries an XML <Error> body with"
                          " <Code> and <Message>)"]
        return "\n".join(lines) + "\n"

    def presigned(self, url: str, trace: Mapping[str, Any],
                  secrets: Sequence[Optional[str]]) -> None:
        """Explain a presigned URL: the signature travels in the query instead of a header."""
        lines = [RULE, "▶ presigned URL (signed now, sent later by whoever holds it):", "",
                 "   " + url, "",
                 "   The X-Amz-* query parameters replace the Authorization header; the"
                 " payload is UNSIGNED-PAYLOAD.", ""]
        lines += _signing_lines(trace, numbered=1)
        self.emit("\n".join(lines) + "\n", secrets)


def _signing_lines(trace: Mapping[str, Any], numbered: int) -> list[str]:
    n = numbered
    if trace.get("version") == 2:
        return [f"{n}. The string to sign — Signature Version 2, knox's: verb, Content-MD5,"
                " Content-Type, Date,\n   x-amz-* headers, /bucket/key:", "",
                *("   " + line for line in str(trace["string_to_sign"]).split("\n")), "",
                f"{n + 1}. The signature = Base64(HMAC-SHA1(secret, string to sign)), sent as"
                " 'Authorization: AWS <key>:<signature>'", ""]
    lines = [f"{n}. The canonical request — {_NOTES['canonical']}:", ""]
    lines += ["   " + line for line in str(trace["canonical_request"]).split("\n")]
    if "x-amz-security-token" in str(trace["canonical_request"]).lower():
        lines += ["", "   (the session token is masked in this text; the hash below covers"
                      " its real value)"]
    lines += ["", f"{n + 1}. The string to sign — {_NOTES['string']}:", ""]
    lines += ["   " + line for line in str(trace["string_to_sign"]).split("\n")]
    lines += ["", f"{n + 2}. The signing key — {_NOTES['key']}:", ""]
    previous = "kSecret"
    for name, part, key in trace["key_steps"]:
        lines.append(f"   {name:<8} = HMAC({previous + ',':<9} {part!r:<16}) = {_short(key)}")
        previous = name
    lines += ["", f"{n + 3}. The signature = hex(HMAC-SHA256(kSigning, string to sign)):", "",
              f"   {trace['signature']}"]
    return lines


def _write(f: Any, text: str) -> None:
    f.write(text + "\n")
    flush = getattr(f, "flush", None)
    if flush is not None:
        flush()
