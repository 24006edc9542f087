"""Credentials and settings found "the usual way", as the AWS CLI and SDKs find them.

Pure functions: the environment is a mapping passed in and the files are paths passed in
(or found from ``HOME`` in that mapping), so every rule is tested with a dict and temp
files. Nothing here keeps state, logs, or puts a secret in a repr.

Where each setting comes from, first match wins:

==================  ============================================================
credentials         explicit ``key``/``secret``/``token`` options;
                    ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (+
                    ``AWS_SESSION_TOKEN``), skipped when a ``profile`` option is
                    given (as botocore does: an explicit profile wins);
                    the profile in ``~/.aws/credentials``, then in ``~/.aws/config``
profile             the ``profile`` option, ``AWS_PROFILE``, ``AWS_DEFAULT_PROFILE``,
                    ``default``
region              the ``region`` option, ``AWS_REGION``, ``AWS_DEFAULT_REGION``,
                    the profile's ``region`` in ``~/.aws/config``
endpoint URL        the ``endpoint_url`` option, ``AWS_ENDPOINT_URL_S3``,
                    ``AWS_ENDPOINT_URL``, the profile's ``s3 = endpoint_url`` or
                    ``endpoint_url`` in ``~/.aws/config`` (env and config ones are
                    ignored when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true)
CA bundle (HTTPS)   the ``ca`` option, ``AWS_CA_BUNDLE``, the profile's ``ca_bundle``
                    in ``~/.aws/config`` (then ``SSL_CERT_FILE``, else the system's
                    store: see :func:`knoxpy._validate.ca_bundle`)
files               ``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_CONFIG_FILE``, else
                    ``$HOME/.aws/credentials`` and ``$HOME/.aws/config``
==================  ============================================================

In the credentials file a profile is ``[name]``; in the config file it is
``[profile name]`` (``[default]`` for the default one), as the AWS CLI writes them.

An endpoint URL becomes knox's options (:func:`endpoint_options`):
``http://127.0.0.1:9000`` is ``endpoint='127.0.0.1', port=9000, secure=False`` and,
because no DNS name ``bucket.127.0.0.1`` exists, ``style='path'``; the same for
``localhost`` (MinIO's and moto's default addressing). Other hosts keep knox's automatic
choice unless the profile says ``s3 = addressing_style = path|virtual``.

>>> found = resolve({}, {'AWS_ACCESS_KEY_ID': 'AKID', 'AWS_SECRET_ACCESS_KEY': 's3cr3t'})
>>> found.key, found.source
('AKID', 'environment')
>>> found
Resolved(key='AKID', secret='***', token=None, region=None, endpoint_url=None, ...)
"""
from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import os
import urllib.parse
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import ValidationError

__all__ = ["ConfiguredCA", "Resolved", "client_options", "endpoint_options", "read_profile",
           "resolve"]

_TRUE = ("1", "true", "yes", "on")


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What was found, and where (``source``: ``'options'``, ``'environment'``, a file)."""

    key: Optional[str] = None
    secret: Optional[str] = dataclasses.field(default=None, repr=False)
    token: Optional[str] = dataclasses.field(default=None, repr=False)
    region: Optional[str] = None
    endpoint_url: Optional[str] = None
    addressing_style: Optional[str] = None
    profile: Optional[str] = None
    source: Optional[str] = None
    ca_bundle: Optional[ConfiguredCA] = None  # the profile's, when env and option name none

    def __repr__(self) -> str:
        shown = {
            "key": self.key, "secret": "***" if self.secret else None,
            "token": "***" if self.token else None, "region": self.region,
            "endpoint_url": self.endpoint_url,
        }
        body = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"Resolved({body}, ...)" if self.key else f"Resolved({body})"


def _env(environ: Mapping[str, str], *names: str) -> Optional[str]:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def _home(environ: Mapping[str, str]) -> str:
    return _env(environ, "HOME", "USERPROFILE") or os.path.expanduser("~")


def default_files(environ: Mapping[str, str]) -> Tuple[str, str]:
    """``(credentials file, config file)``: the env overrides, else under ``$HOME/.aws``."""
    aws = os.path.join(_home(environ), ".aws")
    credentials = _env(environ, "AWS_SHARED_CREDENTIALS_FILE") or os.path.join(aws, "credentials")
    config = _env(environ, "AWS_CONFIG_FILE") or os.path.join(aws, "config")
    return os.path.expanduser(credentials), os.path.expanduser(config)


def _read_ini(path: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(default_section="\0none")  # no DEFAULT magic
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f, source=path)
    except FileNotFoundError:
        pass
    except (OSError, configparser.Error) as err:
        # configparser's message quotes the offending line; a secret may sit on it.
        raise ValidationError(
            f"cannot read AWS settings file {path!r}: {type(err).__name__}"
        ) from None
    return parser


def _nested(value: str) -> Dict[str, str]:
    """The AWS config's nested block (``s3 =`` then indented ``name = value`` lines)."""
    out: Dict[str, str] = {}
    for line in value.splitlines():
        name, sep, val = line.partition("=")
        if sep:
            out[name.strip().lower()] = val.strip()
    return out


