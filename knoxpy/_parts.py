"""Part sizes for multipart transfers, and the journals that make them resumable: no network.

S3's limits: a part is 5 MiB to 5 GiB (the last may be smaller), an upload has at most
10,000 parts, an object at most 50 TB. When the size is known the part size follows from
it (:func:`part_size_for`). A stream of unknown length gets a :class:`Schedule`: parts
start at the chosen size and, after ``hold`` parts, double every :data:`GROWTH_INTERVAL`
parts up to 5 GiB. ``hold`` is as long as it can be while the 10,000 parts still add up
to 50 TB (:func:`max_hold`), so a small stream keeps small parts (small memory) and any
stream S3 could store still fits.

Why 64: reaching 5 GiB from 5 MiB takes ten doublings; a doubling every ``k`` parts
costs about ``9 k`` parts' worth of 5 GiB against the end of the schedule, and 10,000
parts of 5 GiB exceed 50 TB by only ~687 such parts, so ``k`` must stay under ~76.

Integrity: every body carries a checksum S3 verifies. CRC32 (``x-amz-checksum-crc32``) is the
default: CRC32 runs at ~2-14 GB/s (zlib, or zlib-ng with ``knoxpy[crc]``) against MD5's
~0.6 GB/s, and releases the GIL on large buffers. ``Content-MD5`` is the fallback for a store
that refuses the checksum headers (:func:`checksum_refused`).

A journal is a JSON-lines file: a header line, then one line per finished piece (a part
of an upload, a byte range of a download). Lines are appended as pieces finish, so a
journal costs O(parts) to write; a torn last line (a crash mid-write) is ignored.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _checksums
from .errors import ValidationError

__all__ = [
    "DEFAULT_PART_SIZE",
    "GROWTH_INTERVAL",
    "Journal",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "PARTIAL_SUFFIX",
    "Schedule",
    "byte_ranges",
    "check_part_size",
    "check_size_hint",
    "checksum_refused",
    "content_crc32",
    "content_md5",
    "create_partial",
    "is_md5_etag",
    "is_partial_name",
    "max_hold",
    "part_size_for",
    "schedule_for_stream",
]

MIB = 1024 * 1024
GIB = 1024 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's smallest part (but the last)
MAX_PART_SIZE = 5 * GIB  # S3's largest part, and largest single PUT
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 50 * 10**12  # S3's largest object: 50 TB
DEFAULT_PART_SIZE = 8 * MIB
GROWTH_INTERVAL = 64  # parts between doublings of a stream's part size
HINT_PARTS = 5_000  # a hinted size takes at most this many parts: the rest are room to grow
Buffer = Union[bytes, bytearray, memoryview]
_MD5_ETAG = re.compile(r'^"?[0-9a-fA-F]{32}"?$')


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _ceil_mib(n: int) -> int:
    return _ceil_div(n, MIB) * MIB


def check_part_size(value: Any) -> int:
    """``partSize`` as given (client option or keyword), checked against S3's limits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"partSize must be a number of bytes, not {value!r}")
    if value < MIN_PART_SIZE:
        raise ValidationError(
            f"partSize must be at least 5 MiB ({MIN_PART_SIZE} bytes), not {value}")
    if value > MAX_PART_SIZE:
        raise ValidationError(
            f"partSize must be at most 5 GiB ({MAX_PART_SIZE} bytes), not {value}")
    return value


def check_size_hint(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"sizeHint must be a number of bytes (0 or more), not {value!r}")
    return value


def part_size_for(size: int, part_size: int = DEFAULT_PART_SIZE) -> int:
    """The part size for an object of known ``size``: ``part_size``, or more to fit 10,000 parts.

    >>> part_size_for(100 * 1024 * 1024, 5 * 1024 * 1024) // (1024 * 1024)
    5
    >>> part_size_for(50 * 10**12) // (1024 * 1024)    # 50 TB: 4769 MiB parts
    4769
    """
    part = max(part_size, _ceil_mib(_ceil_div(size, MAX_PARTS)))
    if part > MAX_PART_SIZE:
        raise ValidationError(
            f"an object of {size} bytes is larger than S3 accepts (10,000 parts of 5 GiB)")
    return part


@dataclass(frozen=True)
class Schedule:
    """Part sizes for a stream of unknown length: ``base`` for ``hold`` parts, then growing.

    >>> s = Schedule(5 * 1024 * 1024, hold=100)
    >>> [s.size_of(n) // (1024 * 1024) for n in (1, 100, 101, 164, 165)]
    [5, 5, 10, 10, 20]
    """

    base: int
    hold: int

    def size_of(self, number: int) -> int:
        """The size of part ``number`` (counted from 1)."""
        doublings = max(0, _ceil_div(number - self.hold, GROWTH_INTERVAL))
        if doublings >= 40:  # far past the cap; avoids a huge shift
            return MAX_PART_SIZE
        return min(MAX_PART_SIZE, self.base << doublings)

    def capacity(self, parts: int = MAX_PARTS) -> int:
        """The most bytes the first ``parts`` parts hold (10,000 by default)."""
        total, number = 0, 1
        while number <= parts:
            size = self.size_of(number)
            if size >= MAX_PART_SIZE:
                return total + (parts - number + 1) * MAX_PART_SIZE
            # parts up to the end of this run of equal sizes
            if number <= self.hold:
                last = self.hold
            else:
                last = self.hold + _ceil_div(number - self.hold, GROWTH_INTERVAL) * GROWTH_INTERVAL
            last = min(last, parts)
            total += (last - number + 1) * size
            number = last + 1
        return total


