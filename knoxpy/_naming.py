"""Names and URLs, as knox derives them: pure functions, no I/O.

Bucket-name rules, the automatic choice of URL style, region → endpoint, the
client's derived attributes (``host``, ``urlBase``, ``secure``...), and the way a
key is escaped into a path. Validation messages are knox's, word for word.
"""
from __future__ import annotations

import re
import urllib.parse
from typing import Any, Dict, Mapping, Optional

from . import _validate
from .errors import ValidationError

__all__ = [
    "derive_client",
    "encode_key",
    "encode_special_characters",
    "endpoint_for_region",
    "ensure_leading_slash",
    "is_invalid",
    "is_not_dns_compliant",
    "region_from_host",
    "remove_leading_slash",
    "request_target",
    "url_for",
]

MIN_BUCKET_LENGTH = 3
MAX_NON_US_STANDARD_BUCKET_LENGTH = 63
MAX_US_STANDARD_BUCKET_LENGTH = 255
US_STANDARD_BUCKET = re.compile(r"^[A-Za-z0-9._-]*$")
BUCKET_LABEL = re.compile(r"^(?:[a-z0-9][a-z0-9-]*[a-z0-9]|[a-z0-9])$")
IPV4_ADDRESS = re.compile(r"^(\d{1,3}\.){3}(\d{1,3})$")
# What goes in a Host header and a signature's scope: no scheme, port, path or whitespace.
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")
_REGION = re.compile(r"[A-Za-z0-9._-]+")
_WHAT = {"endpoint": "a host name or IP address (no scheme, port or path)",
         "region": "a region name such as 'eu-west-1'"}

# Regions with a legacy dash endpoint, ``s3-<region>.amazonaws.com`` (those launched
# before 2019 per AWS's "Amazon S3 endpoints" table: "Some Regions support legacy
# endpoints"). knox built this form for every region; newer regions only answer on
# ``s3.<region>.amazonaws.com``.
LEGACY_DASH_REGIONS = frozenset({
    "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "us-gov-west-1",
})

# JS encodeURI leaves these unescaped; knox then escapes ! ' ( ) # * + ? and space.
_URI_UNESCAPED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" ";,/?:@&=+$-_.!~*'()#"
)
_KNOX_SPECIAL = frozenset("!'()#*+? ")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9;,/:@&=$\-_.~]*\Z")  # _URI_UNESCAPED less _KNOX_SPECIAL


def ensure_leading_slash(filename: str) -> str:
    return filename if filename.startswith("/") else "/" + filename


def remove_leading_slash(filename: str) -> str:
    return filename[1:] if filename.startswith("/") else filename


# A version named the knox way, as a subresource at the end of the filename.
_VERSION_SUFFIX = re.compile(r"\?versionId=([^?&#\s]+)\Z")


def encode_key(filename: str) -> str:
    """A filename as knox's calls put it in the path, except that a trailing
    ``?versionId=ID`` stays a query: that version is the one read, copied or deleted.

    >>> encode_key('/a b.txt?versionId=3/L4kqtJl')
    '/a%20b.txt?versionId=3%2FL4kqtJl'
    >>> encode_key('/what?.txt')
    '/what%3f.txt'
    """
    m = _VERSION_SUFFIX.search(filename)
    if m is None:
        return encode_special_characters(filename)
    return (encode_special_characters(filename[: m.start()]) + "?versionId="
            + urllib.parse.quote(m[1], safe=""))


def encode_special_characters(filename: str) -> str:
    """knox's ``encodeSpecialCharacters``: ``encodeURI``, then ``[!'()#*+? ]`` as ``%xx``.

    >>> encode_special_characters("/a b/it's (1)+?.txt")
    '/a%20b/it%27s%20%281%29%2b%3f.txt'
    """
    if _PLAIN_KEY.match(filename):  # the common case: nothing to escape
        return filename
    out = []
    for ch in filename:
        if ch in _KNOX_SPECIAL:
            out.append("%" + format(ord(ch), "x"))  # JS charCodeAt(0).toString(16)
        elif ch in _URI_UNESCAPED:
            out.append(ch)
        else:
            try:
                data = ch.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError(
                    f"URI malformed: key {filename!r} has a lone surrogate"
                ) from None
            out.append("".join(f"%{b:02X}" for b in data))
    return "".join(out)


def is_not_dns_compliant(bucket: str) -> Optional[str]:
    """Why a bucket name cannot be a DNS label (knox's messages), or None."""
    if len(bucket) > MAX_NON_US_STANDARD_BUCKET_LENGTH:
        return f"is more than {MAX_NON_US_STANDARD_BUCKET_LENGTH} characters"
    if IPV4_ADDRESS.match(bucket):
        return "is formatted as an IPv4 address"
    if not all(BUCKET_LABEL.match(label) for label in bucket.split(".")):
        return "does not consist of valid period-separated labels"
    return None


def is_invalid(bucket: str) -> Optional[str]:
    """Why a bucket name is invalid anywhere (knox's messages), or None."""
    if len(bucket) < MIN_BUCKET_LENGTH:
        return f"is less than {MIN_BUCKET_LENGTH} characters"
    if len(bucket) > MAX_US_STANDARD_BUCKET_LENGTH:
        return f"is more than {MAX_US_STANDARD_BUCKET_LENGTH} characters"
    if not US_STANDARD_BUCKET.match(bucket):
        return "contains invalid characters"
    return None


