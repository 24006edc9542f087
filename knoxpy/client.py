"""knox's ``Client``, one method for one method, on knoxpy's loop, streams and signers.

This module wires the others together and holds no protocol logic of its own:
names and URLs come from ``_naming``, signatures from ``auth``, XML from
``_xml``, bytes on the wire from ``_streams`` and ``_transport``.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import logging
import math
import mimetypes
import os
import re
import urllib.parse
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import urllib3

from . import _checksums, _chunked, _explain, _js, _naming, _retry, _validate, _xml, auth, utils
from ._emitter import Operation
from ._loop import Loop
from ._retry import Backoff
from ._streams import (
    ClientRequest,
    IncomingMessage,
    Payload,
    header_value,
    iter_source,
    replayable,
)
from ._transport import Exchange, Transport
from ._transport import discard as _transport_discard
from .errors import ValidationError

__all__ = ["Client", "createClient"]

log = logging.getLogger("knoxpy")

Callback = Callable[[Optional[BaseException], Any], Any]
Headers = Dict[str, Any]

BUCKET_OPS_MAX = 1000  # the most keys one multi-object delete or list page holds
LIST_PARAMS = ("delimiter", "marker", "max-keys", "prefix", "key-marker", "version-id-marker")
# Common types knox's mime@1 knows that the stdlib table lacks before Python 3.12/3.13
# (knox's README example is putFile('Readme.md', ...)).
_EXTRA_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".webp": "image/webp",
                ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf",
                ".otf": "font/otf"}


@functools.lru_cache(maxsize=1)
def _mime_types() -> mimetypes.MimeTypes:
    """The built-in table only (the same answer on every machine), made on first use:
    making it reads the system's tables too, which ``import knoxpy`` need not pay for."""
    table = mimetypes.MimeTypes()
    for ext, ctype in _EXTRA_TYPES.items():
        table.add_type(ctype, ext)
    return table


# Whether an endpoint takes aws-chunked CRC32 trailers: True once one was taken, False once
# refused (MinIO, R2, Ceph and others broke when boto3 turned such trailers on).
_TRAILERS: Dict[str, bool] = {}
_TRAILER_REFUSALS = frozenset({"InvalidArgument", "NotImplemented", "InvalidRequest",
                               "InvalidEncoding", "XAmzContentSHA256Mismatch"})
# Regions learned from S3's redirects, per (endpoint, bucket), shared by every client.
_BUCKET_REGIONS: Dict[Tuple[str, str], str] = {}


class _Options(dict):  # type: ignore[type-arg]
    """``client.options`` (or headers that travel to a cluster): a plain dict whose repr
    never shows the secret, the token or an SSE-C key."""

    def __repr__(self) -> str:
        return repr({k: ("***" if k in ("secret", "token")
                         or str(k).lower().endswith("-customer-key") else v)
                     for k, v in self.items()})

    __str__ = __repr__


def _split_callback(headers: Any, fn: Optional[Callback]) -> tuple[Headers, Optional[Callback]]:
    """knox's ``if ('function' == typeof headers) { fn = headers; headers = {}; }``."""
    if callable(headers):
        return {}, headers
    return dict(headers or {}), fn


def _register(op: Any, fn: Optional[Callback]) -> None:
    """knox's ``registerReqListeners``: ``fn(None, res)``, or ``fn(err, None)`` on error."""
    if fn is None:
        return
    called: List[bool] = []

    def once(err: Optional[BaseException], res: Any) -> None:
        if not called:
            called.append(True)
            _js.fit(fn)(err, res)

    op.on("response", lambda res: once(None, res))
    op.on("error", lambda err: once(err, None))


def content_type_for(path: str) -> str:
    """knox's ``putFile`` Content-Type: the type of the name, with UTF-8 for text."""
    ctype = _mime_types().guess_type(path)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        ctype += "; charset=UTF-8"
    return ctype


