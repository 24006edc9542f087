"""The command line, run as users run it: ``python -m knoxpy ...`` against moto on loopback.

Credentials come from the environment (no ~/.aws: HOME is an empty temp directory),
the endpoint from ``--endpoint-url``. Help texts are checked in-process (cheaper).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import urllib3
from conftest import KEY, SECRET, create_bucket

from knoxpy import cli

TOKEN_FREE_ENV = {k: v for k, v in os.environ.items()
                  if not k.startswith("AWS_") and k != "DEBUG"}


class Run:
    def __init__(self, port: int, home: Path) -> None:
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = dict(TOKEN_FREE_ENV, HOME=str(home), AWS_ACCESS_KEY_ID=KEY,
                        AWS_SECRET_ACCESS_KEY=SECRET)

    def __call__(self, *args: str, cwd: Path, env: Dict[str, str] | None = None,
                 endpoint: bool = True, code: int = 0) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "knoxpy"]
        if endpoint:
            argv += ["--endpoint-url", self.endpoint]
        done = subprocess.run(argv + list(args), cwd=cwd, env=dict(self.env, **(env or {})),
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
        for stream in (done.stdout, done.stderr):  # not a terminal: no bars, no escapes
            assert "\r" not in stream and "\x1b" not in stream
        return done


@pytest.fixture(scope="module")
def cli_bucket(moto_port: int) -> str:
    name = "knoxpy-cli-" + uuid.uuid4().hex[:8]
    create_bucket(moto_port, name)
    return name


@pytest.fixture
def run(moto_port: int, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(moto_port, tmp_path_factory.mktemp("home"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "css").mkdir(parents=True)
    (root / "index.html").write_text("<h1>hi</h1>")
    (root / "css" / "a b.css").write_text("body{}")
    (root / "big.bin").write_bytes(os.urandom(300_000))
    return root


@pytest.fixture
def prefix() -> Iterator[str]:
    yield uuid.uuid4().hex[:8]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_put_ls_cat_stat_get_rm_one_file(run: Run, cli_bucket: str, prefix: str,
                                         tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello, world\n")
    base = f"s3://{cli_bucket}/{prefix}/"
    out = run("put", "hello.txt", base, cwd=tmp_path).stdout
    assert out == f"upload: hello.txt to {base}hello.txt\n"
    listing = run("ls", base, cwd=tmp_path).stdout
    assert listing.rstrip().endswith("        13 hello.txt")
    assert "13 Bytes hello.txt" in run("ls", "-h", base, cwd=tmp_path).stdout
    assert run("cat", base + "hello.txt", cwd=tmp_path).stdout == "hello, world\n"
    stat = run("stat", base + "hello.txt", cwd=tmp_path).stdout
    assert "Size:          13 (13 Bytes)" in stat
    assert f'ETag:          "{md5(tmp_path / "hello.txt")}"' in stat
    assert "text/plain" in stat
    (tmp_path / "dl").mkdir()
    run("get", base + "hello.txt", "dl", cwd=tmp_path)
    assert (tmp_path / "dl" / "hello.txt").read_text() == "hello, world\n"
    assert not [p for p in (tmp_path / "dl").iterdir() if p.name != "hello.txt"]
    assert run("rm", base + "hello.txt", cwd=tmp_path).stdout == f"delete: {base}hello.txt\n"
    assert run("ls", base, cwd=tmp_path).stdout == ""


def test_recursive_put_ls_get_rm(run: Run, cli_bucket: str, prefix: str, tree: Path,
                                 tmp_path: Path) -> None:
    base = f"s3://{cli_bucket}/{prefix}"
    out = run("put", "--recursive", "site", base, cwd=tmp_path).stdout
    assert sorted(out.splitlines()) == sorted([
        f"upload: site/big.bin to {base}/big.bin",
        f"upload: site/css/a b.css to {base}/css/a b.css",
        f"upload: site/index.html to {base}/index.html",
    ])
    top = run("ls", base + "/", cwd=tmp_path).stdout.splitlines()
    assert "PRE css/" in top[1] and top[0].endswith("300000 big.bin")
    every = run("ls", "--recursive", "--summarize", base, cwd=tmp_path).stdout
    assert f"{prefix}/css/a b.css" in every and "Total Objects: 3" in every
    run("get", "-r", base, "copy", cwd=tmp_path)
    for rel in ("index.html", "css/a b.css", "big.bin"):
        assert md5(tmp_path / "copy" / rel) == md5(tree / rel)
    assert len(run("rm", "--recursive", "--dryrun", base, cwd=tmp_path).stdout.splitlines()) == 3
    assert len(run("rm", "-r", base, cwd=tmp_path).stdout.splitlines()) == 3
    assert run("ls", "-r", base + "/", cwd=tmp_path).stdout == ""


def test_cp_and_mv_between_keys_and_to_stdout(run: Run, cli_bucket: str, prefix: str,
                                              tree: Path, tmp_path: Path) -> None:
    base = f"s3://{cli_bucket}/{prefix}"
    run("cp", "-r", "site", base + "/src/", cwd=tmp_path)
    out = run("cp", "-r", base + "/src", base + "/dst", cwd=tmp_path).stdout
    assert len(out.splitlines()) == 3 and out.startswith("copy: s3://")
    run("mv", base + "/dst/index.html", base + "/moved.html", cwd=tmp_path)
    assert run("cp", base + "/moved.html", "-", cwd=tmp_path).stdout == "<h1>hi</h1>"
    keys = run("ls", "-r", base + "/", cwd=tmp_path).stdout
    assert "dst/index.html" not in keys and "moved.html" in keys and "src/index.html" in keys
    run("mv", "site/index.html", base + "/up.html", cwd=tmp_path)
    assert not (tree / "index.html").exists()


def test_sync_both_ways_with_delete_and_dryrun(run: Run, cli_bucket: str, prefix: str,
                                               tree: Path, tmp_path: Path) -> None:
    base = f"s3://{cli_bucket}/{prefix}/"
    assert len(run("sync", "site", base, cwd=tmp_path).stdout.splitlines()) == 3
    assert run("sync", "site", base, cwd=tmp_path).stdout == ""  # nothing changed
    (tree / "index.html").write_text("<h1>HI</h1>")  # same size, other content: MD5 differs
    (tree / "big.bin").unlink()
    dry = run("sync", "--delete", "--dryrun", "site", base, cwd=tmp_path).stdout
    assert dry.splitlines() == [f"(dryrun) upload: site/index.html to {base}index.html",
                                f"(dryrun) delete: {base}big.bin"]
    out = run("sync", "--delete", "site", base, cwd=tmp_path).stdout
    assert out.splitlines() == [f"upload: site/index.html to {base}index.html",
                                f"delete: {base}big.bin"]
    # and down: into a directory holding a stale file and one S3 no longer has
    local = tmp_path / "mirror"
    local.mkdir()
    (local / "index.html").write_text("<h1>ho</h1>")
    (local / "gone.txt").write_text("x")
    out = run("sync", "--delete", base, "mirror", cwd=tmp_path).stdout
    assert sorted(out.splitlines()) == sorted([
        f"download: {base}index.html to mirror/index.html",
        f"download: {base}css/a b.css to mirror/css/a b.css",
        "delete: mirror/gone.txt",
    ])
    assert (local / "index.html").read_text() == "<h1>HI</h1>"
    assert run("sync", "--delete", base, "mirror", cwd=tmp_path).stdout == ""


def test_presign_gives_a_url_that_works(run: Run, cli_bucket: str, prefix: str,
                                        tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("presigned!")
    key = f"s3://{cli_bucket}/{prefix}/p.txt"
    run("put", "p.txt", key, cwd=tmp_path)
    url = run("presign", key, "--expires", "120", cwd=tmp_path).stdout.strip()
    assert "X-Amz-Expires=120" in url
    with urllib3.PoolManager() as pool:
        assert pool.request("GET", url).data == b"presigned!"
        put_url = run("presign", "--method", "put", f"s3://{cli_bucket}/{prefix}/q.txt",
                      cwd=tmp_path).stdout.strip()
        assert pool.request("PUT", put_url, body=b"via url").status == 200
    assert run("cat", f"s3://{cli_bucket}/{prefix}/q.txt", cwd=tmp_path).stdout == "via url"
    err = run("presign", key, "--expires", "9999999", cwd=tmp_path, code=1).stderr
    assert err.startswith("knoxpy: error: expires must be") and len(err.splitlines()) == 1


def test_exit_codes_and_one_line_errors(run: Run, cli_bucket: str, tmp_path: Path) -> None:
    err = run("get", f"s3://{cli_bucket}/no/such/key", "x", cwd=tmp_path, code=1).stderr
    assert err.splitlines() == [
        f"knoxpy: error: s3://{cli_bucket}/no/such/key: NoSuchKey (404): "
        "The specified key does not exist. [key 'no/such/key']"]
    assert not (tmp_path / "x").exists()
    assert "NotFound (404)" in run("stat", f"s3://{cli_bucket}/nope", cwd=tmp_path,
                                   code=1).stderr
    assert "NoSuchBucket" in run("ls", "s3://knoxpy-no-such-bucket/", cwd=tmp_path,
                                 code=1).stderr
    assert "Traceback" in run("--debug", "cat", f"s3://{cli_bucket}/nope", cwd=tmp_path,
                              code=1).stderr
    assert "usage:" in run("frobnicate", cwd=tmp_path, code=2).stderr
    assert "usage:" in run("cp", "only-one-arg", cwd=tmp_path, code=2).stderr
    no_creds = run("ls", f"s3://{cli_bucket}/", cwd=tmp_path, code=1,
                   env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}).stderr
    assert no_creds.startswith("knoxpy: error: no credentials found")


def test_a_key_escaping_the_directory_is_refused(run: Run, moto_port: int, cli_bucket: str,
                                                 prefix: str, tmp_path: Path) -> None:
    with urllib3.PoolManager() as pool:  # %2E%2E: a key with '..' in it, as S3 allows
        for key, body in ((f"{prefix}/%2E%2E/evil", b"evil"), (f"{prefix}/ok.txt", b"ok")):
            r = pool.request("PUT", f"http://127.0.0.1:{moto_port}/{cli_bucket}/{key}", body=body)
            assert r.status == 200
    (tmp_path / "out").mkdir()
    done = run("get", "-r", f"s3://{cli_bucket}/{prefix}/", "out", cwd=tmp_path, code=1)
    assert "refusing key '../evil': it would be written outside 'out'" in done.stderr
    assert (tmp_path / "out" / "ok.txt").read_bytes() == b"ok"
    assert not (tmp_path / "evil").exists()


def test_explain_and_debug_knox_show_the_signing_without_secrets(
        run: Run, cli_bucket: str, tmp_path: Path) -> None:
    for args, env in ((["--explain", "stat"], None), (["stat"], {"DEBUG": "knox"})):
        err = run(*args, f"s3://{cli_bucket}/nothing-here", cwd=tmp_path, env=env,
                  code=1).stderr
        assert f"HEAD /{cli_bucket}/nothing-here HTTP/1.1" in err
        assert "The canonical request" in err and "kSigning" in err
        assert "HTTP/1.1 404 " in err
        assert SECRET not in err and SECRET.replace("/", "%2F") not in err


def test_credentials_from_a_profile_and_endpoint_from_the_environment(
        run: Run, cli_bucket: str, tmp_path: Path) -> None:
    home = Path(run.env["HOME"])
    (home / ".aws").mkdir(exist_ok=True)
    (home / ".aws" / "credentials").write_text(
        f"[moto]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_ENDPOINT_URL": run.endpoint}
    run("--profile", "moto", "ls", f"s3://{cli_bucket}/", cwd=tmp_path, env=env, endpoint=False)
    err = run("ls", f"s3://{cli_bucket}/", "--profile", "nope", cwd=tmp_path, env=env,
              endpoint=False, code=1).stderr
    assert 'profile "nope" could not be found' in err


@pytest.mark.parametrize("command", [None, *cli._COMMANDS])
def test_help_answers_every_question(command: str | None,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv: List[str] = ([command] if command else []) + ["--help"]
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--endpoint-url" in text and "AWS_ACCESS_KEY_ID" in text
    assert "exit status" in text


def test_progress_bars_on_a_terminal(run: Run, cli_bucket: str, prefix: str,
                                     tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    import fcntl
    import pty
    import struct
    import termios

    (tmp_path / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    primary, secondary = pty.openpty()
    # a terminal of 100 columns (a fresh pty has 0, and tqdm draws nothing in 0 columns)
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    argv = [sys.executable, "-m", "knoxpy", "--endpoint-url", run.endpoint, "put", "big.bin",
            f"s3://{cli_bucket}/{prefix}/big.bin"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=run.env, stdin=subprocess.DEVNULL,
                            stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    assert proc.wait(60) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "\r" in text and "big.bin" in text and "B/s" in text  # a bar with its speed
    assert f"upload: big.bin to s3://{cli_bucket}/{prefix}/big.bin" in text


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(run: Run, cli_bucket: str,
                                                             prefix: str, tmp_path: Path) -> None:
    """`put` uses client.upload: over the part size (8 MiB) a multipart upload, so files
    beyond a single PUT's 5 GB go too; `get` checks the length and renames into place."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))
    base = f"s3://{cli_bucket}/{prefix}/"
    run("put", "big.bin", base, cwd=tmp_path)
    stat = run("stat", base + "big.bin", cwd=tmp_path).stdout
    assert re.search(r'ETag: +"[0-9a-f]{32}-3"', stat), stat  # three parts
    (tmp_path / "dl").mkdir()
    run("get", base + "big.bin", "dl", cwd=tmp_path)
    assert md5(tmp_path / "dl" / "big.bin") == md5(big)
    run("rm", base + "big.bin", cwd=tmp_path)
