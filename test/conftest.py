"""Shared fixtures: moto's S3 server on loopback, started by the tests themselves.

No mocks: every test that talks S3 talks HTTP to a real server on 127.0.0.1.
`endpoint='localhost'` lets both URL styles work without DNS: knoxpy resolves
`localhost` and every name under it (`bucket.localhost`) to loopback (RFC 6761),
and moto takes the bucket from the Host header in virtual-hosted style.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import settings

# No hypothesis example may fail for being slow: the suite runs on loaded 2-core boxes.
settings.register_profile("knoxpy", deadline=None)
settings.load_profile("knoxpy")

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "shared" / "vectors"
AUTH_JSON = Path(__file__).resolve().parent / "auth.json"

KEY = "AKIDEXAMPLEKNOXPY"
SECRET = "knoxpy-test-secret/EXAMPLEKEY+1234567890"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# moto's server with a SigV2 fix of ours (its docstring says why)
MOTO_S3 = os.path.join(os.path.dirname(__file__), "servers", "moto_s3.py")


def _moto_log() -> Any:
    """Where moto's log goes: KNOXPY_TEST_MOTO_LOG names a file (its tracebacks explain a 500)."""
    path = os.environ.get("KNOXPY_TEST_MOTO_LOG")
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND) if path else subprocess.DEVNULL


def start_moto(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start moto's S3 server in its own process and wait until it answers."""
    port = free_port()
    proc_env = dict(os.environ)
    proc_env.update(env or {})
    log = _moto_log()
    proc = subprocess.Popen(
        [sys.executable, MOTO_S3, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=proc_env,
    )
    if log != subprocess.DEVNULL:
        os.close(log)  # the child has its own copy
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto server did not start")


def create_bucket(port: int, bucket: str) -> None:
    import urllib3

    with urllib3.PoolManager() as pool:
        r = pool.request("PUT", f"http://127.0.0.1:{port}/{bucket}")
    assert r.status == 200, r.data


@pytest.fixture(scope="session")
def moto_port() -> Iterator[int]:
    proc, port = start_moto()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def bucket(moto_port: int) -> str:
    name = "knoxpy-test-" + uuid.uuid4().hex[:8]
    create_bucket(moto_port, name)
    return name


@pytest.fixture(scope="session")
def bucket2(moto_port: int) -> str:
    name = "knoxpy-test2-" + uuid.uuid4().hex[:8]
    create_bucket(moto_port, name)
    return name


def moto_options(port: int, bucket: str, **extra: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "key": KEY,
        "secret": SECRET,
        "bucket": bucket,
        "endpoint": "localhost",
        "port": port,
    }
    opts.update(extra)
    return opts


def live_auth() -> dict[str, Any] | None:
    """test/auth.json, as in knox: when present the suite also runs against real S3."""
    if AUTH_JSON.exists():
        return dict(json.loads(AUTH_JSON.read_text()))
    return None


def _targets() -> list[str]:
    targets = ["moto-virtualHosted", "moto-path"]
    if live_auth():
        targets.append("s3-live")
    return targets


@pytest.fixture(params=_targets())
def client_options(request: pytest.FixtureRequest, moto_port: int, bucket: str) -> dict[str, Any]:
    """Options for a client against each target: moto in both URL styles, and live S3."""
    if request.param == "s3-live":
        auth = live_auth()
        assert auth is not None
        return {k: auth[k] for k in ("key", "secret", "bucket") if k in auth}
    style = request.param.split("-", 1)[1]
    return moto_options(moto_port, bucket, style=style)


@pytest.fixture
def client(client_options: dict[str, Any]) -> Any:
    import knoxpy

    return knoxpy.createClient(client_options)


# -- the project's fault server (test/servers/s3shaped.py) ---------------------------------
@pytest.fixture
def srv() -> Iterator[Any]:
    """A fresh fault server that stores bodies and records requests."""
    from servers.s3shaped import S3Server

    with S3Server(mode="store") as server:
        yield server


def fault_client(srv: Any, **extra: Any) -> Any:
    """A client of the fault server's bucket ``bkt``, path style; ``extra`` overrides."""
    import knoxpy

    opts: dict[str, Any] = dict(key="AKID", secret="s3cr3t", bucket="bkt",
                                endpoint="localhost", port=srv.port, style="path")
    opts.update(extra)
    return knoxpy.createClient(opts)


@pytest.fixture
def forget_learned() -> Iterator[None]:
    """Forget what clients learn per process: bucket regions and stores' checksum support."""
    from knoxpy import client as client_module

    client_module._BUCKET_REGIONS.clear()
    client_module._TRAILERS.clear()
    yield
    client_module._BUCKET_REGIONS.clear()
    client_module._TRAILERS.clear()


def read_interleaved(res: Any) -> bytes:
    """The body by small read()s and large readinto()s in turn: a large one goes to the
    socket itself, past http.client's buffer, which a small one may have filled."""
    got = bytearray()
    sizes = [1000, 256 * 1024, 10, 100_000, 1, 300_000, 70_000, 5]
    for i in range(10_000):
        size = sizes[i % len(sizes)]
        if i % 2:
            buf = bytearray(size)
            n = res.readinto(buf)
            chunk = bytes(buf[:n])
        else:
            chunk = res.read(size)
        if not chunk:
            return bytes(got)
        got += chunk
    raise AssertionError("never ended")
