"""The checksums S3 computes and checks (``x-amz-checksum-*``), and CRC combination: pure.

S3 takes five algorithms; knoxpy sends four of them as ``x-amz-checksum-<alg>`` (the fifth,
SHA-256, it signs instead: see ``knoxpy.transfer._Checksum``):

============  =======  ======================================================
algorithm     bytes    computed by
============  =======  ======================================================
``crc32``     4        ``zlib_ng.crc32`` (SIMD, ~14 GB/s; the ``knoxpy[crc]`` extra), else
                       ``zlib.crc32`` (~2-5 GB/s); both release the GIL
``crc32c``    4        ``awscrt.checksums.crc32c`` (the ``knoxpy[crc]`` extra)
``crc64nvme`` 8        ``awscrt.checksums.crc64nvme`` (the ``knoxpy[crc]`` extra)
``sha1``      20       ``hashlib.sha1``
============  =======  ======================================================

A value goes on the wire as base64 of the big-endian bytes. CRC32C and CRC64NVME have no fast
pure-Python form, so without awscrt asking for them is a ValidationError that names the extra;
:func:`reference_crc` is a table-driven implementation for tests and cross-checks only (tens of
kB/s).

**Combining CRCs.** The CRC of ``A + B`` follows from ``crc(A)``, ``crc(B)`` and ``len(B)``
alone: ``crc(A + B) = crc(A) * x^(8 len(B)) mod P  xor  crc(B)``, the multiplication in GF(2)
modulo the CRC's polynomial (the initial value and final xor cancel out). This is zlib's
``crc32_combine`` (its ``multmodp``/``x2nmodp`` method, generalised to any reflected CRC of
any width). S3's FULL_OBJECT checksum of a multipart upload is the CRC of the whole object:
knoxpy gets it from the parts' CRCs in order, and a download checks it from the CRCs of its
ranges, without a second read of any byte.

>>> hex(reference_crc('crc64nvme', b'123456789'))
'0xae8b14860a799888'
>>> a, b = b'hello ', b'world'
>>> combine('crc32', reference_crc('crc32', a), reference_crc('crc32', b), len(b)) == \\
...     reference_crc('crc32', a + b)
True
"""
from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import re
import zlib
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple, Union

from .errors import ValidationError

__all__ = ["ALGORITHMS", "CHOICES", "CRCS", "EXTRA", "PartSums", "Running", "Stored", "available",
           "combine", "combine_all", "composite_of", "decode", "encode", "new", "reference_crc",
           "require", "size_of", "stored_checksum", "value_of"]

ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1")  # sent as x-amz-checksum-<alg>
# The ``checksum`` option of uploads: an algorithm above, or 'sha256' (the payload's SHA-256,
# signed by V4) or 'md5' (Content-MD5).
CHOICES = ("crc32", "crc32c", "crc64nvme", "md5", "sha1", "sha256")
CRCS = ("crc32", "crc32c", "crc64nvme")  # S3 takes FULL_OBJECT multipart checksums of these
EXTRA = "pip install 'knoxpy[crc]'"  # awscrt, for crc32c and crc64nvme; zlib-ng, a faster crc32
Buffer = Union[bytes, bytearray, memoryview]

# width in bits, reflected polynomial: CRC-32 (ISO-HDLC), CRC-32C (Castagnoli), CRC-64/NVME
_CRC_PARAMS: Dict[str, Tuple[int, int]] = {
    "crc32": (32, 0xEDB88320),
    "crc32c": (32, 0x82F63B78),
    "crc64nvme": (64, 0x9A6C9329AC4BC9B5),
}
_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
_STORED = ("crc64nvme", "crc32", "crc32c", "sha256", "sha1")  # what GET/HEAD may name
_MULTIPART = re.compile(r'-\d+"?$')  # an ETag, or a COMPOSITE checksum, of N parts