def max_hold(base: int) -> int:
    """The most parts a stream can keep at ``base`` and still reach 50 TB in 10,000 parts."""
    lo, hi = 0, MAX_PARTS
    if Schedule(base, hi).capacity() >= MAX_OBJECT_SIZE:
        return hi
    while lo < hi:  # capacity falls as hold grows: find the last hold that still fits
        mid = (lo + hi + 1) // 2
        if Schedule(base, mid).capacity() >= MAX_OBJECT_SIZE:
            lo = mid
        else:
            hi = mid - 1
    return lo


def schedule_for_stream(part_size: int = DEFAULT_PART_SIZE,
                        size_hint: Optional[int] = None) -> Schedule:
    """The part sizes of a stream of unknown length, optionally of about ``size_hint`` bytes.

    Without a hint the schedule reaches 50 TB. With one, the hinted size takes at most
    5,000 parts of one size (as a known size would, with half the parts to spare), and a
    stream that runs past it still has 5,000 growing parts: at least 20 TB more.
    """
    if size_hint is None:
        return Schedule(part_size, max_hold(part_size))
    base = min(MAX_PART_SIZE, max(part_size, _ceil_mib(_ceil_div(size_hint, HINT_PARTS))))
    hinted = min(MAX_PARTS, _ceil_div(size_hint, base))
    return Schedule(base, max(max_hold(base), hinted))


def byte_ranges(size: int, part_size: int, start: int = 0) -> List[Tuple[int, int]]:
    """``(first, last)`` byte ranges (inclusive, as HTTP's Range) covering ``start..size-1``."""
    return [(a, min(a + part_size, size) - 1) for a in range(start, size, part_size)]


def content_md5(data: Buffer) -> Tuple[str, str]:
    """``(Content-MD5 header value, hex digest)`` of ``data``."""
    digest = hashlib.md5(data).digest()
    return base64.b64encode(digest).decode("ascii"), digest.hex()


def content_crc32(data: Buffer) -> str:
    """The ``x-amz-checksum-crc32`` value of ``data``: base64 of the big-endian CRC32.

    >>> content_crc32(b"hello")
    'NhCmhg=='
    """
    return _checksums.value_of("crc32", data)


def checksum_refused(status: Optional[int], code: Optional[str], message: Optional[str]) -> bool:
    """Whether an S3 error answer says the store does not take ``x-amz-checksum-*`` headers.

    Stores without flexible checksums answer ``400 InvalidArgument`` (the header is unknown
    to them); some say ``NotImplemented`` or ``InvalidRequest`` and name the header.

    >>> checksum_refused(400, "InvalidArgument", "Unsupported header x-amz-checksum-crc32")
    True
    >>> checksum_refused(400, "BadDigest", "The CRC32 you specified did not match")
    False
    """
    if status == 400 and code == "InvalidArgument":
        return True
    return code in ("NotImplemented", "InvalidRequest") and "checksum" in (message or "").lower()


def is_md5_etag(etag: Optional[str]) -> bool:
    """Whether an ETag can be an MD5 of the bytes (one PUT), not a multipart ``...-N`` one."""
    return bool(etag) and bool(_MD5_ETAG.match(etag or ""))


class Journal:
    """A JSON-lines journal: ``start(header)``, ``add(entry)`` per finished piece, ``load()``.

    Each ``add`` opens, appends and closes, so no file handle outlives a call and a
    process killed at any point leaves a readable journal.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> Optional[Tuple[Dict[str, Any], List[Dict[str, Any]]]]:
        """``(header, entries)``, or None when there is no readable journal."""
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        records: List[Dict[str, Any]] = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn line, written as the process died
            if isinstance(record, dict):
                records.append(record)
        if not records or records[0].get("version") != 1:
            return None
        return records[0], records[1:]

    def start(self, header: Dict[str, Any]) -> None:
        """Begin a new journal (replacing any old one) with ``header``."""
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(dict(header, version=1)) + "\n")
        os.replace(tmp, self.path)

    def add(self, entry: Dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def remove(self) -> None:
        for path in (self.path, self.path + ".tmp"):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


# -- partial files: a download in progress, beside its final name ----------------------------
PARTIAL_SUFFIX = ".knoxpy-part"
# ``.<name>.<32 random hex digits>.knoxpy-part``: only a file knoxpy made has this shape
# (a user's ``notes.knoxpy-part`` has not), so a walk may skip it without losing theirs.
_PARTIAL_NAME = re.compile(r"\..+\.[0-9a-f]{32}" + re.escape(PARTIAL_SUFFIX) + r"\Z", re.S)
_O_BINARY = getattr(os, "O_BINARY", 0)


def create_partial(path: str) -> Tuple[int, str]:
    """A new, empty partial file beside ``path``: ``(fd, its path)``, opened read-write.

    Its name is unguessable and it is created with ``O_EXCL``, so it is never someone
    else's file (nor another download's), and removing it on failure loses nothing.
    """
    folder, name = os.path.split(os.path.abspath(path))
    while True:
        short = os.fsdecode(os.fsencode(name)[:180])  # the partial's name within NAME_MAX
        tmp = os.path.join(folder, f".{short}.{secrets.token_hex(16)}{PARTIAL_SUFFIX}")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 128 random bits
            continue


def is_partial_name(name: str) -> bool:
    """Whether a file name is one :func:`create_partial` makes."""
    return bool(_PARTIAL_NAME.match(name))
