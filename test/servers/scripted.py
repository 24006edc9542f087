"""A raw HTTP/1.1 server on loopback that records each request and answers with given bytes.

For tests of the wire itself (knoxpy._transport): what a client put on the wire, byte for
byte, and how it reads any answer a test scripts, however odd.

    with Scripted() as srv:
        srv.answer = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi"
        srv.pieces = 4           # send the answer in 4 writes, 50 ms apart
        ...                      # requests to 127.0.0.1:srv.port
        srv.requests[-1]         # the last request's bytes (head and Content-Length body)
        srv.packets[-1]          # how many recv() calls it took to arrive
        srv.connections          # connections accepted so far
        srv.close_after = True   # close each connection once it is answered (no
                                 # 'Connection: close' said: a keep-alive the server drops)
"""
from __future__ import annotations

import socket
import threading
from typing import Any, List


class Scripted:
    """Answers every request with ``answer`` (sent in ``pieces`` writes) and records it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        self.pieces = 1
        self.requests: List[bytes] = []
        self.packets: List[int] = []  # recv() calls that made up each request
        self.connections = 0
        self.close_after = False
        threading.Thread(target=self._serve, daemon=True).start()

    def __enter__(self) -> Scripted:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        data, recvs = b"", 0
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    got = conn.recv(65536)
                    if not got:
                        return
                    data, recvs = data + got, recvs + 1
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    got = conn.recv(65536)
                    if not got:
                        return
                    rest, recvs = rest + got, recvs + 1
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                self.packets.append(recvs)
                data, recvs = rest[length:], 0
                self._answer(conn)
                if self.close_after:
                    return

    def _answer(self, conn: socket.socket) -> None:
        answer, n = self.answer, self.pieces
        step = max(1, len(answer) // n)
        for i in range(0, len(answer), step):
            conn.sendall(answer[i:i + step])
            if n > 1:
                threading.Event().wait(0.05)  # the rest arrives later