def _crt(name: str) -> Optional[Callable[..., int]]:
    try:
        from awscrt import checksums  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None
    fn: Callable[..., int] = getattr(checksums, name)
    return fn


def _crc32() -> Callable[..., int]:
    """zlib-ng's CRC32 where it is installed, else zlib's: the same function (zlib-ng folds
    with PCLMULQDQ/VPCLMULQDQ: 3-9x zlib's speed here, which weighs on every CRC32 body sent
    and every download checked: 512 MiB is ~100 ms of CPU through zlib)."""
    try:
        from zlib_ng import zlib_ng  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return zlib.crc32
    fn: Callable[..., int] = zlib_ng.crc32
    return fn


# The fast CRCs, each looked up at its first use: importing awscrt seeds its TLS library's
# entropy (~25 ms, a fifth of ``import knoxpy``) and zlib-ng takes ~9 ms, which a program that
# sends no checksum should not pay.
_FAST: Dict[str, Optional[Callable[..., int]]] = {}


def _fast(name: str) -> Optional[Callable[..., int]]:
    if name in _CRC_PARAMS and name not in _FAST:
        _FAST.setdefault(name, _crc32() if name == "crc32" else _crt(name))  # a test's entry stays
    return _FAST.get(name)


def available(name: str) -> bool:
    """Whether ``name`` can be computed fast here (crc32c/crc64nvme need awscrt)."""
    return name in ("sha1", "sha256", "md5") or _fast(name) is not None


def require(name: str, what: str = "checksum") -> None:
    """A ValidationError unless ``name`` can be computed fast here, naming the extra to install."""
    if not available(name):
        raise ValidationError(f"{what} {name!r} needs the awscrt package: {EXTRA}")


class Running:
    """A checksum of bytes given in order: ``update(data)``, then ``value()`` or ``b64()``."""

    __slots__ = ("name", "_crc", "_fn", "_hash")

    def __init__(self, name: str) -> None:
        self.name = name
        self._crc = 0
        self._fn = _fast(name)
        self._hash: Any = hashlib.new(name) if name in ("sha1", "sha256") else None
        if self._fn is None and self._hash is None:
            require(name)

    def update(self, data: Buffer) -> None:
        if self._hash is not None:
            self._hash.update(data)
        else:
            assert self._fn is not None
            self._crc = self._fn(data, self._crc)

    def value(self) -> Union[int, bytes]:
        """The CRC as an unsigned integer, or the SHA's digest."""
        return self._crc if self._hash is None else self._hash.digest()

    def b64(self) -> str:
        return encode(self.name, self.value())


def new(name: str) -> Running:
    return Running(name)


def size_of(name: str) -> int:
    """How many bytes a checksum of ``name`` has (4, 8 or 20)."""
    return _SIZES[name]


def value_of(name: str, data: Buffer) -> str:
    """The ``x-amz-checksum-<name>`` value of ``data``."""
    running = Running(name)
    running.update(data)
    return running.b64()


def encode(name: str, value: Union[int, bytes]) -> str:
    """A CRC (an integer) or a digest as S3 writes it: base64 of the big-endian bytes."""
    raw = value.to_bytes(_SIZES[name], "big") if isinstance(value, int) else value
    return base64.b64encode(raw).decode("ascii")


