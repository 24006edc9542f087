"""S3's ``aws-chunked`` body framing with a checksum trailer, for streamed uploads: pure.

A streamed PUT (``putFile``, ``putStream``) is signed ``UNSIGNED-PAYLOAD``: its bytes
cannot be hashed before they are sent. Framed like this, S3 computes the checksum (CRC32 by
default; CRC32C, CRC64NVME or SHA-1 by the ``checksum`` option, knoxpy._checksums) of what
it receives and compares it with the trailer that follows the last chunk, so a body
changed on the way is refused instead of stored::

    <hex size>\\r\\n<bytes>\\r\\n        each chunk (all of CHUNK bytes but the last)
    0\\r\\n
    x-amz-checksum-crc32:<base64 of the big-endian CRC32>\\r\\n
    \\r\\n

with ``x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER``, ``Content-Encoding:
aws-chunked``, ``x-amz-decoded-content-length`` (the object's size), ``x-amz-trailer:
x-amz-checksum-crc32`` and a ``Content-Length`` that counts the framing too. Chunks
have a fixed size so that length is known before the first byte is sent.

>>> b''.join(frame_crc32([b'hello ', b'world'], 11, chunk_size=6))
b'6\\r\\nhello \\r\\n5\\r\\nworld\\r\\n0\\r\\nx-amz-checksum-crc32:DUoRhQ==\\r\\n\\r\\n'
>>> encoded_length(11, chunk_size=6)
57
"""
from __future__ import annotations

from typing import Iterable, Iterator, Union

from . import _checksums
from .errors import ValidationError

__all__ = ["CHUNK", "PAYLOAD", "TRAILER", "encoded_length", "frame", "frame_crc32",
           "trailer_name"]

CHUNK = 256 * 1024  # bytes per frame: what a file is read in (so no bytes are copied)
PAYLOAD = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"  # the x-amz-content-sha256 value
TRAILER = "x-amz-checksum-crc32"


def trailer_name(algorithm: str = "crc32") -> str:
    """The trailer's header name, also the value of ``x-amz-trailer``."""
    return f"x-amz-checksum-{algorithm}"


def _end_length(algorithm: str) -> int:
    value = len(_checksums.encode(algorithm, b"\0" * _checksums.size_of(algorithm)))
    return len(b"0\r\n") + len(trailer_name(algorithm)) + 1 + value + 2 + len(b"\r\n")


def encoded_length(size: int, chunk_size: int = CHUNK, algorithm: str = "crc32") -> int:
    """The Content-Length of ``size`` bytes framed by :func:`frame`."""
    full, rest = divmod(size, chunk_size)
    framing = full * (len(b"%x" % chunk_size) + 4)
    if rest:
        framing += len(b"%x" % rest) + 4
    return size + framing + _end_length(algorithm)


def frame(chunks: Iterable[Union[bytes, memoryview]], size: int, algorithm: str = "crc32",
          chunk_size: int = CHUNK) -> Iterator[bytes]:
    """``chunks`` (``size`` bytes in all) framed as ``aws-chunked`` with a checksum trailer.

    Pieces of exactly ``chunk_size`` go out as they are; others are regrouped. A source
    that ends early or runs long raises :class:`ValidationError` (the length was promised).
    """
    running = _checksums.Running(algorithm)
    sent, lead = 0, b""
    pending = bytearray()
    for chunk in chunks:
        if not pending and len(chunk) == chunk_size:
            frames: Iterable[Union[bytes, memoryview]] = (chunk,)
        else:
            pending += chunk
            cut = len(pending) - len(pending) % chunk_size
            frames = [bytes(pending[i:i + chunk_size]) for i in range(0, cut, chunk_size)]
            del pending[:cut]
        for piece in frames:
            running.update(piece)
            sent += len(piece)
            if sent > size:
                raise ValidationError(f"the body is longer than its {size} bytes")
            # Two writes a frame: the data as it is, and the small CRLF + next size line
            # together (tiny separate writes would each go out as a packet of their own).
            yield b"%s%x\r\n" % (lead, len(piece))
            yield piece if isinstance(piece, bytes) else bytes(piece)
            lead = b"\r\n"
    if pending:
        running.update(pending)
        sent += len(pending)
        yield b"%s%x\r\n" % (lead, len(pending))
        yield bytes(pending)
        lead = b"\r\n"
    if sent != size:
        raise ValidationError(f"the body ended after {sent} of its {size} bytes")
    yield (lead + b"0\r\n" + trailer_name(algorithm).encode() + b":"
           + running.b64().encode() + b"\r\n\r\n")


def frame_crc32(chunks: Iterable[Union[bytes, memoryview]], size: int,
                chunk_size: int = CHUNK) -> Iterator[bytes]:
    """:func:`frame` with a CRC32 trailer."""
    return frame(chunks, size, "crc32", chunk_size)
