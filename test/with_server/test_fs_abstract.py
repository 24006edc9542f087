"""fsspec's own abstract test suite (``fsspec.tests.abstract``) against knoxpy.fs on moto.

Wired as s3fs wires it (s3fs/tests/derived): the suite's classes with our fixtures; nothing
of the suite is copied or left out.
"""
from __future__ import annotations

import uuid
from typing import Any

import fsspec.tests.abstract as abstract
import pytest
from conftest import create_bucket, moto_options

from knoxpy.fs import KnoxFileSystem


@pytest.fixture(scope="module")
def _fs_bucket(moto_port: int) -> str:
    name = "knoxpy-fs-" + uuid.uuid4().hex[:8]
    create_bucket(moto_port, name)
    return name


@pytest.fixture(scope="module")
def _knox_fs(moto_port: int, _fs_bucket: str) -> Any:
    options = moto_options(moto_port, _fs_bucket)
    del options["bucket"]
    return KnoxFileSystem(**options)


class KnoxFixtures(abstract.AbstractFixtures):
    @pytest.fixture
    def fs(self, _knox_fs: Any) -> Any:
        return _knox_fs

    @pytest.fixture
    def fs_path(self, _fs_bucket: str) -> str:
        return _fs_bucket

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False  # S3 has keys; a "directory" is a prefix that some key has


class TestKnoxCopy(abstract.AbstractCopyTests, KnoxFixtures):
    pass


class TestKnoxGet(abstract.AbstractGetTests, KnoxFixtures):
    pass


class TestKnoxPut(abstract.AbstractPutTests, KnoxFixtures):
    pass


class TestKnoxPipe(abstract.AbstractPipeTests, KnoxFixtures):
    pass


class TestKnoxOpen(abstract.AbstractOpenTests, KnoxFixtures):
    pass
