"""The public surface: knox's names, snake_case aliases, a sorted __all__, typing marker."""
from __future__ import annotations

from pathlib import Path

import pytest

import knoxpy

KNOX_METHODS = ["request", "put", "putFile", "putStream", "putBuffer", "get", "getFile", "head",
                "headFile", "del", "deleteFile", "copy", "copyFile", "copyTo", "copyFileTo",
                "deleteMultiple", "list", "signedUrl", "http", "https", "url"]
ALIASES = {"putFile": "put_file", "putStream": "put_stream", "putBuffer": "put_buffer",
           "getFile": "get_file", "headFile": "head_file", "del": "del_",
           "deleteFile": "delete_file", "copyFile": "copy_file", "copyTo": "copy_to",
           "copyFileTo": "copy_file_to", "deleteMultiple": "delete_multiple",
           "signedUrl": "signed_url", "listAll": "list_all", "deleteAll": "delete_all",
           "copyAll": "copy_all"}


def test_all_is_sorted_and_complete() -> None:
    assert knoxpy.__all__ == sorted(knoxpy.__all__)
    for name in knoxpy.__all__:
        assert hasattr(knoxpy, name), name


@pytest.mark.parametrize("name", KNOX_METHODS)
def test_every_knox_method_exists(name: str) -> None:
    client = knoxpy.createClient(key="k", secret="s", bucket="bucket")
    assert callable(getattr(client, name))


@pytest.mark.parametrize("camel,snake", sorted(ALIASES.items()))
def test_snake_case_aliases_are_the_same_methods(camel: str, snake: str) -> None:
    assert getattr(knoxpy.Client, camel) is getattr(knoxpy.Client, snake)


def test_knox_auth_and_utils_names() -> None:
    for name in ["stringToSign", "sign", "authorization", "hmacSha1", "signQuery",
                 "queryStringToSign", "canonicalizeHeaders", "canonicalizeResource",
                 "sign_v4", "presign_v4"]:
        assert callable(getattr(knoxpy.auth, name)), name
    assert knoxpy.utils.merge({}, {"a": 1}) == {"a": 1}


def test_cancelled_is_a_public_knox_error() -> None:
    assert "Cancelled" in knoxpy.__all__
    assert issubclass(knoxpy.Cancelled, knoxpy.KnoxError)
    assert str(knoxpy.Cancelled()) == "cancelled (interrupted)"


def test_package_is_typed() -> None:
    assert (Path(knoxpy.__file__).parent / "py.typed").exists()


def test_secret_and_token_stay_out_of_reprs() -> None:
    client = knoxpy.createClient(key="AKID", secret="TOPSECRET", bucket="bucket", token="TOKSECRET")
    for text in (repr(client), str(client), repr(client.options), str(client.options),
                 repr(client.get("/x")), repr(client.put("/y", {"Content-Length": 1}))):
        assert "TOPSECRET" not in text and "TOKSECRET" not in text
