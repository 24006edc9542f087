"""TLS in front of the project's test servers, with a certificate from a test CA made at
test time (trustme): the CA's PEM file is what a client is told to trust.

    ca = TestCA()
    with tls_server(S3Server, ca, mode='store') as srv:   # srv.url is https://...
        ...  # createClient(..., port=srv.port, secure=True, ca=ca.pem)

A mixin, so that any S3Server subclass (bench/server.py's too) gets it unchanged: each
accepted connection is wrapped server-side, then served exactly as before.
"""
from __future__ import annotations

import contextlib
import os
import socket
import ssl
import tempfile
import threading
from typing import Any, Optional, Sequence, Type

import trustme

from .scripted import Scripted


class TestCA:
    """A certificate authority of the test's own, and its certificate as a PEM file."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: str | None = None) -> None:
        self.ca = trustme.CA()
        self._dir = directory or tempfile.mkdtemp(prefix='knoxpy-ca-')
        self.pem = os.path.join(self._dir, 'ca.pem')
        self.ca.cert_pem.write_to_path(self.pem)

    def server_context(self, hostnames: Sequence[str] = ('127.0.0.1', 'localhost')
                       ) -> ssl.SSLContext:
        """A server context with a certificate this CA issued for ``hostnames``."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert(*hostnames).configure_cert(ctx)
        return ctx


class TLSMixin:
    """Wraps each accepted connection in TLS before the server's own ``_serve``."""

    tls: ssl.SSLContext
    # Set to hold every TLS handshake until that many connections wait for theirs (the
    # client makes them at once, not one after another); ``handshakes_held`` says whether
    # the barrier was met or gave up.
    handshake_barrier: Optional[threading.Barrier] = None
    handshakes_held: Optional[bool] = None

    def start(self) -> Any:
        started = super().start()  # type: ignore[misc]
        self.url = self.url.replace('http://', 'https://', 1)  # type: ignore[attr-defined]
        return started

    def _serve(self, sock: socket.socket, cid: int) -> None:
        sock.settimeout(10)  # a client that never finishes its handshake
        barrier = self.handshake_barrier
        if barrier is not None:
            try:
                barrier.wait()
                self.handshakes_held = self.handshakes_held is not False
            except threading.BrokenBarrierError:
                self.handshakes_held = False
        try:
            wrapped = self.tls.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError):  # a client that refused our certificate
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:  # type: ignore[attr-defined]
                self._conns.pop(cid, None)  # type: ignore[attr-defined]
            return
        wrapped.settimeout(None)
        with self._lock:  # type: ignore[attr-defined]
            if cid in self._conns:  # type: ignore[attr-defined]
                # stop() shuts this one down: the plain socket was detached by the wrap
                self._conns[cid] = (wrapped, self._conns[cid][1])  # type: ignore[attr-defined]
        super()._serve(wrapped, cid)  # type: ignore[misc]


def tls_server(base: Type[Any], ca: TestCA, *args: Any,
               hostnames: Sequence[str] = ('127.0.0.1', 'localhost'), **kw: Any) -> Any:
    """An instance of ``base`` (an S3Server class) that speaks TLS, not yet started."""
    cls = type(f'TLS{base.__name__}', (TLSMixin, base), {})
    server = cls(*args, **kw)
    server.tls = ca.server_context(hostnames)
    return server


class TLSScripted(Scripted):
    """test/servers/scripted.py's server behind TLS: the same scripted answers."""

    def __init__(self, ca: TestCA) -> None:
        self.tls = ca.server_context()
        super().__init__()

    def _one(self, conn: socket.socket) -> None:
        try:
            wrapped = self.tls.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        super()._one(wrapped)
