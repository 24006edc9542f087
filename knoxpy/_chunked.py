"""S3's ``aws-chunked`` body framing with a CRC32 trailer, for streamed uploads: pure.

A streamed PUT (``putFile``, ``putStream``) is signed ``UNSIGNED-PAYLOAD``: its bytes
cannot be hashed before they are sent. Framed like this, S3 computes the CRC32 of what
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

import base64
import zlib
from typing import Iterable, Iterator, Union

from .errors import ValidationError

__all__ = ["CHUNK", "PAYLOAD", "TRAILER", "encoded_length", "frame_crc32"]

CHUNK = 256 * 1024  # bytes per frame: what a file is read in (so no bytes are copied)
PAYLOAD = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"  # the x-amz-content-sha256 value
TRAILER = "x-amz-checksum-crc32"
_TRAILER_LINE = len(TRAILER) + 1 + 8 + 2  # "name:" + base64 of 4 bytes + CRLF
_END = len(b"0\r\n") + _TRAILER_LINE + len(b"\r\n")


def encoded_length(size: int, chunk_size: int = CHUNK) -> int:
    """The Content-Length of ``size`` bytes framed by :func:`frame_crc32`."""
    full, rest = divmod(size, chunk_size)
    framing = full * (len(b"%x" % chunk_size) + 4)
    if rest:
        framing += len(b"%x" % rest) + 4
    return size + framing + _END


def frame_crc32(chunks: Iterable[Union[bytes, memoryview]], size: int,
                chunk_size: int = CHUNK) -> Iterator[bytes]:
    """``chunks`` (``size`` bytes in all) framed as ``aws-chunked`` with a CRC32 trailer.

    Pieces of exactly ``chunk_size`` go out as they are; others are regrouped. A source
    that ends early or runs long raises :class:`ValidationError` (the length was promised).
    """
    crc, sent, lead = 0, 0, b""
    pending = bytearray()
    for chunk in chunks:
        if not pending and len(chunk) == chunk_size:
            frames: Iterable[Union[bytes, memoryview]] = (chunk,)
        else:
            pending += chunk
            cut = len(pending) - len(pending) % chunk_size
            frames = [bytes(pending[i:i + chunk_size]) for i in range(0, cut, chunk_size)]
            del pending[:cut]
        for frame in frames:
            crc = zlib.crc32(frame, crc)
            sent += len(frame)
            if sent > size:
                raise ValidationError(f"the body is longer than its {size} bytes")
            # Two writes a frame: the data as it is, and the small CRLF + next size line
            # together (tiny separate writes would each go out as a packet of their own).
            yield b"%s%x\r\n" % (lead, len(frame))
            yield frame if isinstance(frame, bytes) else bytes(frame)
            lead = b"\r\n"
    if pending:
        crc = zlib.crc32(pending, crc)
        sent += len(pending)
        yield b"%s%x\r\n" % (lead, len(pending))
        yield bytes(pending)
        lead = b"\r\n"
    if sent != size:
        raise ValidationError(f"the body ended after {sent} of its {size} bytes")
    digest = base64.b64encode(crc.to_bytes(4, "big"))
    yield lead + b"0\r\n" + TRAILER.encode() + b":" + digest + b"\r\n\r\n"
