"""Credentials and settings the usual way (knoxpy._config): fake environ dicts, temp files."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

import knoxpy
from knoxpy import _config
from knoxpy.errors import ValidationError

ENV_KEYS = {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n"
        "\n[dev]\naws_access_key_id=AKIDDEV\naws_secret_access_key=dev-secret\n"
        "aws_session_token=dev-token\n"
    )
    (tmp_path / ".aws" / "config").write_text(
        "[default]\nregion = eu-west-1\n"
        "\n[profile dev]\nregion = us-west-2\ns3 =\n  endpoint_url = http://127.0.0.1:9000\n"
        "  addressing_style = path\n"
        "\n[profile cfgonly]\naws_access_key_id = AKIDCFG\naws_secret_access_key = cfg-secret\n"
        "endpoint_url = https://minio.example.com:9000\n"
    )
    return tmp_path


def env(home: Path, **extra: str) -> Dict[str, str]:
    return {"HOME": str(home), **extra}


def test_explicit_options_win_over_everything(home: Path) -> None:
    found = _config.resolve({"key": "AKIDOPT", "secret": "opt-secret", "region": "ap-south-1"},
                            env(home, **ENV_KEYS, AWS_REGION="us-east-2"))
    assert (found.key, found.secret, found.region, found.source) == (
        "AKIDOPT", "opt-secret", "ap-south-1", "options")


def test_environment_then_files(home: Path) -> None:
    found = _config.resolve({}, env(home, **ENV_KEYS, AWS_SESSION_TOKEN="env-token"))
    assert (found.key, found.secret, found.token, found.source) == (
        "AKIDENV", "env-secret", "env-token", "environment")
    assert found.region == "eu-west-1"  # the default profile's, env having none
    found = _config.resolve({}, env(home))
    assert (found.key, found.secret, found.token) == ("AKIDDEFAULT", "default-secret", None)
    assert found.source == f"profile default in {home / '.aws' / 'credentials'}"


def test_aws_profile_env_and_profile_option(home: Path) -> None:
    found = _config.resolve({}, env(home, AWS_PROFILE="dev"))
    assert (found.key, found.token, found.region) == ("AKIDDEV", "dev-token", "us-west-2")
    assert found.endpoint_url == "http://127.0.0.1:9000"
    assert found.addressing_style == "path"
    # Env credentials beat AWS_PROFILE, but an explicit profile beats env credentials.
    assert _config.resolve({}, env(home, AWS_PROFILE="dev", **ENV_KEYS)).key == "AKIDENV"
    assert _config.resolve({"profile": "dev"}, env(home, **ENV_KEYS)).key == "AKIDDEV"


def test_credentials_in_the_config_file_and_endpoint_url(home: Path) -> None:
    found = _config.resolve({"profile": "cfgonly"}, env(home))
    assert (found.key, found.secret) == ("AKIDCFG", "cfg-secret")
    assert found.endpoint_url == "https://minio.example.com:9000"
    assert found.source == f"profile cfgonly in {home / '.aws' / 'config'}"


def test_region_order(home: Path) -> None:
    e = env(home, AWS_DEFAULT_REGION="sa-east-1")
    assert _config.resolve({}, e).region == "sa-east-1"
    assert _config.resolve({}, dict(e, AWS_REGION="ca-central-1")).region == "ca-central-1"
    assert _config.resolve({"region": "us-west-1"}, dict(e, AWS_REGION="x")).region == "us-west-1"


def test_endpoint_url_order_and_ignore_switch(home: Path) -> None:
    e = env(home, AWS_PROFILE="dev", AWS_ENDPOINT_URL="http://localhost:1")
    assert _config.resolve({}, e).endpoint_url == "http://localhost:1"
    e["AWS_ENDPOINT_URL_S3"] = "http://localhost:2"
    assert _config.resolve({}, e).endpoint_url == "http://localhost:2"
    assert _config.resolve({"endpoint_url": "http://x:3"}, e).endpoint_url == "http://x:3"
    e["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
    assert _config.resolve({}, e).endpoint_url is None
    assert _config.resolve({"endpoint_url": "http://x:3"}, e).endpoint_url == "http://x:3"


def test_file_location_overrides(tmp_path: Path) -> None:
    creds = tmp_path / "c.ini"
    conf = tmp_path / "k.ini"
    creds.write_text("[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = w\n")
    conf.write_text("[profile work]\nregion = eu-central-1\n")
    e = {"HOME": str(tmp_path / "nowhere"), "AWS_SHARED_CREDENTIALS_FILE": str(creds),
         "AWS_CONFIG_FILE": str(conf), "AWS_PROFILE": "work"}
    found = _config.resolve({}, e)
    assert (found.key, found.region) == ("AKIDWORK", "eu-central-1")
    assert _config.resolve({}, {"HOME": str(tmp_path)}, str(creds), str(conf)).key is None


def test_a_named_profile_that_does_not_exist_is_an_error(home: Path) -> None:
    with pytest.raises(ValidationError, match='profile "nope" could not be found'):
        _config.resolve({}, env(home, AWS_PROFILE="nope"))
    with pytest.raises(ValidationError, match='profile "nope"'):
        _config.resolve({"profile": "nope"}, env(home))


def test_nothing_found_leaves_options_alone(tmp_path: Path) -> None:
    found = _config.resolve({}, {"HOME": str(tmp_path)})
    assert found.key is None and found.profile is None
    assert _config.client_options({"bucket": "b"}, {"HOME": str(tmp_path)}) == {"bucket": "b"}


def test_a_broken_file_is_reported_without_its_content(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("aws_secret_access_key = leaked\n[x\n")
    with pytest.raises(ValidationError) as info:
        _config.resolve({}, {"HOME": str(tmp_path)})
    assert "leaked" not in str(info.value)


def test_secrets_stay_out_of_the_repr(home: Path) -> None:
    found = _config.resolve({}, env(home, AWS_PROFILE="dev"))
    assert "dev-secret" not in repr(found) and "dev-token" not in repr(found)
    assert "AKIDDEV" in repr(found)


@pytest.mark.parametrize("url,expected", [
    ("http://127.0.0.1:5000", {"endpoint": "127.0.0.1", "secure": False, "port": 5000,
                               "style": "path"}),
    ("http://localhost:9000/", {"endpoint": "localhost", "secure": False, "port": 9000,
                                "style": "path"}),
    ("https://[::1]:9000", {"endpoint": "[::1]", "secure": True, "port": 9000, "style": "path"}),
    ("https://minio.example.com:9000", {"endpoint": "minio.example.com", "secure": True,
                                        "port": 9000}),
    ("https://x.r2.cloudflarestorage.com", {"endpoint": "x.r2.cloudflarestorage.com",
                                            "secure": True}),
    ("storage.example.com", {"endpoint": "storage.example.com", "secure": True}),
])
def test_endpoint_url_to_knox_options(url: str, expected: Dict[str, object]) -> None:
    assert _config.endpoint_options(url) == expected


def test_addressing_style_from_the_profile() -> None:
    assert _config.endpoint_options("https://s3.example.com", "path")["style"] == "path"
    assert _config.endpoint_options("http://localhost:1", "virtual")["style"] == "virtualHosted"


@pytest.mark.parametrize("url", ["ftp://host", "https://host/prefix", "http://host:port",
                                 "https://"])
def test_bad_endpoint_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        _config.endpoint_options(url)


def test_client_options_fills_only_what_is_missing(home: Path) -> None:
    e = env(home, AWS_PROFILE="dev")
    opts = _config.client_options({"bucket": "b"}, e)
    assert opts == {"bucket": "b", "key": "AKIDDEV", "secret": "dev-secret",
                    "token": "dev-token", "region": "us-west-2", "endpoint": "127.0.0.1",
                    "secure": False, "port": 9000, "style": "path"}
    opts = _config.client_options({"bucket": "b", "endpoint": "other", "style": "virtualHosted"},
                                  e)
    assert (opts["endpoint"], opts["style"], "port" in opts) == ("other", "virtualHosted", False)


def test_create_client_without_a_key_uses_the_environment(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_PROFILE", "dev")
    client = knoxpy.createClient(bucket="learnboost")
    assert (client.key, client.secret, client.token) == ("AKIDDEV", "dev-secret", "dev-token")
    assert (client.host, client.port, client.secure, client.style) == (
        "127.0.0.1", 9000, False, "path")
    assert client.urlBase == "127.0.0.1:9000/learnboost"
    assert "dev-secret" not in repr(client) and "dev-secret" not in repr(client.options)
    # explicit keys are knox's: the profile's settings do not apply to them
    explicit = knoxpy.createClient(key="k", secret="s", bucket="learnboost")
    assert explicit.host == "learnboost.s3.amazonaws.com"
    # with no credentials anywhere, knox's own message
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("HOME", str(home / "empty"))
    with pytest.raises(ValidationError, match='^aws "key" required$'):
        knoxpy.createClient(bucket="learnboost")


def test_create_client_with_endpoint_url_and_profile_options(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = knoxpy.createClient(bucket="learnboost", profile="cfgonly",
                                 endpoint_url="http://localhost:4566")
    assert (client.key, client.endpoint, client.port, client.style) == (
        "AKIDCFG", "localhost", 4566, "path")


def test_the_profile_ca_bundle_comes_after_aws_ca_bundle_and_before_ssl_cert_file(
        tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile tls]\nca_bundle = ~/corp-ca.pem\n")
    found = _config.resolve({}, env(tmp_path, AWS_PROFILE="tls"))
    config = tmp_path / ".aws" / "config"
    assert found.ca_bundle == "~/corp-ca.pem"
    assert found.ca_bundle is not None
    assert found.ca_bundle.where == f"ca_bundle of profile tls in {config}"
    # botocore's order: the environment variable wins over the config file
    assert _config.resolve({}, env(tmp_path, AWS_PROFILE="tls",
                                   AWS_CA_BUNDLE="/env.pem")).ca_bundle is None
    opts = _config.client_options({"key": "k", "secret": "s", "profile": "tls"}, env(tmp_path))
    assert opts["ca"] == "~/corp-ca.pem"
    # an explicit ca option wins, and a profile without ca_bundle adds none
    opts = _config.client_options({"key": "k", "secret": "s", "profile": "tls", "ca": "/x.pem"},
                                  env(tmp_path))
    assert opts["ca"] == "/x.pem"
    assert "ca" not in _config.client_options({}, env(tmp_path, **ENV_KEYS))