def endpoint_for_region(region: Optional[str]) -> str:
    """The S3 endpoint of a region: knox's dash form where AWS still has it.

    >>> endpoint_for_region('us-west-2'), endpoint_for_region('eu-north-1')
    ('s3-us-west-2.amazonaws.com', 's3.eu-north-1.amazonaws.com')
    """
    if not region or region in ("us-standard", "us-east-1"):
        return "s3.amazonaws.com"
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    if region in LEGACY_DASH_REGIONS:
        return "s3-" + region + suffix
    return "s3." + region + suffix


_REGION_IN_HOST = re.compile(r"(?:^|\.)s3[.-](?:dualstack\.)?([a-z]{2}(?:-gov)?-[a-z]+-\d+)\.")


def region_from_host(host: Optional[str]) -> Optional[str]:
    """The region named in an S3 host (``bucket.s3.us-west-2.amazonaws.com``), if any."""
    m = _REGION_IN_HOST.search(host or "")
    return m.group(1) if m else None


def _auto_style(opts: Dict[str, Any]) -> None:
    """knox's ``autoDetermineStyle``."""
    if not opts.get("style") and opts.get("secure") is not False and "." in opts["bucket"]:
        opts["style"] = "path"
        return
    uncompliance = is_not_dns_compliant(opts["bucket"])
    if uncompliance:
        if opts.get("style") == "virtualHosted":
            raise ValidationError(
                'Cannot use "virtualHosted" style with a DNS-uncompliant bucket name: "'
                + opts["bucket"] + '" is ' + uncompliance + "."
            )
        opts["style"] = "path"
        return
    if not opts.get("style"):
        opts["style"] = "virtualHosted"


def _js_parse_int_is_nan(value: Any) -> bool:
    """JS ``isNaN(parseInt(value))``."""
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return value != value
    return not re.match(r"^\s*[+-]?\d", str(value))


def derive_client(options: Mapping[str, Any]) -> Dict[str, Any]:
    """The attributes knox's ``Client`` constructor sets, validated with knox's messages.

    >>> a = derive_client({'key': 'k', 'secret': 's', 'bucket': 'learnboost'})
    >>> a['host'], a['urlBase'], a['region'], a['secure']
    ('learnboost.s3.amazonaws.com', 'learnboost.s3.amazonaws.com', 'us-standard', True)
    """
    for name in ("key", "secret", "bucket"):
        if not options.get(name):
            raise ValidationError(f'aws "{name}" required')
    style = options.get("style")
    if style and style not in ("virtualHosted", "path"):
        raise ValidationError('style must be "virtualHosted" or "path"')
    if options.get("port") is not None and _js_parse_int_is_nan(options["port"]):
        raise ValidationError("port must be a number.")
    if options.get("port") is not None:
        _validate.port_number(options["port"])
    for name, pattern in (("endpoint", _HOST), ("region", _REGION)):
        value = options.get(name)
        if value and not (isinstance(value, str) and pattern.fullmatch(value)):
            raise ValidationError(f"{name} must be {_WHAT[name]}, not {value!r}")
    bucket = options["bucket"]
    if not isinstance(bucket, str):
        raise ValidationError(f'aws "bucket" must be a string, not {type(bucket).__name__}')
    invalidness = is_invalid(bucket)
    if invalidness:
        # No raw control bytes in the message: each shown escaped.
        shown = _validate._KEY_CONTROL.sub(lambda m: repr(m.group())[1:-1], bucket)
        raise ValidationError(f'Bucket name "{shown}" {invalidness}.')
    uncompliance = is_not_dns_compliant(bucket)

    original = dict(options)
    opts = dict(options)
    _auto_style(opts)
    if not opts.get("endpoint"):
        region = opts.get("region")
        if not region or region in ("us-standard", "us-east-1"):
            opts["region"] = "us-standard"
        opts["endpoint"] = endpoint_for_region(opts["region"])
        if opts["region"] != "us-standard" and uncompliance:
            raise ValidationError(
                "Outside of the us-standard region, bucket names must be DNS-compliant. "
                f'The name "{bucket}" {uncompliance}.'
            )
    else:
        opts["region"] = None

    port = opts.get("port")
    port_suffix = "" if port is None else f":{port}"
    attrs: Dict[str, Any] = {"secure": port is None}
    if opts["style"] == "virtualHosted":
        attrs["host"] = f"{bucket}.{opts['endpoint']}"
        attrs["urlBase"] = f"{bucket}.{opts['endpoint']}{port_suffix}"
    else:
        attrs["host"] = opts["endpoint"]
        attrs["urlBase"] = f"{opts['endpoint']}{port_suffix}/{bucket}"
    attrs.update(opts)  # knox's utils.merge(this, options): a given `secure` wins
    attrs.setdefault("port", None)
    attrs.setdefault("token", None)
    attrs["options"] = original
    return attrs


def request_target(style: str, bucket: str, fixed_filename: str) -> str:
    """The path on the wire: ``/bucket`` first in path style (knox's ``pathPrefix``)."""
    return ("/" + bucket if style == "path" else "") + fixed_filename


def url_for(url_base: str, filename: str, scheme: str) -> str:
    """knox's ``http()``/``https()``: ``scheme://urlBase/encoded-key``."""
    return f"{scheme}://{url_base}{encode_special_characters(ensure_leading_slash(filename))}"