def decode(name: str, value: str) -> int:
    """The CRC that an ``x-amz-checksum-<name>`` value carries; ValueError if it is none."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{value!r} is not base64") from None
    if len(raw) != _SIZES[name]:
        raise ValueError(f"{value!r} is not a {name.upper()} ({_SIZES[name]} bytes)")
    return int.from_bytes(raw, "big")


class Stored(NamedTuple):
    """A checksum S3 keeps for an object, as GET or HEAD gives it (x-amz-checksum-mode).

    ``kind``: ``'FULL_OBJECT'`` (of the whole object's bytes: what a download checks),
    ``'COMPOSITE'`` (a checksum of the parts' checksums, ``value-N``: a download checks it
    part by part when the store gives each part's checksum, see :class:`PartSums`), or
    ``'unknown'`` (a multipart object whose answer says neither, as moto's HEAD: not checked
    rather than wrongly failed).
    """

    algorithm: str
    value: str
    kind: str

    @property
    def crc(self) -> bool:
        return self.algorithm in CRCS

    @property
    def verifiable(self) -> bool:
        return self.kind == "FULL_OBJECT" and available(self.algorithm)

    @property
    def per_part(self) -> bool:
        """A COMPOSITE checksum this client can check part by part."""
        return self.kind == "COMPOSITE" and available(self.algorithm)

    @property
    def parts(self) -> Optional[int]:
        """The N of a COMPOSITE ``value-N``, if the value says it."""
        m = _MULTIPART.search(self.value)
        return int(m[0].strip('-"')) if m else None

    @property
    def why_not(self) -> str:
        if self.kind == "COMPOSITE":
            return "a checksum of the parts' checksums, and the store gave none per part" \
                if available(self.algorithm) else f"computing it needs awscrt: {EXTRA}"
        if self.kind != "FULL_OBJECT":
            return "the answer does not say whether it is of the whole object"
        return f"computing it needs awscrt: {EXTRA}"


def stored_checksum(headers: Mapping[str, Any], etag: Optional[str]) -> Optional[Stored]:
    """The stored checksum an answer's (lower-case) headers name, if any.

    >>> stored_checksum({'x-amz-checksum-crc32': 'NhCmhg=='}, '"5d41402abc4b2a76b9719d911017c592"')
    Stored(algorithm='crc32', value='NhCmhg==', kind='FULL_OBJECT')
    >>> stored_checksum({'x-amz-checksum-sha1': 'qZk+NkcGgWq6PiVxeFDCbJzQ2J0=-3'}, '"ab-3"').kind
    'COMPOSITE'
    """
    for algorithm in _STORED:
        value = headers.get(f"x-amz-checksum-{algorithm}")
        if not value:
            continue
        value = str(value).strip()
        said = str(headers.get("x-amz-checksum-type") or "").strip().upper()
        if _MULTIPART.search(value) or said == "COMPOSITE":
            kind = "COMPOSITE"
        elif said == "FULL_OBJECT" or algorithm == "crc64nvme" \
                or not _MULTIPART.search(str(etag or "")):
            kind = "FULL_OBJECT"  # CRC64NVME has no other kind; a single PUT neither
        else:
            kind = "unknown"
        return Stored(algorithm, value, kind)
    return None


# -- combination over GF(2), after zlib's crc32_combine ----------------------------------
def _multmodp(a: int, b: int, width: int, poly: int) -> int:
    """``a * b mod P`` in the reflected representation (bit ``width - 1`` is x^0)."""
    m, p = 1 << (width - 1), 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1


_X2N: Dict[str, List[int]] = {}  # per CRC: x^(2^k) mod P for k = 0, 1, ...


def _x2nmodp(name: str, n: int, k: int) -> int:
    """``x^(n * 2^k) mod P``."""
    width, poly = _CRC_PARAMS[name]
    table = _X2N.setdefault(name, [1 << (width - 2)])  # x^1
    p = 1 << (width - 1)  # x^0
    while n:
        while len(table) <= k:
            table.append(_multmodp(table[-1], table[-1], width, poly))
        if n & 1:
            p = _multmodp(table[k], p, width, poly)
        n >>= 1
        k += 1
    return p


def combine(name: str, crc1: int, crc2: int, len2: int) -> int:
    """The CRC of ``A + B`` from ``crc(A)``, ``crc(B)`` and ``len(B)`` (bytes)."""
    width, poly = _CRC_PARAMS[name]
    return _multmodp(_x2nmodp(name, len2, 3), crc1, width, poly) ^ crc2


def combine_all(name: str, pieces: Iterable[Tuple[int, int]]) -> int:
    """The CRC of pieces given in order as ``(crc, length)``."""
    total = 0
    for crc, length in pieces:
        total = combine(name, total, crc, length)
    return total


# -- the reference implementation: for tests and cross-checks only ------------------------
_TABLES: Dict[str, List[int]] = {}


def reference_crc(name: str, data: Buffer, crc: int = 0) -> int:
    """The CRC of ``data`` (continuing ``crc``), table-driven in pure Python: slow."""
    width, poly = _CRC_PARAMS[name]
    table = _TABLES.get(name)
    if table is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ poly if c & 1 else c >> 1
            table.append(c)
        _TABLES[name] = table
    mask = (1 << width) - 1
    crc ^= mask
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ mask


# -- COMPOSITE checksums, part by part -----------------------------------------------------
def composite_of(name: str, part_values: Iterable[str]) -> str:
    """S3's COMPOSITE checksum: the checksum of the parts' binary checksums, then ``-N``.

    >>> parts = [value_of('crc32', b'hello '), value_of('crc32', b'world')]
    >>> composite_of('crc32', parts) == value_of('crc32', base64.b64decode(parts[0]) +
    ...                                         base64.b64decode(parts[1])) + '-2'
    True
    """
    values = list(part_values)
    return value_of(name, b"".join(base64.b64decode(v) for v in values)) + f"-{len(values)}"


class PartSums:
    """The checksum of each part of a multipart object, as its bytes arrive.

    ``layout``: the parts in order, as ``(length, checksum the store gave)``. Bytes are
    given with their offset in the object (:meth:`feed`) or in order (:meth:`append`);
    each part's bytes must come in order (a download whose ranges follow the part
    boundaries), parts in any order, one thread per part at a time. :meth:`problem` says
    what does not match, or None.

    >>> sums = PartSums('crc32', [(6, value_of('crc32', b'hello ')), (5, 'AAAAAA==')])
    >>> sums.feed(6, b'world'); sums.feed(0, b'hello ')
    >>> print(sums.problem('k'))  # doctest: +NORMALIZE_WHITESPACE
    part 2 of 'k' (bytes 6-10) does not match its CRC32 checksum:
    S3 gave AAAAAA==, the bytes make OncRQw==
    """

    def __init__(self, name: str, layout: List[Tuple[int, str]]) -> None:
        self.name, self.layout = name, layout
        self.starts: List[int] = []
        pos = 0
        for length, _ in layout:
            self.starts.append(pos)
            pos += length
        self.size = pos
        self._sums = [Running(name) for _ in layout]
        self._fed = [0] * len(layout)
        self._pos = 0  # for append()

    def feed(self, offset: int, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        i = max(0, bisect.bisect_right(self.starts, offset) - 1)
        while view and i < len(self.layout):
            start, length = self.starts[i], self.layout[i][0]
            if offset != start + self._fed[i]:
                raise ValueError(f"bytes of part {i + 1} out of order (at {offset})")
            n = min(len(view), start + length - offset)
            self._sums[i].update(view[:n])
            self._fed[i] += n
            view, offset, i = view[n:], offset + n, i + 1

    def append(self, data: Buffer) -> None:
        self.feed(self._pos, data)
        self._pos += len(data)

    def problem(self, key: str) -> Optional[str]:
        for i, ((length, given), start) in enumerate(zip(self.layout, self.starts)):
            where = f"part {i + 1} of {key!r} (bytes {start}-{start + length - 1})"
            if self._fed[i] != length:
                return f"{where} was not all checksummed ({self._fed[i]} of {length} bytes)"
            got = self._sums[i].b64()
            if got != given:
                return (f"{where} does not match its {self.name.upper()} checksum: S3 gave "
                        f"{given}, the bytes make {got}")
        return None

    def composite(self) -> str:
        """The COMPOSITE value of the checksums the store gave for the parts."""
        return composite_of(self.name, (given for _, given in self.layout))
