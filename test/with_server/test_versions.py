"""Object versions (issue 15 item 3), against moto with versioning on: listVersions (one page,
knox's list style), listAllVersions (every page), a version read the knox way (a
``?versionId=`` subresource in the filename), download(versionId=), deleteAll of versions."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from conftest import create_bucket, moto_options

import knoxpy

VERSIONING = (b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
              b"<Status>Enabled</Status></VersioningConfiguration>")


@pytest.fixture(params=["path", "virtualHosted"])
def vclient(request: pytest.FixtureRequest, moto_port: int) -> Iterator[Any]:
    """A client of a fresh bucket with versioning enabled."""
    name = "knoxpy-versions-" + uuid.uuid4().hex[:8]
    create_bucket(moto_port, name)
    c = knoxpy.createClient(moto_options(moto_port, name, style=request.param))
    req = c.request("PUT", "/?versioning", {"Content-Length": len(VERSIONING)})
    res = req.end(VERSIONING).wait(10)
    assert res.statusCode == 200
    res.resume()
    yield c


def _put(c: Any, key: str, body: bytes) -> str:
    res = c.putBuffer(body, key).wait(10)
    assert res.statusCode == 200
    return str(res.headers["x-amz-version-id"])


def _body(c: Any, filename: str) -> bytes:
    res = c.get(filename).end().wait(10)
    assert res.statusCode == 200, res.statusCode
    return bytes(res.read())


def test_list_versions_gives_versions_and_delete_markers_newest_first(vclient: Any) -> None:
    v1 = _put(vclient, "/v/a", b"one")
    v2 = _put(vclient, "/v/a", b"two")
    _put(vclient, "/v/b", b"bee")
    vclient.deleteFile("/v/b").wait(10).resume()  # a delete marker on top
    data = vclient.listVersions({"prefix": "v/"}).wait(10)
    got = [(e.Key, e.IsLatest, e.DeleteMarker) for e in data.Versions]
    assert got == [("v/a", True, False), ("v/a", False, False),
                   ("v/b", True, True), ("v/b", False, False)]
    assert [e.VersionId for e in data.Versions[:2]] == [v2, v1]
    assert data.Versions[0].Size == 3 and data.IsTruncated is False


def test_a_version_is_read_headed_copied_and_deleted_the_knox_way(vclient: Any) -> None:
    v1 = _put(vclient, "/k", b"first")
    v2 = _put(vclient, "/k", b"second")
    assert _body(vclient, f"/k?versionId={v1}") == b"first"
    assert _body(vclient, "/k") == b"second"
    head = vclient.headFile(f"/k?versionId={v1}").wait(10)
    assert head.headers["content-length"] == "5" and head.headers["x-amz-version-id"] == v1
    res = vclient.copyFile(f"/k?versionId={v1}", "/copied").wait(10)
    assert res.statusCode == 200
    res.resume()
    assert _body(vclient, "/copied") == b"first"
    vclient.deleteFile(f"/k?versionId={v2}").wait(10).resume()  # that version, for good
    assert _body(vclient, "/k") == b"first"


def test_list_all_versions_pages_through_every_version(vclient: Any) -> None:
    expected: List[tuple[str, str]] = []
    for name in ("p/a", "p/b", "p/c"):
        for body in (b"1", b"2"):
            expected.append((name, _put(vclient, "/" + name, body)))
    seen = [(e["Key"], e["VersionId"]) for e in vclient.listAllVersions(
        {"prefix": "p/", "max-keys": 1})]
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen)) == 6


def test_delete_all_of_a_version_listing_removes_every_version(vclient: Any) -> None:
    for body in (b"1", b"2", b"3"):
        _put(vclient, "/gone/x", body)
    vclient.deleteFile("/gone/x").wait(10).resume()
    result = vclient.deleteAll(vclient.listAllVersions({"prefix": "gone/"})).wait(30)
    assert result == {"deleted": 4, "errors": []}
    assert vclient.listVersions({"prefix": "gone/"}).wait(10).Versions == []


def test_download_of_a_version_takes_every_range_from_it(vclient: Any, tmp_path: Path) -> None:
    old = bytes(range(256)) * (24 * 1024)  # 6 MiB: two ranges of 5 MiB parts
    v1 = vclient.upload(old, "/big").wait(60)
    vclient.putBuffer(b"the latest", "/big").wait(10).resume()
    assert v1.get("VersionId")
    got: Dict[str, Any] = vclient.download("/big", str(tmp_path / "big"), partSize=5 << 20,
                                           versionId=v1["VersionId"]).wait(60)
    assert (tmp_path / "big").read_bytes() == old and got["size"] == len(old)


def test_version_options_are_checked() -> None:
    c = knoxpy.createClient(key="k", secret="s", bucket="bkt")
    with pytest.raises(knoxpy.ValidationError, match="versionId"):
        c.download("/x", "x", versionId=5).wait(10)
    with pytest.raises(knoxpy.ValidationError, match="download option"):
        c.upload(b"x", "/x", versionId="abc").wait(10)


def test_the_cli_lists_versions_and_deletes_one(vclient: Any, moto_port: int,
                                                 tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from conftest import KEY, SECRET

    if vclient.style != "path":
        pytest.skip("the CLI is tested once, in path style")
    v1 = _put(vclient, "/cli/a", b"one")
    v2 = _put(vclient, "/cli/a", b"twotwo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)

    def knoxpy_cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "knoxpy", "--endpoint-url",
                               f"http://127.0.0.1:{moto_port}", *args], env=env, text=True,
                              capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        return done.stdout

    lines = knoxpy_cli("ls", "--versions", f"s3://{vclient.bucket}/cli/").splitlines()
    assert len(lines) == 2
    assert lines[0].split()[2:] == ["6", "a", v2, "(latest)"]
    assert lines[1].split()[2:] == ["3", "a", v1]
    knoxpy_cli("rm", "--version-id", v2, f"s3://{vclient.bucket}/cli/a")
    assert _body(vclient, "/cli/a") == b"one"
