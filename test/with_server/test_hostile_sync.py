"""``sync --delete`` and downloads against the user's own files: what a walk skips, what an
empty source means, what an unreadable directory means. Against moto on loopback.

The attacks: a file named like knoxpy's partial downloads (``*.knoxpy-part``) got its key
deleted by ``sync DIR s3://... --delete``; a download to ``x`` truncated and then removed
the user's ``x.knoxpy-part``; ``sync s3://b/empty/ DIR --delete`` emptied DIR without a
word; an unreadable directory was walked as an empty one, and its keys deleted.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, List

import pytest
from conftest import KEY, SECRET
from test_cli import Run

from knoxpy import cli

OWN_SHAPE = ".a.txt." + "0" * 32 + ".knoxpy-part"  # what knoxpy's own partials look like


@pytest.fixture
def run(moto_port: int, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(moto_port, tmp_path_factory.mktemp("home"))


@pytest.fixture
def base(bucket: str) -> str:
    return f"s3://{bucket}/sync-{uuid.uuid4().hex[:8]}/"


def keys(run: Run, base: str, cwd: Path) -> List[str]:
    listing = run("ls", "--recursive", base, cwd=cwd).stdout.splitlines()
    prefix = base.split("/", 3)[3]
    return sorted(line.split(None, 3)[3][len(prefix):] for line in listing)


def test_sync_up_delete_keeps_keys_whose_files_exist_whatever_their_names(
        run: Run, base: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    names = ["a.txt", "notes.knoxpy-part", OWN_SHAPE]
    for name in names:
        (site / name).write_text(name)
        run("put", str(site / name), base + name, cwd=tmp_path)
    assert keys(run, base, tmp_path) == sorted(names)
    out = run("sync", "--delete", "site", base, cwd=tmp_path).stdout
    assert "delete:" not in out
    assert keys(run, base, tmp_path) == sorted(names)


def test_sync_up_uploads_a_users_file_named_knoxpy_part(run: Run, base: str,
                                                         tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.knoxpy-part").write_text("mine")
    run("sync", "site", base, cwd=tmp_path)
    assert keys(run, base, tmp_path) == ["notes.knoxpy-part"]


def test_download_leaves_a_users_file_named_like_its_partial(client: Any,
                                                              tmp_path: Path) -> None:
    key = f"/dl-{uuid.uuid4().hex[:8]}"
    client.putBuffer(b"the object", key).wait()
    mine = tmp_path / "a.txt.knoxpy-part"
    mine.write_text("the user's own file")
    client.download(key, str(tmp_path / "a.txt")).wait()
    assert (tmp_path / "a.txt").read_bytes() == b"the object"
    assert mine.read_text() == "the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "a.txt.knoxpy-part"]


def test_a_failed_download_leaves_a_users_file_named_like_its_partial(
        client: Any, tmp_path: Path) -> None:
    mine = tmp_path / "a.txt.knoxpy-part"
    mine.write_text("the user's own file")
    with pytest.raises(Exception, match="NoSuchKey|404"):
        client.download(f"/missing-{uuid.uuid4().hex}", str(tmp_path / "a.txt")).wait()
    assert mine.read_text() == "the user's own file"


@pytest.mark.parametrize("dryrun", [False, True])
def test_sync_down_delete_from_an_empty_prefix_is_refused(run: Run, base: str, tmp_path: Path,
                                                          dryrun: bool) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "a.txt").write_text("a")
    (mirror / "sub" / "b.txt").write_text("b")
    flags = ["--dryrun"] if dryrun else []
    done = run("sync", "--delete", *flags, base, "mirror", cwd=tmp_path, code=1)
    assert done.stdout == ""
    assert done.stderr == (f"knoxpy: error: sync --delete: the source {base} lists nothing, "
                           f"so all 2 files in 'mirror' would be deleted; refusing "
                           f"(add --force to do it)\n")
    assert (mirror / "a.txt").exists() and (mirror / "sub" / "b.txt").exists()
    out = run("sync", "--delete", "--force", *flags, base, "mirror", cwd=tmp_path).stdout
    assert len(out.splitlines()) == 2
    assert (mirror / "a.txt").exists() is dryrun


@pytest.mark.parametrize("dryrun", [False, True])
def test_sync_up_delete_from_an_empty_directory_is_refused(run: Run, base: str,
                                                           tmp_path: Path, dryrun: bool) -> None:
    (tmp_path / "a.txt").write_text("a")
    run("put", "a.txt", base, cwd=tmp_path)
    (tmp_path / "empty").mkdir()
    flags = ["--dryrun"] if dryrun else []
    done = run("sync", "--delete", *flags, "empty", base, cwd=tmp_path, code=1)
    assert "the source 'empty' lists nothing, so all 1 files in" in done.stderr
    assert "--force" in done.stderr and done.stdout == ""
    assert keys(run, base, tmp_path) == ["a.txt"]
    out = run("sync", "--delete", "--force", *flags, "empty", base, cwd=tmp_path).stdout
    assert out.splitlines() == [f"{'(dryrun) ' if dryrun else ''}delete: {base}a.txt"]
    assert keys(run, base, tmp_path) == ([] if not dryrun else ["a.txt"])


def test_an_unreadable_directory_is_an_error_not_an_empty_one(
        run: Run, base: str, tmp_path: Path, moto_port: int, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    (site / "locked").mkdir(parents=True)
    (site / "a.txt").write_text("a")
    (site / "locked" / "b.txt").write_text("b")
    run("sync", "site", base, cwd=tmp_path)
    assert keys(run, base, tmp_path) == ["a.txt", "locked/b.txt"]
    # The tests run as root, whom chmod does not stop: the directory's listing fails as
    # an unreadable one's does, with EACCES.
    scandir = os.scandir

    def refuse(path: Any = ".") -> Any:
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setattr(os, "scandir", refuse)
    status = cli.main(["--endpoint-url", f"http://127.0.0.1:{moto_port}", "sync", "--delete",
                       str(site), base])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert status == 1
    assert err == (f"knoxpy: error: cannot read the directory {site / 'locked'}: "
                   f"Permission denied\n")
    assert keys(run, base, tmp_path) == ["a.txt", "locked/b.txt"]
