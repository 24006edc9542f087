"""knoxpy._validate: header injection, control characters in keys, local path escapes."""
from __future__ import annotations

import os

import pytest

from knoxpy._validate import check_headers, check_key, local_path_for_key
from knoxpy.errors import ValidationError


@pytest.mark.parametrize("value", ["a\r\nx-amz-acl: public-read", "a\nb", "a\rb", "nul\x00", "\x7f"])
def test_header_values_with_control_characters_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="x-amz-meta-note.*control character"):
        check_headers({"x-amz-meta-note": value})


@pytest.mark.parametrize("name", ["bad name", "x-amz-meta-a\r\nb", "", "a:b", "é"])
def test_header_names_must_be_tokens(name: str) -> None:
    with pytest.raises(ValidationError, match="invalid header name"):
        check_headers({name: "v"})


def test_ordinary_headers_pass() -> None:
    check_headers({"Content-Length": 12, "Content-Type": "text/plain; charset=UTF-8",
                   "x-amz-meta-tabbed": "a\tb",
                   "x-amz-meta-encoded": "=?UTF-8?B?bmHDr3ZlIOKYgw==?=", "n": "na%C3%AFve"})


@pytest.mark.parametrize("value", ["naïve", "snow ☃", "\u0100"])
def test_header_values_outside_ascii_are_refused_with_a_way_out(value: str) -> None:
    with pytest.raises(ValidationError, match="x-amz-meta-note.*non-ASCII.*percent-encode.*RFC 2047"):
        check_headers({"x-amz-meta-note": value})


@pytest.mark.parametrize("key", ["a\nb", "/evil\r\nHost: x", "nul\x00byte", "bell\x07"])
def test_keys_with_control_characters_are_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="control character"):
        check_key(key)


def test_keys_with_every_special_character_pass() -> None:
    check_key("/ünï cødé/+ ? # ' ( ) ! * ~ : @ $ & = ; , //x/")


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../x", "/abs/path", "\\\\server\\share",
                                 "C:\\Windows\\x", "c:/x", "a\\..\\..\\x"])
def test_keys_that_would_escape_a_local_directory_are_refused(tmp_path, key: str) -> None:
    with pytest.raises(ValidationError, match="outside"):
        local_path_for_key(str(tmp_path), key)


def test_keys_inside_the_directory_map_to_paths_under_it(tmp_path) -> None:
    root = str(tmp_path)
    assert local_path_for_key(root, "a/b/c.txt") == os.path.join(os.path.realpath(root), "a", "b", "c.txt")
    assert local_path_for_key(root, "./x//y") == os.path.join(os.path.realpath(root), "x", "y")


def test_a_symlink_out_of_the_directory_is_refused(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(ValidationError, match="outside"):
        local_path_for_key(str(root), "link/file.txt")
