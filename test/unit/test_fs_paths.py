"""knoxpy.fs's own path shortcut: the parent of a listed name is fsspec's ``_parent`` of it."""
from __future__ import annotations

import pytest

from knoxpy.fs import KnoxFileSystem, S3KnoxFileSystem


@pytest.mark.parametrize("name", ["b/k", "b/a/k", "b", "b/a//k", "b/a/", "b//", "knox://b/a/k",
                                  "s3://b/a", "b/a:b/c", "b/\u00e9/k", "b/ a /k "])
@pytest.mark.parametrize("cls", [KnoxFileSystem, S3KnoxFileSystem])
def test_parent_of_a_name_is_fsspecs_parent(cls: type, name: str) -> None:
    fs = cls(key="AKID", secret="s3cr3t", skip_instance_cache=True)
    assert fs._parent_of(name) == fs._parent(name)