def read_profile(profile: str, credentials_file: str, config_file: str
                 ) -> Optional[Tuple[Dict[str, str], str]]:
    """The settings of ``profile`` (credentials file first), and where they came from.

    Settings of the config file's ``s3 =`` block are returned as ``s3.name``. None when
    neither file has the profile.
    """
    found: Dict[str, str] = {}
    where = []
    config = _read_ini(config_file)
    section = "default" if profile == "default" else f"profile {profile}"
    if not config.has_section(section) and profile == "default":
        section = "profile default"
    if config.has_section(section):
        where.append(config_file)
        for name, value in config.items(section):
            if name == "s3":
                found.update({f"s3.{k}": v for k, v in _nested(value).items()})
            else:
                found[name] = value.strip()
    credentials = _read_ini(credentials_file)
    if credentials.has_section(profile):
        where.insert(0, credentials_file)
        found.update({k: v.strip() for k, v in credentials.items(profile)})  # credentials win
    if not where:
        return None
    return found, where[0]


def resolve(options: Mapping[str, Any], environ: Mapping[str, str],
            credentials_file: Optional[str] = None, config_file: Optional[str] = None
            ) -> Resolved:
    """Find credentials, region and endpoint URL for ``options`` (see the module's table).

    ``options`` may hold ``key``, ``secret``, ``token``, ``region``, ``endpoint_url``
    and ``profile``. A ``profile`` that is named (option or ``AWS_PROFILE``) but found
    in neither file is an error, as with the AWS CLI.

    >>> resolve({'key': 'AKID', 'secret': 's'}, {}).source
    'options'
    """
    default_credentials, default_config = default_files(environ)
    credentials_file = credentials_file or default_credentials
    config_file = config_file or default_config
    explicit_profile = options.get("profile")
    profile = explicit_profile or _env(environ, "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    settings: Dict[str, str] = {}
    settings_from: Optional[str] = None
    found = read_profile(profile or "default", credentials_file, config_file)
    if found is not None:
        settings, settings_from = found
    elif profile:
        raise ValidationError(
            f'the config profile "{profile}" could not be found '
            f"(looked in {credentials_file} and {config_file})"
        )

    key, secret, token, source = options.get("key"), options.get("secret"), None, None
    if key:
        token, source = options.get("token"), "options"
    elif not explicit_profile and _env(environ, "AWS_ACCESS_KEY_ID"):
        key = _env(environ, "AWS_ACCESS_KEY_ID")
        secret = _env(environ, "AWS_SECRET_ACCESS_KEY")
        token = _env(environ, "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
        source = "environment"
    elif settings.get("aws_access_key_id"):
        key = settings["aws_access_key_id"]
        secret = settings.get("aws_secret_access_key")
        token = settings.get("aws_session_token") or settings.get("aws_security_token")
        source = f"profile {profile or 'default'} in {settings_from}"

    ignore = (_env(environ, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") or "").lower() in _TRUE
    configured_endpoint = None if ignore else (
        _env(environ, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        or settings.get("s3.endpoint_url") or settings.get("endpoint_url")
    )
    # botocore's order: AWS_CA_BUNDLE before the config file's ca_bundle.
    configured_ca = None
    if settings.get("ca_bundle") and not _env(environ, "AWS_CA_BUNDLE"):
        configured_ca = ConfiguredCA(
            settings["ca_bundle"], f"ca_bundle of profile {profile or 'default'} in "
            f"{settings_from}")
    return Resolved(
        key=key or None, secret=secret or None, token=token or None,
        region=options.get("region") or _env(environ, "AWS_REGION", "AWS_DEFAULT_REGION")
        or settings.get("region") or None,
        endpoint_url=options.get("endpoint_url") or configured_endpoint or None,
        addressing_style=settings.get("s3.addressing_style"),
        profile=profile or ("default" if found is not None else None),
        source=source,
        ca_bundle=configured_ca,
    )


class ConfiguredCA(str):
    """A CA bundle path that a profile named, and where it was named, for error messages.

    >>> ca = ConfiguredCA('~/ca.pem', 'ca_bundle of profile dev in /h/.aws/config')
    >>> ca, ca.where
    ('~/ca.pem', 'ca_bundle of profile dev in /h/.aws/config')
    """

    where: str

    def __new__(cls, path: str, where: str) -> ConfiguredCA:
        self = super().__new__(cls, path)
        self.where = where
        return self


def _is_loopback_or_ip(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def endpoint_options(url: str, addressing_style: Optional[str] = None) -> Dict[str, Any]:
    """knox's ``endpoint``/``port``/``secure``/``style`` for an endpoint URL.

    >>> endpoint_options('http://127.0.0.1:5000')
    {'endpoint': '127.0.0.1', 'secure': False, 'port': 5000, 'style': 'path'}
    >>> endpoint_options('https://account.r2.cloudflarestorage.com')
    {'endpoint': 'account.r2.cloudflarestorage.com', 'secure': True}
    """
    parts = urllib.parse.urlsplit(url if "://" in url else "https://" + url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"endpoint URL must look like https://host[:port], not {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValidationError(f"endpoint URL must not carry a path or query: {url!r}")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, as it goes in a Host header
    out: Dict[str, Any] = {"endpoint": host, "secure": parts.scheme == "https"}
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"endpoint URL has a bad port: {url!r}") from None
    if port is not None:
        out["port"] = port
    style = {"path": "path", "virtual": "virtualHosted"}.get((addressing_style or "").lower())
    if style is None and _is_loopback_or_ip(host):
        style = "path"  # no DNS name bucket.<ip> exists; MinIO and moto default to path
    if style:
        out["style"] = style
    return out


def client_options(options: Mapping[str, Any], environ: Mapping[str, str],
                   credentials_file: Optional[str] = None, config_file: Optional[str] = None
                   ) -> Dict[str, Any]:
    """knox options completed from the environment and the AWS files.

    Only what ``options`` leaves out is filled in: ``key``/``secret``/``token``, the
    ``region``, ``ca`` from the profile's ``ca_bundle`` (a :class:`ConfiguredCA`) and, from
    an endpoint URL (``endpoint_url`` option, env or config),
    ``endpoint``/``port``/``secure``/``style``. An explicit ``endpoint`` is kept as it is.
    When nothing is found the options come back unchanged (and knox's
    ``aws "key" required`` follows).

    >>> opts = client_options({'bucket': 'b'}, {'AWS_ACCESS_KEY_ID': 'AKID',
    ...     'AWS_SECRET_ACCESS_KEY': 's', 'AWS_ENDPOINT_URL': 'http://localhost:9000'})
    >>> opts['key'], opts['endpoint'], opts['port'], opts['style']
    ('AKID', 'localhost', 9000, 'path')
    """
    found = resolve(options, environ, credentials_file, config_file)
    out = {k: v for k, v in options.items() if k not in ("profile", "endpoint_url")}
    if found.key and not options.get("key"):
        out["key"], out["secret"] = found.key, found.secret
        if found.token:
            out["token"] = found.token
    if found.region and not options.get("region"):
        out["region"] = found.region
    if found.ca_bundle and options.get("ca") is None:
        out["ca"] = found.ca_bundle
    if found.endpoint_url and not options.get("endpoint"):
        for name, value in endpoint_options(found.endpoint_url, found.addressing_style).items():
            out.setdefault(name, value)
    return out
