"""Input checks that keep bad input from becoming bad requests: pure, no I/O.

- header names must be HTTP tokens and values free of control characters, so no
  caller-supplied string can inject a header or split a request (CR/LF);
- keys must be free of control characters for the same reason;
- a key written under a local directory must stay inside it;
- a body must be exactly as long as its ``Content-Length`` says: a longer one would be read
  by the server as the start of the next request on the connection, a shorter one would
  leave the server waiting for bytes that never come.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping, Optional, Set, Tuple

from .errors import ValidationError

__all__ = [
    "body_ended_early",
    "body_length_mismatch",
    "body_too_long",
    "ca_bundle",
    "is_pem_text",
    "check_headers",
    "check_key",
    "concurrency",
    "content_length",
    "credential",
    "flag",
    "local_path_for_key",
    "port_number",
    "retries",
    "signature_version",
    "timeout",
]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab is allowed in values
_KEY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_DIGITS = re.compile(r"[0-9]+")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")
_TOKENS_SEEN: Set[str] = set()  # header names check_headers found to be tokens
_TEXT_HINT = " (strings are sent as UTF-8: use len(s.encode()))"  # knox's README warning


def _show(ch: str) -> str:
    return repr(ch)[1:-1]


def check_headers(headers: Mapping[str, Any]) -> None:
    """Refuse header names that are not tokens, and values with control characters or
    characters outside ASCII (S3 takes US-ASCII header values; Node refuses what latin-1
    cannot carry, botocore refuses non-ASCII metadata)."""
    for name, value in headers.items():
        if name not in _TOKENS_SEEN:
            if not isinstance(name, str) or not _TOKEN.match(name):
                raise ValidationError(f"invalid header name {name!r}: must be an HTTP token")
            if len(_TOKENS_SEEN) < 512:  # a program's header names are few, and repeat
                _TOKENS_SEEN.add(name)
        if value is None:  # Node: Invalid value "undefined" for header
            raise ValidationError(f"invalid value None for header {name!r}: leave it out "
                                  "(a headers dict given to a request drops None values)")
        text = str(value)
        if text.isascii() and text.isprintable():  # the usual value: no expression needed
            continue
        m = _CONTROL.search(text)
        if m:
            raise ValidationError(
                f"invalid value for header {name!r}: contains control character "
                f"'{_show(m.group())}' (header injection is refused)"
            )
        m = _NOT_ASCII.search(text)
        if m:
            raise ValidationError(
                f"invalid value for header {name!r}: non-ASCII character '{_show(m.group())}' "
                "(S3 takes ASCII header values: percent-encode the value, or RFC 2047-encode "
                "it as =?UTF-8?B?...?=)"
            )


def content_length(value: Any) -> int:
    """A ``Content-Length`` header's value as a number of bytes; anything else is refused.

    >>> content_length(12), content_length('12')
    (12, 12)
    """
    n: Any = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        n = int(value)
    if n is None or n < 0:
        raise ValidationError(
            f"Content-Length must be a whole number of bytes, 0 or more, not {value!r}")
    return int(n)


def body_length_mismatch(declared: int, size: int, text: bool = False) -> ValidationError:
    """The error for a whole body whose length is not its ``Content-Length``; ``text``: it
    was given as a string (knox's README warning: ``len(s)`` counts characters)."""
    hint = _TEXT_HINT if text else ""
    return ValidationError(f"Content-Length {declared} but the body is {size} bytes{hint}")


def body_too_long(declared: int, at_least: int, text: bool = False) -> ValidationError:
    """The error for a streamed body that runs past its ``Content-Length``."""
    hint = _TEXT_HINT if text else ""
    return ValidationError(
        f"Content-Length {declared} but the body is longer: {at_least} bytes or more{hint}")


def body_ended_early(declared: int, size: int) -> ValidationError:
    """The error for a streamed body that ends before its ``Content-Length``."""
    return ValidationError(f"Content-Length {declared} but the body ended after {size} bytes")


def credential(name: str, value: Any) -> Optional[str]:
    """``key``, ``secret`` or ``token`` as it is used: surrounding whitespace stripped (a
    token read from a file ends in a newline), None when nothing is left. A value that is
    not a string, or has a control character inside (or, for the key and the token, which
    go in headers, a character outside ASCII), is refused; the message never shows it.

    >>> credential('token', 'FwoGZXIvYXdzE\\n')
    'FwoGZXIvYXdzE'
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f'aws "{name}" must be a string, not {type(value).__name__}')
    text = value.strip()
    if _KEY_CONTROL.search(text):
        raise ValidationError(f'aws "{name}" contains a control character (the value is not shown)')
    if name != "secret" and _NOT_ASCII.search(text):
        raise ValidationError(
            f'aws "{name}" contains a character outside ASCII (the value is not shown)')
    return text or None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def timeout(value: Any) -> Any:
    """The ``timeout`` option: seconds (over 0), ``(connect, read)`` (each over 0, or None
    for no limit), or None for the defaults."""
    pair = value if isinstance(value, (tuple, list)) else None
    if value is None or (_number(value) and value > 0) or (
        pair is not None and len(pair) == 2
        and all(v is None or (_number(v) and v > 0) for v in pair)
    ):
        return value
    raise ValidationError(
        f"timeout must be seconds (a number over 0) or (connect, read), not {value!r}")


def retries(value: Any) -> int:
    """The ``maxRetries`` option: a whole number, 0 or more."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValidationError(f"maxRetries must be a whole number, 0 or more, not {value!r}")


def signature_version(value: Any) -> int:
    """The ``signatureVersion`` option: 4 or 2 (``'4'`` and ``'2'`` too)."""
    if not isinstance(value, bool) and isinstance(value, (int, str)) and str(value) in ("2", "4"):
        return int(value)
    raise ValidationError(f"signatureVersion must be 2 or 4, not {value!r}")


def concurrency(value: Any) -> int:
    """The ``concurrency`` option: parts or objects in flight, 1 or more."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValidationError(f"concurrency must be a positive integer, not {value!r}")


def flag(name: str, value: Any) -> bool:
    """An option that is on or off (``secure``, ``resume``...): a bool, nothing else."""
    if isinstance(value, bool):
        return value
    raise ValidationError(f"{name} must be True or False, not {value!r}")


_CA_ENV = ("AWS_CA_BUNDLE", "SSL_CERT_FILE")  # botocore's, then OpenSSL's


def is_pem_text(value: Any) -> bool:
    """Whether a ``ca`` is PEM text rather than a path."""
    return isinstance(value, str) and value.lstrip().startswith("-----BEGIN")


def ca_bundle(value: Any, environ: Mapping[str, str]) -> Optional[Tuple[str, str]]:
    """The CA certificates a client trusts, and who named them: ``(what, where)``.

    ``value`` is the ``ca`` option: the path of a PEM file or of a directory of
    certificates (hashed names, as ``c_rehash`` writes them), or PEM text itself. Without
    it, ``AWS_CA_BUNDLE`` then ``SSL_CERT_FILE`` in ``environ``; None: the system's store.
    (A profile's ``ca_bundle`` comes in as ``value``, filled in by ``knoxpy._config`` when
    ``AWS_CA_BUNDLE`` is unset, so it wins over ``SSL_CERT_FILE`` and errors name it.)
    A path is made absolute (``~`` expanded) and must name something readable.

    >>> ca_bundle(None, {}) is None
    True
    >>> ca_bundle(None, {'SSL_CERT_FILE': '/'})
    ('/', 'SSL_CERT_FILE')
    """
    if value is None:
        found = [(environ[name], name) for name in _CA_ENV if environ.get(name)]
        if not found:
            return None
        value, where = found[0]
    elif isinstance(value, (str, os.PathLike)) and os.fspath(value):
        where = getattr(value, "where", "ca")  # a profile's ca_bundle says where it was set
        if is_pem_text(value):
            return str(value), where  # as Node's ca takes it
    else:
        raise ValidationError(
            "ca must be the path of a PEM file or of a directory of CA certificates "
            f"(or PEM text), not {value!r}")
    path = os.path.abspath(os.path.expanduser(os.fspath(value)))
    if not os.path.exists(path):
        raise ValidationError(f"{where}: no such CA file or directory: {path!r}")
    if not os.access(path, os.R_OK):
        raise ValidationError(f"{where}: cannot read the CA file {path!r} (permission denied)")
    return path, where


def port_number(value: Any) -> int:
    """A port, once knox's own check (``port must be a number.``) has passed."""
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    raise ValidationError(f"port must be a whole number from 1 to 65535, not {value!r}")


def check_key(key: str) -> None:
    """Refuse keys with control characters (CR, LF, NUL...)."""
    if key.isprintable():  # the usual key: no control character, no expression to run
        return
    m = _KEY_CONTROL.search(key)
    if m:
        raise ValidationError(
            f"invalid key {key!r}: contains control character '{_show(m.group())}'"
        )


def local_path_for_key(root: str, key: str) -> str:
    """Where ``key`` goes under the directory ``root``; refuses keys that would escape it.

    >>> local_path_for_key('/tmp/out', 'photos/2024/a.jpg')
    '/tmp/out/photos/2024/a.jpg'
    """
    check_key(key)
    parts = key.replace("\\", "/").split("/")
    if key.startswith(("/", "\\")) or _DRIVE.match(key) or ".." in parts:
        raise ValidationError(
            f"refusing key {key!r}: it would be written outside {root!r}"
        )
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, *[p for p in parts if p not in ("", ".")]))
    if path != base and not path.startswith(base + os.sep):
        raise ValidationError(f"refusing key {key!r}: it would be written outside {root!r}")
    return path
