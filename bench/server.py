"""The benchmark's S3 server: test/servers/s3shaped.py in 'discard' mode, minus the hashing.

s3shaped's discard mode already streams generated GET bodies (keys ending ``size-N``), serves
Range and the multipart calls, and keeps only sizes; but it still MD5s (and, for a hex
``x-amz-content-sha256``, SHA-256s) every PUT body, which holds a 1 GiB PUT near 450 MB/s on
this machine: the server, not the client, would be measured. Here a plain Content-Length body
of 1 MiB or more is read into one reused buffer and dropped unhashed; its ETag is derived from
the request instead. An aws-chunked body (a streamed PUT with a CRC32 trailer) is decoded
into that buffer and its CRC32 checked, as S3 does. Small bodies and chunked ones keep
s3shaped's full path (and its checks), so a malformed small request still fails loudly.

    python bench/server.py [--port N] [--tls DIR]   # prints the port, serves until SIGTERM

With ``--tls DIR`` it serves HTTPS: a test CA and a certificate for 127.0.0.1 and localhost
made at start (bench/tls.py) are written into DIR (``ca.pem`` is what clients trust), and
every accepted connection does its TLS handshake on its own thread, then is served as above.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import os
import signal
import socket
import ssl
import sys
import threading
import zlib
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test'))

from servers.s3shaped import MIB, S3Error, S3Server, _Abort, _Body  # noqa: E402

_FAST_MIN = MIB


class _Unhashed(_Body):
    """A body that was counted, not hashed: nothing to verify it against."""


class BenchServer(S3Server):
    def __init__(self, port: int = 0, tls: Optional[ssl.SSLContext] = None) -> None:
        super().__init__('discard', port=port, record=False)
        self._seq = itertools.count()
        self._bufs = threading.local()
        self._tls = tls

    def _serve(self, sock: socket.socket, cid: int) -> None:
        if self._tls is not None:
            try:  # on the connection's own thread: handshakes overlap, accept() goes on
                sock = self._tls.wrap_socket(sock, server_side=True)
            except (OSError, ValueError):
                with self._lock:
                    self._conns.pop(cid, None)
                sock.close()
                return
        super()._serve(sock, cid)

    def _read_body(self, req: Any, rf: Any, faults: Dict[str, Any], has_body: bool) -> _Body:
        h = req.headers
        n = int(h.get('content-length') or 0)
        framed = h.get('content-encoding', '') == 'aws-chunked'
        if n < _FAST_MIN or faults or 'transfer-encoding' in h:
            return super()._read_body(req, rf, faults, has_body)
        if framed:
            return self._read_framed(req, rf)
        if 'aws-chunked' in h.get('content-encoding', ''):
            return super()._read_body(req, rf, faults, has_body)
        view = self._view()
        left = n
        while left:
            got = rf.readinto1(view[:min(left, len(view))])
            if not got:
                raise _Abort(False)
            left -= got
        req.body_len, req.body = n, None
        # The client's own Content-MD5 when it sends one (what S3 answers for a good body, and
        # what a client that checks part ETags expects), else a digest unique to the request.
        try:
            tag = base64.b64decode(h['content-md5'], validate=True)
        except (KeyError, ValueError):
            tag = hashlib.md5(f'{req.path}:{n}:{next(self._seq)}'.encode()).digest()
        return _Unhashed(None, n, {'md5': tag})

    def _view(self) -> memoryview:
        view = getattr(self._bufs, 'view', None)
        if view is None:
            view = self._bufs.view = memoryview(bytearray(4 * MIB))
        return view

    def _read_framed(self, req: Any, rf: Any) -> _Body:
        """An aws-chunked body (knoxpy's streamed PUT with a CRC32 trailer), decoded and its
        CRC32 checked as S3 does, at memory speed: zlib.crc32 releases the GIL."""
        view, crc, size = self._view(), 0, 0
        while True:
            length = int(rf.readline(64).split(b';')[0], 16)
            if not length:
                break
            left = length
            while left:
                got = rf.readinto(view[:min(left, len(view))])
                if not got:
                    raise _Abort(False)
                crc = zlib.crc32(view[:got], crc)
                left -= got
            size += length
            rf.readline(8)  # the CRLF after the data
        trailers = {}
        while True:
            line = rf.readline(1024).strip()
            if not line:
                break
            name, _, value = line.decode('latin-1').partition(':')
            trailers[name.strip().lower()] = value.strip()
        req.trailers.update(trailers)
        want = trailers.get('x-amz-checksum-crc32')
        if want is not None and base64.b64decode(want) != crc.to_bytes(4, 'big'):
            raise S3Error('BadDigest', 'The CRC32 you specified did not match the calculated '
                          'checksum.')
        req.body_len, req.body = size, None
        tag = hashlib.md5(f'{req.path}:{size}:{next(self._seq)}'.encode()).digest()
        return _Unhashed(None, size, {'md5': tag})

    def _verify(self, req: Any, body: _Body) -> None:
        if not isinstance(body, _Unhashed):
            super()._verify(req, body)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--tls', metavar='DIR', help='serve HTTPS with a test CA made into DIR')
    a = ap.parse_args(argv)
    ctx = None
    if a.tls:
        from tls import make_certs  # bench/ is this script's directory
        _, chain, key = make_certs(a.tls)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key)
    srv = BenchServer(a.port, ctx).start()
    print(srv.port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == '__main__':
    main()