def _epoch(expiration: Union[_dt.datetime, int, float]) -> int:
    """knox's ``Math.floor(expiration.getTime()/1000)``, for a datetime or epoch seconds."""
    if isinstance(expiration, _dt.datetime):  # naive: local time, Python's rule
        return int(expiration.timestamp() // 1)
    if (isinstance(expiration, (int, float)) and not isinstance(expiration, bool)
            and math.isfinite(expiration)):
        return int(expiration // 1)
    raise ValidationError(
        f"expiration must be a datetime or seconds since the epoch, not {expiration!r}")


class Client:
    """An S3 client for one bucket, as knox's ``Client``.

    >>> import knoxpy
    >>> client = knoxpy.createClient(key='AKID', secret='s3cr3t', bucket='learnboost')
    >>> client.https('/user.json')
    'https://learnboost.s3.amazonaws.com/user.json'
    """

    key: str
    secret: str
    bucket: str
    region: Optional[str]
    endpoint: str
    style: str
    secure: bool
    port: Optional[int]
    host: str
    urlBase: str
    token: Optional[str]
    options: Dict[str, Any]
    _region_probed = False

    def __init__(self, options: Optional[Mapping[str, Any]] = None, **kw: Any) -> None:
        opts = _js.defined(options)  # None is JS undefined: not given
        opts.update(_js.defined(kw))
        # No key (or AWS-style options): find settings the usual way, env then ~/.aws.
        if not opts.get("key") or "profile" in opts or "endpoint_url" in opts:
            from . import _config  # only when settings are looked up: it imports more

            opts = _config.client_options(opts, os.environ)
        _clean_options(opts)
        derived = _naming.derive_client(opts)
        derived["options"] = _Options(derived.get("options") or opts)
        for name, value in derived.items():
            setattr(self, name, value)
        self.signatureVersion = _validate.signature_version(opts.get("signatureVersion", 4))
        self._backoff = Backoff(_validate.retries(opts.get("maxRetries", 3)))
        self.agent: Optional[urllib3.PoolManager] = opts.get("agent")
        verify = opts.get("rejectUnauthorized", True)
        self._transport = Transport(
            self.agent, _validate.timeout(opts.get("timeout")), verify=verify,
            ca=None if self.agent is not None or not verify else
            _validate.ca_bundle(opts.get("ca"), os.environ), secure=self.secure)
        self.url = self.https if self.secure else self.http
        _explain.enable_from_env(os.environ)  # Node's DEBUG=knox
        self._explain = _explain.Explainer(opts.get("explain"))  # the teaching mode
        self.trace: Any = None  # a knoxpy.trace.Recorder: every request, as HAR and a page
        if opts.get("trace") not in (None, False):
            from . import trace as _trace  # only for a client that records

            self.trace = _trace.recorder_for(opts["trace"])
            self.options["trace"] = self.trace  # copies of this client (copyTo) share it

    def __repr__(self) -> str:
        return (
            f"<knoxpy.Client bucket={self.bucket!r} endpoint={self.endpoint!r} "
            f"style={self.style!r} key={self.key!r}>"
        )

    # -- the request core ------------------------------------------------------------
    def request(self, method: str, filename: str, headers: Optional[Headers] = None, *,
                loop: Optional[Loop] = None) -> ClientRequest:
        """A signed request for ``filename`` (already URL-encoded; may carry ``?query``).

        knox's ``Client#request``: call ``end()`` to send it.

        ``loop`` (knoxpy's own use) picks the loop that owns the request.

        >>> req = client.request('GET', '/test/Readme.md?acl')   # doctest: +SKIP
        """
        headers = _js.defined(headers)  # {'x-amz-meta-note': None}: no such header
        if headers:  # most reads and deletes have none
            _validate.check_headers(headers)
        _validate.check_key(filename)  # again for a verb's key (_key_path): cheap
        if self.token is not None:  # as knox, visible at once: req.getHeader(...) == token
            headers["x-amz-security-token"] = self.token
        fixed = _naming.ensure_leading_slash(filename)
        target = _naming.request_target(self.style, self.bucket, fixed)
        # req.url, shown in errors, is what goes on the wire (a query stays a query)
        wire_url = f"{'https' if self.secure else 'http'}://{self._authority(self.host)}{target}"
        # positional: keywords to a class are a dict made for every request
        req = ClientRequest(method, target, headers, wire_url, self._send, loop,
                            self._backoff, self._on_refusal)
        req.resource = "/" + self.bucket + fixed  # what knox's V2 signs
        req.connected = self._has_idle_connection
        if self.trace is not None:
            req.traced = self.trace.track((self.secret, self.token))
        return req

    # -- where a request goes, and for which region it is signed ----------------------------
    def _authority(self, host: str) -> str:
        """``host``, with the port when it is not the scheme's (the Host header's form)."""
        if self.port is not None and int(self.port) != (443 if self.secure else 80):
            return f"{host}:{self.port}"
        return host

    def _route(self) -> tuple[str, str]:
        """(host, signing region): the client's, or those learned from a redirect (knox #66)."""
        learned = _BUCKET_REGIONS.get((self.endpoint, self.bucket))
        if learned is None:
            return self.host, auth.derive_region(self.region)
        if "endpoint" in self.options:  # an S3-compatible store: same host, new region
            return self.host, learned
        endpoint = _naming.endpoint_for_region(learned)
        host = f"{self.bucket}.{endpoint}" if self.style == "virtualHosted" else endpoint
        return host, learned

    def _learn_region(self, req: ClientRequest, status: int, headers: Any, body: bytes) -> bool:
        """On a worker: learn the bucket's region from S3's redirect; True to send again."""
        if status not in (301, 307, 400) or self.signatureVersion != 4:
            return False
        if status == 400 and _retry.error_code_of(body) != "AuthorizationHeaderMalformed":
            return False
        region = headers.get("x-amz-bucket-region") or _xml.region_from_error(body) or (
            _naming.region_from_host(urllib.parse.urlsplit(headers.get("location", "")).hostname)
        )
        if not region or region == self._route()[1]:
            return False
        _BUCKET_REGIONS[(self.endpoint, self.bucket)] = region
        req._post("redirect", _js.Record(bucket=self.bucket, region=region, statusCode=status))
        return True

    def _on_refusal(self, req: ClientRequest, status: int, headers: Any, body: bytes) -> bool:
        """On a worker, for an answer of 300 or more to a body that can be sent again:
        True to send it again (without the checksum trailer, or signed for another region)."""
        return self._trailer_refused(req, status, body) or self._learn_region(
            req, status, headers, body)

    # -- a checksum trailer on streamed uploads (knoxpy._chunked) ------------------------
    def _frame_checksum(self, req: ClientRequest, replayable: bool, checksum: Any = None
                        ) -> None:
        """Frame ``req``'s streamed body so that S3 checks its checksum (Signature V4 only).

        ``checksum`` (the call's, else the ``checksum`` client option): ``'auto'`` (the
        default: a CRC32 over HTTPS, where TLS costs far more than a CRC32), ``'crc32'``,
        ``'crc32c'``, ``'crc64nvme'`` or ``'sha1'`` (that trailer, always), ``False``
        (never). The client option's ``'sha256'`` and ``'md5'`` are for uploads (a stream
        cannot be hashed before it is sent): streams then go as with ``'auto'``.

        A store that refuses the framing is answered by sending again without it, once,
        and remembered; a stream that cannot be sent again is framed only for a store that
        is known to take it (AWS, or one that took it before).
        """
        mode = self.options.get("checksum", "auto") if checksum is None else checksum
        if mode in ("sha256", "md5"):
            mode = "auto"
        if mode is False or mode is None or (mode == "auto" and not self.secure):
            return  # plain HTTP by default: the CRC32 would cost more than the sending
        algorithm = "crc32" if mode == "auto" else str(mode)
        size = header_value(req._headers, "content-length")
        if (self.signatureVersion != 4 or size is None or int(size) <= 0
                or _TRAILERS.get(self.endpoint) is False
                or any(k.lower() == "content-md5" or k.lower().startswith("x-amz-checksum-")
                       for k in req._headers)):
            return
        if not replayable and not (_TRAILERS.get(self.endpoint)
                                   or self.host.endswith(".amazonaws.com")):
            return
        size = int(size)
        encoding = header_value(req._headers, "content-encoding")
        req.setHeader("Content-Length", _chunked.encoded_length(size, algorithm=algorithm))
        req.setHeader("Content-Encoding", "aws-chunked" + (f",{encoding}" if encoding else ""))
        req.setHeader("x-amz-decoded-content-length", size)
        req.setHeader("x-amz-trailer", _chunked.trailer_name(algorithm))
        # What AWS's SDKs send beside a trailer (moto stores the checksum only with it).
        req.setHeader("x-amz-sdk-checksum-algorithm", algorithm.upper())
        req.frame = lambda chunks: _chunked.frame(chunks, size, algorithm)

    def _trailer_refused(self, req: ClientRequest, status: int, body: bytes) -> bool:
        code = _retry.error_code_of(body) if body else None
        if req.frame is None or status not in (400, 501) or code not in _TRAILER_REFUSALS:
            return False
        req.frame = None
        trailer = str(req.getHeader("x-amz-trailer") or "").rpartition("-")[2].upper()
        plain: Dict[str, Any] = {"Content-Length": req.getHeader("x-amz-decoded-content-length")}
        encoding = req.getHeader("content-encoding").partition(",")[2]  # what preceded framing
        if encoding:
            plain["Content-Encoding"] = encoding
        req._rewrite_headers(("Content-Encoding", "x-amz-decoded-content-length",
                              "x-amz-trailer", "x-amz-sdk-checksum-algorithm",
                              "x-amz-content-sha256"), plain)
        if _TRAILERS.get(self.endpoint) is not False:
            log.warning("knoxpy: %s refused a %s trailer (%s %s); streamed uploads to it "
                        "are sent without a checksum", self.endpoint, trailer, status, code)
        _TRAILERS[self.endpoint] = False
        return True

    def _probe_region(self) -> None:
        """Before a stream that cannot be replayed: ask the bucket's region (HEAD bucket),
        once per client, whatever the answer (knox sends only the PUT: one probe is the
        price of not losing a stream to a redirect, not one per stream)."""
        if self.signatureVersion != 4 or "region" in self.options or self._region_probed:
            return
        if (self.endpoint, self.bucket) in _BUCKET_REGIONS:
            return
        self._region_probed = True
        probe = ClientRequest("HEAD", _naming.request_target(self.style, self.bucket, "/"), {},
                              self.url("/"), self._send)
        if self.trace is not None:
            probe.traced = self.trace.track((self.secret, self.token))
        raw = self._sign_and_begin(probe, None, b"").finish()
        if probe.traced is not None:
            probe.traced.answered(raw, None, b"", "HEAD")
        try:
            region = raw.headers.get("x-amz-bucket-region")
        finally:
            _transport_discard(raw)
        if region and region != self._route()[1]:
            _BUCKET_REGIONS[(self.endpoint, self.bucket)] = region

    def _has_idle_connection(self) -> bool:
        """Whether the next request finds a pooled connection to this client's server."""
        conn_host, _ = self._route()
        return self._transport.has_idle(conn_host, int(self.port) if self.port is not None
                                        else None, "https" if self.secure else "http")

    def _send(self, req: ClientRequest, body: Any, whole: Optional[Payload]) -> Exchange:
        """Off the caller's stack: sign ``req`` now (fresh date) and send it; the
        :class:`Exchange` returned reads the answer."""
        if not req.replayable:
            self._probe_region()
        return self._sign_and_begin(req, body, whole)

    def _sign_and_begin(self, req: ClientRequest, body: Any, whole: Optional[Payload]
                        ) -> Exchange:
        own = req.headers
        headers = {k: str(v) for k, v in own.items()}
        conn_host, region = self._route()
        host = self._authority(conn_host)
        headers["Host"] = host
        now = _dt.datetime.now(_dt.timezone.utc)
        path, _, query = req.path.partition("?")
        explaining, traced = self._explain.active(), req.traced
        trace: Optional[Dict[str, Any]] = {} if explaining or traced is not None else None
        if self.signatureVersion == 4:
            if whole is not None:
                payload = auth.EMPTY_SHA256 if not whole else hashlib.sha256(whole).hexdigest()
            elif req.frame is not None:
                payload = _chunked.PAYLOAD
            else:
                payload = auth.UNSIGNED_PAYLOAD
            path = auth.canonical_uri(path)
            headers.update(
                auth.sign_v4(
                    method=req.method, host=host, path=path, query=query, headers=headers,
                    key=self.key, secret=self.secret, region=region,
                    now=now, payload_hash=payload, token=self.token, trace=trace,
                )
            )
        else:
            headers["Date"] = auth.utc_string(now)
            if self.token is not None:
                headers["x-amz-security-token"] = self.token
            v2 = {
                "key": self.key, "secret": self.secret, "verb": req.method, "date": now,
                "resource": auth.canonicalizeResource(_wire_escapes(req.resource)),
                "contentType": header_value(headers, "content-type"),
                "md5": header_value(headers, "content-md5") or "",
                "amazonHeaders": auth.canonicalizeHeaders(headers),
            }
            headers["Authorization"] = auth.authorization(v2)
            if trace is not None:
                trace.update(version=2, string_to_sign=auth.stringToSign(v2))
        own.update({k: v for k, v in headers.items() if k not in own})
        target = path + ("?" + query if query else "")
        scheme = "https" if self.secure else "http"
        port = int(self.port) if self.port is not None else None
        if traced is not None:  # knoxpy.trace: the request as sent (a streamed body watched)
            body = traced.sending(req.method, f"{scheme}://{host}{target}", headers, trace, body,
                                  (self.secret, self.token, *_explain.customer_keys(headers)))
        if not explaining:
            exchange = self._transport.begin(req.method, scheme, conn_host, port, target,
                                             headers, body)
        else:  # the teaching mode shows the answer with the request: read it at once
            def send() -> Any:
                return self._transport.send(req.method, scheme, conn_host, port, target,
                                            headers, body)

            exchange = Exchange(raw=self._explain.exchange(
                req.method, f"{scheme}://{host}{target}", target, headers, trace or {}, send,
                (self.secret, self.token, *_explain.customer_keys(headers))))
        if traced is not None:
            traced.sent(exchange)
        if req.frame is not None:  # a framed body is a stream: its exchange is finished
            if exchange.finish().status < 300:
                _TRAILERS[self.endpoint] = True  # streams that cannot be replayed may use it
        return exchange

    # -- knox's verbs -------------------------------------------------------------------
    def put(self, filename: str, headers: Optional[Headers] = None) -> ClientRequest:
        """A PUT of ``filename``; write the body and ``end()`` it (knox's ``put``).

        >>> req = client.put('/test/obj.json', {'Content-Length': 13,
        ...                  'Content-Type': 'application/json'})   # doctest: +SKIP
        >>> res = req.end('{"foo":"bar"}').wait()                   # doctest: +SKIP
        """
        return self.request("PUT", _key_path(filename, versioned=False), headers)

    def get(self, filename: str, headers: Optional[Headers] = None) -> ClientRequest:
        """A GET of ``filename`` (knox's ``get``); ``end()`` sends it."""
        return self.request("GET", _key_path(filename), headers)

    def head(self, filename: str, headers: Optional[Headers] = None) -> ClientRequest:
        """A HEAD of ``filename`` (knox's ``head``); ``end()`` sends it."""
        return self.request("HEAD", _key_path(filename), headers)

    def del_(self, filename: str, headers: Optional[Headers] = None) -> ClientRequest:
        """A DELETE of ``filename`` (knox's ``del``); ``end()`` sends it."""
        return self.request("DELETE", _key_path(filename), headers)

    def copy(self, sourceFilename: str, destFilename: str, headers: Optional[Headers] = None
             ) -> ClientRequest:
        """A PUT that copies ``sourceFilename`` to ``destFilename`` in this bucket."""
        return self.put(destFilename, _copy_headers(self.bucket, sourceFilename, headers))

    def copyTo(self, sourceFilename: str, destBucket: Union[str, Mapping[str, Any]],
               destFilename: str, headers: Optional[Headers] = None) -> ClientRequest:
        """A copy into another bucket, given by name or by client options (e.g. its region)."""
        options = dict(self.options)
        if isinstance(destBucket, str):
            options["bucket"] = destBucket
        else:
            options.update(destBucket)
        dest = Client(options)
        return dest.put(destFilename, _copy_headers(self.bucket, sourceFilename, headers))

    # -- knox's callback forms -------------------------------------------------------------
    def _call(self, req: ClientRequest, fn: Optional[Callback], data: Any = None) -> ClientRequest:
        _register(req, fn)
        return req.end(data)

    def getFile(self, filename: str, headers: Any = None, fn: Optional[Callback] = None
                ) -> ClientRequest:
        """GET ``filename`` and call ``fn(err, res)`` (knox's ``getFile``).

        >>> client.getFile('/test/Readme.md', lambda err, res: res.resume())  # doctest: +SKIP
        """
        headers, fn = _split_callback(headers, fn)
        return self._call(self.get(filename, headers), fn)

    def headFile(self, filename: str, headers: Any = None, fn: Optional[Callback] = None
                 ) -> ClientRequest:
        """HEAD ``filename`` and call ``fn(err, res)`` (knox's ``headFile``)."""
        headers, fn = _split_callback(headers, fn)
        return self._call(self.head(filename, headers), fn)

    def deleteFile(self, filename: str, headers: Any = None, fn: Optional[Callback] = None
                   ) -> ClientRequest:
        """DELETE ``filename`` and call ``fn(err, res)`` (knox's ``deleteFile``)."""
        headers, fn = _split_callback(headers, fn)
        return self._call(self.del_(filename, headers), fn)

    def copyFile(self, sourceFilename: str, destFilename: str, headers: Any = None,
                 fn: Optional[Callback] = None) -> ClientRequest:
        """Copy within the bucket and call ``fn(err, res)`` (knox's ``copyFile``)."""
        headers, fn = _split_callback(headers, fn)
        return self._call(self.copy(sourceFilename, destFilename, headers), fn)

    def copyFileTo(self, sourceFilename: str, destBucket: Union[str, Mapping[str, Any]],
                   destFilename: str, headers: Any = None, fn: Optional[Callback] = None
                   ) -> ClientRequest:
        """Copy to another bucket and call ``fn(err, res)`` (knox's ``copyFileTo``)."""
        headers, fn = _split_callback(headers, fn)
        return self._call(self.copyTo(sourceFilename, destBucket, destFilename, headers), fn)

    def putBuffer(self, buffer: Union[bytes, bytearray, memoryview, str], filename: str,
                  headers: Any = None, fn: Optional[Callback] = None) -> ClientRequest:
        """PUT a buffer (or a string, as UTF-8) and call ``fn(err, res)`` (knox's ``putBuffer``).

        knoxpy adds a ``Content-MD5`` (unless given), so S3 stores the bytes exactly or
        answers 400 ``BadDigest``.

        >>> client.putBuffer(b'a string of data', '/string.txt',
        ...                  {'Content-Type': 'text/plain'}).wait()   # doctest: +SKIP
        """
        headers, fn = _split_callback(headers, fn)
        data = buffer.encode("utf-8") if isinstance(buffer, str) else bytes(buffer)
        headers["Content-Length"] = len(data)
        if header_value(headers, "content-md5") is None:  # S3 refuses a body that differs
            headers["Content-MD5"] = auth.content_md5(data)
        return self._call(self.put(filename, headers), fn, data)

    def putStream(self, stream: Any, filename: str, headers: Any = None,
                  fn: Optional[Callback] = None, *, checksum: Any = None) -> Operation:
        """PUT a stream (file object, iterator of bytes, or a knoxpy response) as ``filename``.

        ``headers`` must hold ``Content-Length`` (knox's rule: S3 needs the length up
        front; ``upload`` handles unknown lengths). The body is read as it is sent,
        never whole into memory; the request emits ``'progress'``. ``checksum``
        (beyond knox; default: the client option): the trailer S3 checks, ``'crc32'``,
        ``'crc32c'``, ``'crc64nvme'``, ``'sha1'``, ``'auto'`` or ``False``.

        >>> with open('Readme.md', 'rb') as f:                                    # doctest: +SKIP
        ...     client.putStream(f, '/Readme.md', {'Content-Length': 1234}).wait()
        """
        headers, fn = _split_callback(headers, fn)
        problem = None
        try:
            _stream_checksum(checksum)
        except ValidationError as err:
            problem = err
        if problem is None and header_value(headers, "content-length") is None:
            problem = ValidationError("You must specify a Content-Length header.")
        if problem is not None:
            op = Operation()
            _register(op, fn)
            op._fail_later(problem)
            return op
        req = self.put(filename, headers)
        _register(req, fn)
        if isinstance(stream, IncomingMessage) or (
            hasattr(stream, "pipe") and hasattr(stream, "on")
        ):
            def source_failed(err: BaseException) -> None:
                req._fail_later(err)  # queued first: the caller hears the source's error
                req.abort()

            stream.on("error", source_failed)
            self._frame_checksum(req, replayable=False, checksum=checksum)
            stream.pipe(req)
            return req
        source = iter_source(stream)
        self._frame_checksum(req, replayable=replayable(source), checksum=checksum)
        return req._send_source(source)

    def putFile(self, src: Union[str, os.PathLike[str]], filename: str, headers: Any = None,
                fn: Optional[Callback] = None, *, checksum: Any = None) -> Operation:
        """PUT the file at ``src`` as ``filename`` and call ``fn(err, res)`` (knox's ``putFile``).

        Content-Length and Content-Type (from the name, with ``charset=UTF-8`` for
        text, as knox's) are set for you; the file is streamed, never read whole.
        The returned emitter forwards ``'progress'``; ``wait()`` returns the response.
        ``checksum``: as ``putStream``'s.

        >>> client.putFile('my.json', '/user.json').on('progress', print).wait()  # doctest: +SKIP
        """
        headers, fn = _split_callback(headers, fn)
        op = Operation()
        _register(op, fn)
        try:
            _stream_checksum(checksum)
            size = os.stat(src).st_size
            f = open(src, "rb")
        except (OSError, ValidationError) as err:
            op._fail_later(err)
            return op
        merged = utils.merge(
            {"Content-Length": size, "Content-Type": content_type_for(os.fspath(src))}, headers
        )
        req = self.put(filename, merged)
        _forward(req, op, close=f)
        self._frame_checksum(req, replayable=True, checksum=checksum)
        req._send_source(iter_source(f))
        return op

    def deleteMultiple(self, filenames: List[str], headers: Any = None,
                       fn: Optional[Callback] = None) -> ClientRequest:
        """Delete up to 1000 keys in one request and call ``fn(err, res)`` (knox's)."""
        filenames = list(filenames)
        if len(filenames) > BUCKET_OPS_MAX:
            raise ValidationError(
                f"Can only delete up to {BUCKET_OPS_MAX} files at a time. "
                "You'll need to batch them."
            )
        headers, fn = _split_callback(headers, fn)
        xml = _xml.build_delete(filenames)
        headers["Content-Length"] = len(xml)
        headers["Content-MD5"] = auth.content_md5(xml)
        return self._call(self.request("POST", "/?delete", headers), fn, xml)

    def list(self, params: Any = None, headers: Any = None, fn: Optional[Callback] = None
             ) -> Operation:
        """List up to 1000 keys and call ``fn(err, data)`` with knox's normalised shape.

        ``data`` has ``Prefix``, ``IsTruncated`` (bool), ``MaxKeys`` (int), ``Contents``
        (a list of ``{Key, LastModified (datetime), ETag, Size (int), Owner,
        StorageClass}``) and, with a delimiter, ``CommonPrefixes``. ``wait()`` returns it.

        >>> data = client.list({'prefix': 'my-prefix'}).wait()   # doctest: +SKIP
        >>> [o['Key'] for o in data['Contents']]                  # doctest: +SKIP
        """
        return self._list_page("", params, headers, fn, _xml.parse_list)

    def listVersions(self, params: Any = None, headers: Any = None,
                     fn: Optional[Callback] = None) -> Operation:
        """List one page of versions and delete markers, as ``list`` lists keys (beyond knox).

        ``params``: ``prefix``, ``delimiter``, ``max-keys``, ``key-marker``,
        ``version-id-marker`` (``marker`` is the key marker). ``data`` has ``IsTruncated``,
        ``NextKeyMarker``, ``NextVersionIdMarker`` and ``Versions``: every version and delete
        marker by key, newest first, each with ``Key``, ``VersionId``, ``IsLatest``,
        ``LastModified``, ``DeleteMarker`` (bool) and, for versions, ``ETag`` and ``Size``.

        >>> data = client.listVersions({'prefix': 'logs/'}).wait()       # doctest: +SKIP
        >>> [(v.Key, v.VersionId, v.DeleteMarker) for v in data.Versions]  # doctest: +SKIP
        """
        if isinstance(params, Mapping) and "marker" in params:
            params = {("key-marker" if k == "marker" else k): v for k, v in params.items()}
        return self._list_page("versions", params, headers, fn, _xml.parse_versions)

    def _list_page(self, subresource: str, params: Any, headers: Any,
                   fn: Optional[Callback], parse: Callable[[bytes], Any]) -> Operation:
        """One page of a listing (``?versions`` or the keys), parsed, to ``fn(err, data)``."""
        if callable(headers):
            fn, headers = headers, {}
        if callable(params):
            fn, params = params, None
        params = _js.defined(params)  # {'marker': None}: no marker, not marker=None
        if params and next(iter(params)) not in LIST_PARAMS:
            headers, params = params, None
        query = "?" + subresource if subresource else ""
        if params:
            query += ("&" if query else "?") + urllib.parse.urlencode(
                params, quote_via=_js_querystring_quote)
        req = self.request("GET", query, headers)
        op = Operation()
        req.on("response", lambda res: op.emit("response", res))

        def on_response(res: IncomingMessage) -> None:
            parts: List[bytes] = []
            read = [0]

            def on_data(chunk: bytes) -> None:  # bounded: a huge answer is refused unread
                read[0] += len(chunk)
                if read[0] > _xml.MAX_XML_BYTES:
                    res._refuse(_xml.too_large())
                else:
                    parts.append(chunk)

            declared = res.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > _xml.MAX_XML_BYTES:
                res._refuse(_xml.too_large())
            res.on("data", on_data)

            def on_end() -> None:
                try:
                    data = parse(b"".join(parts))
                except _xml.MalformedXML as err:
                    _finish(op, fn, _xml.unreadable_answer(
                        err, res.statusCode, f"{req.method} {req.url}",
                        res.headers.get("x-amz-request-id")), None)
                except Exception as err:  # noqa: BLE001 - reported, as knox reports it
                    _finish(op, fn, err, None)
                else:
                    _finish(op, fn, None, data)

            res.on("end", on_end)
            res.on("error", lambda err: _finish(op, fn, err, None))

        req.on("response", on_response)
        req.on("error", lambda err: _finish(op, fn, err, None))
        op.req = req  # type: ignore[attr-defined]
        req.end()
        return op

    # -- URLs ------------------------------------------------------------------------------
    def http(self, filename: str) -> str:
        """The ``http://`` URL of ``filename`` (knox's ``http``)."""
        return _naming.url_for(self.urlBase, filename, "http")

    def https(self, filename: str) -> str:
        """The ``https://`` URL of ``filename`` (knox's ``https``)."""
        return _naming.url_for(self.urlBase, filename, "https")

    def signedUrl(self, filename: str, expiration: Union[_dt.datetime, int, float],
                  options: Optional[Mapping[str, Any]] = None) -> str:
        """A presigned URL for ``filename``, valid until ``expiration`` (knox's ``signedUrl``).

        ``expiration`` is a datetime (naive means local time, as in Python's
        ``datetime.timestamp()``) or seconds since the epoch;
        ``options``: ``verb``, ``contentType``, ``qs``, ``extraHeaders``. Signature V4
        URLs are valid for at most 7 days; ``signatureVersion: 2`` gives knox's URLs.

        >>> import time, knoxpy
        >>> client = knoxpy.createClient(key='AKID', secret='s3cr3t', bucket='learnboost')
        >>> client.signedUrl('/user.json', time.time() + 3600).startswith(
        ...     'https://learnboost.s3.amazonaws.com/user.json?X-Amz-Algorithm=AWS4-HMAC-SHA256')
        True
        """
        options = _js.defined(options)
        for name in ("qs", "extraHeaders"):
            if name in options:
                options[name] = _js.defined(options[name])
        epoch = _epoch(expiration)
        if self.signatureVersion == 2:
            return self._signed_url_v2(filename, epoch, options)
        now = _dt.datetime.now(_dt.timezone.utc)
        expires = epoch - int(now.timestamp())
        target = _naming.request_target(
            self.style, self.bucket,
            _naming.encode_special_characters(_naming.ensure_leading_slash(filename)),
        )
        host = self._authority(self.host)
        extra = options.get("extraHeaders") or {}
        headers = dict(extra)
        if options.get("contentType"):
            headers["Content-Type"] = options["contentType"]
        path = auth.canonical_uri(target)
        trace: Optional[Dict[str, Any]] = {} if self._explain.active() else None
        query = auth.presign_v4(
            method=options.get("verb", "GET"), host=host, path=path,
            query=sorted((str(k), str(v)) for k, v in (options.get("qs") or {}).items()),
            key=self.key, secret=self.secret, region=auth.derive_region(self.region),
            now=now, expires=expires, token=self.token, headers=headers, trace=trace,
        )
        scheme = "https" if self.secure else "http"
        url = f"{scheme}://{host}{path}?{query}"
        if trace is not None:
            self._explain.presigned(url, trace, (self.secret, self.token))
        return url

    def presignedPost(self, filename: str, options: Optional[Mapping[str, Any]] = None
                      ) -> Dict[str, Any]:
        """A browser upload straight to S3: the URL to POST a form to, and its fields
        (Signature V4; beyond knox).

        ``options``: ``expires`` (seconds from now, or a datetime; default 3600),
        ``conditions`` (extra policy conditions, such as ``["content-length-range", 0,
        10485760]``), ``fields`` (more form fields, each also a condition). ``filename`` may
        end in ``${filename}``. The form's last field must be the file itself.

        >>> import knoxpy
        >>> client = knoxpy.createClient(key='AKID', secret='s3cr3t', bucket='learnboost')
        >>> post = client.presignedPost('/uploads/${filename}', {'expires': 600})
        >>> post['url'], post['fields']['key']
        ('https://learnboost.s3.amazonaws.com/', 'uploads/${filename}')
        """
        options = _js.defined(options)
        now = _dt.datetime.now(_dt.timezone.utc)
        expires = options.get("expires", 3600)
        if isinstance(expires, _dt.datetime):
            expires = _epoch(expires) - int(now.timestamp())
        elif isinstance(expires, float) and math.isfinite(expires):
            expires = int(expires)
        fields = auth.post_policy_v4(
            bucket=self.bucket, key=_naming.ensure_leading_slash(filename)[1:],
            key_id=self.key, secret=self.secret, region=self.region, now=now,
            expires=expires, conditions=options.get("conditions") or (),
            fields=_js.defined(options.get("fields")), token=self.token,
        )
        scheme = "https" if self.secure else "http"
        url = scheme + "://" + self._authority(self.host) + _naming.request_target(
            self.style, self.bucket, "/")
        return _js.Record(url=url, fields=_js.Record(fields))

    def _signed_url_v2(self, filename: str, epoch: int, options: Dict[str, Any]) -> str:
        pathname = auth.url_pathname(filename)
        resource = "/" + self.bucket + _naming.ensure_leading_slash(pathname)
        qs = options.get("qs")
        if qs:
            resource += "?" + urllib.parse.unquote(
                urllib.parse.urlencode(qs, quote_via=_js_querystring_quote)
            )
        signature = auth.signQuery({
            "secret": self.secret, "date": epoch, "resource": resource,
            "verb": options.get("verb") or "GET", "contentType": options.get("contentType"),
            "extraHeaders": options.get("extraHeaders"), "token": self.token,
        })
        params = {"Expires": epoch, "AWSAccessKeyId": self.key, "Signature": signature}
        params.update(qs or {})
        query = urllib.parse.urlencode(params, quote_via=_js_querystring_quote)
        if self.token is not None:
            query += "&x-amz-security-token=" + _js_encode_uri_component(self.token)
        return self.url(filename) + "?" + query

    # -- beyond knox: transfers of any size and bulk operations (knoxpy.transfer, knoxpy.bulk) --
    def upload(self, source: Any, filename: str, headers: Any = None,
               fn: Optional[Callback] = None, **options: Any) -> Operation:
        """Upload a path, file object, iterator of bytes or readable, of any size.

        One PUT when small and of known length; otherwise a parallel multipart upload
        that is aborted on failure. See ``knoxpy.transfer.upload``.

        >>> client.upload('big.iso', '/isos/big.iso').on('progress', print).wait()  # doctest: +SKIP
        """
        from .transfer import upload

        op: Operation = upload(self, source, filename, headers, fn, **options)
        return op

    def download(self, filename: str, dest: Any, headers: Any = None,
                 fn: Optional[Callback] = None, **options: Any) -> Operation:
        """Download to a path (appearing only when complete and verified) or a writable.

        >>> client.download('/isos/big.iso', 'big.iso').wait()   # doctest: +SKIP
        """
        from .transfer import download

        op: Operation = download(self, filename, dest, headers, fn, **options)
        return op

    def listAll(self, params: Optional[Mapping[str, Any]] = None) -> Any:
        """Every key under a prefix, across pages: a readable and a Python iterator.

        >>> for entry in client.listAll({'prefix': 'logs/'}):   # doctest: +SKIP
        ...     print(entry['Key'], entry['Size'])
        """
        from .bulk import list_all

        return list_all(self, params)

    def getTags(self, filename: str, fn: Optional[Callback] = None) -> Operation:
        """The object's tags, ``{key: value}`` (beyond knox; ``knoxpy.objects``).

        >>> client.getTags('/report.pdf').wait()        # doctest: +SKIP
        {'team': 'data'}
        """
        from .objects import get_tags

        op: Operation = get_tags(self, filename, fn)
        return op

    def putTags(self, filename: str, tags: Mapping[str, Any], fn: Optional[Callback] = None
                ) -> Operation:
        """Replace the object's tags (at most 10) with ``tags`` (beyond knox).

        >>> client.putTags('/report.pdf', {'team': 'data'}).wait()   # doctest: +SKIP
        {'team': 'data'}
        """
        from .objects import put_tags

        op: Operation = put_tags(self, filename, tags, fn)
        return op

    def restore(self, filename: str, options: Optional[Mapping[str, Any]] = None,
                fn: Optional[Callback] = None) -> Operation:
        """Bring back an archived (Glacier) object: ``{days, tier, wait, poll}``; emits
        ``'progress'`` ``{Key, ongoing, expiry}`` until the copy is readable (beyond knox).

        >>> client.restore('/2019/logs.tar', {'days': 2}).wait()     # doctest: +SKIP
        """
        from .objects import restore

        op: Operation = restore(self, filename, options, fn)
        return op

    def listAllVersions(self, params: Optional[Mapping[str, Any]] = None) -> Any:
        """Every version and delete marker under a prefix, across pages (beyond knox).

        >>> for v in client.listAllVersions({'prefix': 'logs/'}):   # doctest: +SKIP
        ...     print(v['Key'], v['VersionId'], v['IsLatest'], v['DeleteMarker'])
        """
        from .bulk import list_all_versions

        return list_all_versions(self, params)

    def deleteAll(self, keys: Any, fn: Optional[Callback] = None, *, cluster: Any = None,
                  **cluster_options: Any) -> Operation:
        """Delete any number of keys in parallel batches of 1000; with ``cluster`` (a
        ``distributed.Client``), in partitions on its workers (knoxpy.cluster).

        >>> client.deleteAll(client.listAll({'prefix': 'tmp/'})).wait()   # doctest: +SKIP
        {'deleted': 2500, 'errors': []}
        """
        if cluster is not None or cluster_options:
            from .cluster import delete_all as on_cluster

            return on_cluster(self, keys, cluster, fn, **cluster_options)
        from .bulk import delete_all

        op: Operation = delete_all(self, keys, fn)
        return op

    def copyAll(self, prefix: str, dest: Mapping[str, Any], fn: Optional[Callback] = None,
                *, cluster: Any = None, headers: Optional[Mapping[str, Any]] = None,
                **cluster_options: Any) -> Operation:
        """Copy every key under ``prefix`` to ``{'bucket': ..., 'prefix': ...}``, in parallel;
        with ``cluster`` (a ``distributed.Client``), in partitions on its workers.
        ``headers`` go on every copy (SSE-C keys, SSE-KMS, storage class, metadata directive).

        >>> client.copyAll('2024/', {'prefix': 'archive/2024/'}).wait()   # doctest: +SKIP
        >>> client.copyAll('2024/', {'prefix': 'cold/2024/'},   # doctest: +SKIP
        ...                headers={'x-amz-storage-class': 'STANDARD_IA'}).wait()
        """
        if cluster is not None or cluster_options:
            from .cluster import copy_all as on_cluster

            return on_cluster(self, prefix, dest, cluster, fn, headers=headers,
                              **cluster_options)
        from .bulk import copy_all

        op: Operation = copy_all(self, prefix, dest, fn, headers=headers)
        return op

    # -- snake_case aliases for Python code --------------------------------------------------
    put_file = putFile
    put_stream = putStream
    put_buffer = putBuffer
    get_file = getFile
    head_file = headFile
    delete_file = deleteFile
    copy_file = copyFile
    copy_to = copyTo
    copy_file_to = copyFileTo
    delete_multiple = deleteMultiple
    signed_url = signedUrl
    presigned_post = presignedPost
    list_all = listAll
    list_versions = listVersions
    get_tags = getTags
    put_tags = putTags
    list_all_versions = listAllVersions
    delete_all = deleteAll
    copy_all = copyAll


# knox's name is ``del``, a Python keyword: ``getattr(client, 'del')`` works too.
setattr(Client, "del", Client.del_)


def createClient(options: Optional[Mapping[str, Any]] = None, **kw: Any) -> Client:
    """Create a client (knox's ``createClient``); options as a dict or keywords.

    >>> import knoxpy
    >>> knoxpy.createClient(key='AKID', secret='s', bucket='learnboost').host
    'learnboost.s3.amazonaws.com'

    Over HTTPS to a store with a private CA, ``ca`` names the certificates to trust (a
    PEM file, a directory of them, or PEM text; else ``AWS_CA_BUNDLE``, a profile's
    ``ca_bundle``, then ``SSL_CERT_FILE``, else the system's store); certificates and
    hostnames are checked:

    >>> knoxpy.createClient(key='AKID', secret='s', bucket='b', endpoint='minio.internal',
    ...                     ca='/etc/minio/ca.pem')   # doctest: +SKIP
    """
    return Client(options, **kw)


create_client = createClient


def _clean_options(opts: Dict[str, Any]) -> None:
    """Credentials stripped of surrounding whitespace; options beyond knox's checked, so
    that a bad one is a ``ValidationError`` now, not a TypeError in a later request
    (``partSize`` and ``concurrency`` are checked by the calls that use them)."""
    for name in ("key", "secret", "token"):
        if name in opts:
            opts[name] = _validate.credential(name, opts[name])
            if opts[name] is None and name == "token":
                del opts[name]
    for name in ("secure", "rejectUnauthorized"):
        if name in opts:
            _validate.flag(name, opts[name])
    checksum = opts.get("checksum", "auto")
    if checksum not in ("auto", False, None, *_checksums.CHOICES):
        raise ValidationError(
            f"checksum must be 'auto', False or one of {', '.join(_checksums.CHOICES)}, "
            f"not {checksum!r}")
    if checksum in _checksums.CHOICES:
        _checksums.require(checksum)
    agent = opts.get("agent")
    if agent is not None and not isinstance(agent, urllib3.PoolManager):
        raise ValidationError(
            f"agent must be a urllib3.PoolManager or None, not {type(agent).__name__}")
    if opts.get("ca") is not None:
        if agent is not None:
            raise ValidationError(
                "ca and agent: give the agent its own CA (PoolManager(ca_certs=...)), or "
                "leave agent out so that ca keeps knoxpy's pools")
        if opts.get("rejectUnauthorized") is False:
            raise ValidationError("ca and rejectUnauthorized=False: certificates are either "
                                  "checked against ca or not checked at all")


def _stream_checksum(value: Any) -> None:
    """A ``checksum`` of putFile/putStream: a trailer algorithm, 'auto', False or None."""
    if value in (None, False, "auto"):
        return
    if value not in _checksums.ALGORITHMS:
        raise ValidationError(
            f"checksum of a streamed body must be 'auto', False or one of "
            f"{', '.join(_checksums.ALGORITHMS)} (a trailer S3 checks), not {value!r}")
    _checksums.require(value)


def _key_path(filename: str, versioned: bool = True) -> str:
    """A key as knox puts it in a request path; control characters are refused first.
    Reads and deletes take a trailing ``?versionId=ID`` as that version; a PUT makes one."""
    _validate.check_key(filename)
    if not versioned:
        return _naming.encode_special_characters(filename)
    return _naming.encode_key(filename)


def _copy_headers(source_bucket: str, source: str, headers: Optional[Headers]) -> Headers:
    """knox's ``getCopyHeaders``."""
    out = dict(headers or {})
    _validate.check_key(source)
    out["x-amz-copy-source"] = "/" + source_bucket + _naming.encode_key(
        _naming.ensure_leading_slash(source)
    )
    out["Content-Length"] = 0
    return out


def _forward(req: ClientRequest, op: Operation, close: Any = None) -> None:
    """Let ``op`` (putFile's emitter) report what ``req`` does."""
    def on_response(res: IncomingMessage) -> None:
        if close is not None:
            close.close()
        op._resolve(res)
        op.emit("response", res)

    def on_error(err: BaseException) -> None:
        if close is not None:
            close.close()
        op._reject(err)

    req.on("progress", lambda p: op.emit("progress", p))
    req.on("response", on_response)
    req.on("error", on_error)
    op.req = req  # type: ignore[attr-defined]


def _finish(op: Operation, fn: Optional[Callback], err: Optional[BaseException], data: Any) -> None:
    if op.done:
        return
    if err is not None:
        if fn is not None:
            op._reject(err, emit=False)
            _js.fit(fn)(err, None)
        else:
            op._reject(err)
    else:
        op._resolve(data)
        if fn is not None:
            _js.fit(fn)(None, data)
        op.emit("data", data)


def _wire_escapes(target: str) -> str:
    """A target as urllib3 puts it on the wire: ``%xx`` in upper case (knox's ``%2b``
    goes out as ``%2B``), so that V2 signs exactly the path S3 receives."""
    return _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), target)


_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _js_querystring_quote(s: Any, safe: Any = "", encoding: Any = None, errors: Any = None) -> str:
    """Node's ``querystring.stringify`` escaping (``escape`` = encodeURIComponent-like)."""
    return urllib.parse.quote(str(s), safe="-_.!~*'()")


def _js_encode_uri_component(s: str) -> str:
    return urllib.parse.quote(s, safe="-_.!~*'()")
