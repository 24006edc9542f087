"""pandas, pyarrow and Dask through ``knox://``: every ```python block of docs/ecosystem.md,
run in order against moto, then checked.

The blocks are read from the page when the tests are collected, so editing an example
re-tests it. They share one namespace, top to bottom, as a reader meets them; the page's
placeholders (``http://127.0.0.1:9000``, ``<api-key-here>``, ``<secret-here>``,
``my-bucket``) become moto's endpoint, the test credentials and a fresh bucket (and the
LocalCluster's dashboard a free port). A block
after ``<!-- ecosystem-test: skip (reason) -->`` is not run; one after
``<!-- ecosystem-test: needs zarr -->`` runs when zarr is installed. The Dask block
starts the module's one ``LocalCluster`` of two worker processes, with no ``AWS_*``
variable in the environment: the workers get the endpoint and credentials only through
``storage_options``.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import uuid
from typing import Any, Dict, List, NamedTuple, Optional

import pytest
from conftest import KEY, ROOT, SECRET, create_bucket

import knoxpy.fs  # noqa: F401 - registers knox where this checkout is not the installed knoxpy

PAGE = ROOT / "docs" / "ecosystem.md"
MARKER = re.compile(r"<!--\s*ecosystem-test:\s*(?P<what>skip|needs (?P<needs>\w+))"
                    r"\s*(?:\((?P<reason>.*?)\))?\s*-->")


class Block(NamedTuple):
    line: int
    code: str
    skip: Optional[str]
    needs: Optional[str]


def _blocks() -> List[Block]:
    found, marker = [], None
    lines = PAGE.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = MARKER.search(lines[i])
        if m:
            marker = m
        elif lines[i].strip() == "```python":
            end = lines.index("```", i + 1)
            found.append(Block(i + 1, "\n".join(lines[i + 1:end]) + "\n",
                               (marker.group("reason") or "marked") if marker and
                               marker.group("what") == "skip" else None,
                               marker.group("needs") if marker else None))
            marker, i = None, end
        elif lines[i].strip():
            marker = None
        i += 1
    return found


BLOCKS = _blocks()


@pytest.fixture(scope="module")
def page_bucket(moto_port: int) -> str:
    name = "knoxpy-eco-" + uuid.uuid4().hex[:8]
    create_bucket(moto_port, name)
    return name


@pytest.fixture(scope="module")
def namespace() -> Dict[str, Any]:
    return {"__name__": "docs_ecosystem"}


def _run(block: Block, ns: Dict[str, Any], port: int, bucket: str) -> str:
    code = (block.code.replace("http://127.0.0.1:9000", f"http://127.0.0.1:{port}")
            .replace("<api-key-here>", KEY).replace("<secret-here>", SECRET)
            .replace("my-bucket", bucket)
            # the dashboard on a free port: 8787 may be taken on a shared machine, and a
            # failed bind leaks a socket inside distributed (a ResourceWarning: an error here)
            .replace("LocalCluster(", "LocalCluster(dashboard_address=':0', "))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{PAGE}:{block.line}", "exec"), ns)
    return out.getvalue()


def test_the_page_has_the_examples() -> None:
    run = [b.code for b in BLOCKS if b.skip is None]
    for library in ("import fsspec", "import pandas", "import pyarrow", "import dask",
                    "import zarr"):
        assert any(library in code for code in run), library


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b.line}" for b in BLOCKS])
def test_ecosystem_example(block: Block, namespace: Dict[str, Any], moto_port: int,
                           page_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.skip is not None:
        pytest.skip(block.skip)
    if block.needs is not None:
        pytest.importorskip(block.needs)
    for name in list(os.environ):
        if name.startswith("AWS_"):  # the workers must get everything from storage_options
            monkeypatch.delenv(name)
    out = _run(block, namespace, moto_port, page_bucket)
    CHECKS.get(next((k for k in CHECKS if k in block.code), ""), lambda *a: None)(
        namespace, out, page_bucket)


# -- what each block must have done --------------------------------------------------------
def check_start(ns: Dict[str, Any], out: str, bucket: str) -> None:
    lines = out.splitlines()
    assert lines[0] == "b'hello'"
    assert lines[2] == str([f"{bucket}/hello.txt", f"{bucket}/logs/today.log"])
    assert "X-Amz-Signature=" in lines[3]


def check_pandas(ns: Dict[str, Any], out: str, bucket: str) -> None:
    import pandas as pd

    pd.testing.assert_frame_equal(ns["from_parquet"], ns["weather"])
    pd.testing.assert_frame_equal(ns["from_csv"], ns["weather"])
    assert ns["fs"].cat_file(f"{bucket}/weather.parquet", 0, 4) == b"PAR1"


def check_pyarrow(ns: Dict[str, Any], out: str, bucket: str) -> None:
    assert out.strip() == "3"
    assert sorted(ns["fs"].ls(f"{bucket}/weather-by-city", detail=False)) == [
        f"{bucket}/weather-by-city/city={c}" for c in ("Lisbon", "Oslo", "Perth", "Quito")]


def check_dask(ns: Dict[str, Any], out: str, bucket: str) -> None:
    result, weather = ns["result"], ns["weather"]
    assert sorted(result["city"]) == sorted(weather["city"])
    assert (result["temp_f"] == result["temp"] * 9 / 5 + 32).all()
    assert ns["fs"].find(f"{bucket}/weather-csv") == [
        f"{bucket}/weather-csv/part-{i}.csv" for i in (0, 1)]  # one per worker task


def check_zarr(ns: Dict[str, Any], out: str, bucket: str) -> None:
    assert out.strip() == "[12.5 12.5 12.5]"


def check_ranges(ns: Dict[str, Any], out: str, bucket: str) -> None:
    assert out.strip() == str([b"\x00\x01\x02\x03", b"\x00\x01\x02\x03", b"\xfe\xff"])
    assert (ns["wide"].read_part_size, ns["wide"].read_concurrency) == (16 * 2**20, 8)


CHECKS = {"fs.pipe_file('my-bucket/hello.txt'": check_start,
          "wide.cat_ranges(": check_ranges,
          "weather.to_parquet(": check_pandas,
          "ds.write_dataset(": check_pyarrow,
          "LocalCluster(": check_dask,
          "zarr.create_array(": check_zarr}
