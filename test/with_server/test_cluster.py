"""Bulk work on a Dask cluster (knoxpy.cluster): a real LocalCluster of two worker processes.

The workers copy and delete against moto, or against the project's fault server (which
counts every request, so "each key copied exactly once" is counted, not guessed, and
refuses chosen keys). The cluster starts once for the module: starting one is the slow part.
"""
from __future__ import annotations

import _thread
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from conftest import KEY, ROOT, SECRET, fault_client, moto_options

import knoxpy

distributed = pytest.importorskip("distributed")
from knoxpy import cluster as kcluster  # noqa: E402 - needs distributed

HANG_GUARD = 120


@pytest.fixture(scope="module")
def dask() -> Iterator[Any]:
    # The workers must import this worktree's knoxpy, not another install's: spawned
    # worker processes get this process's sys.path; PYTHONPATH makes sure of it.
    os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        files = client.run(lambda: __import__("knoxpy").__file__)
        assert set(files.values()) == {knoxpy.__file__}, files
        yield client


def put_keys(client: Any, prefix: str, n: int) -> Dict[str, int]:
    """``n`` small objects under ``prefix``; returns key -> size."""
    made = {}
    for i in range(n):
        key, body = f"{prefix}{i:03d}.txt", b"x" * (i + 1)
        res = client.putBuffer(body, "/" + key).wait()
        assert res.statusCode == 200
        made[key] = len(body)
    return made


def copy_puts(srv: Any) -> List[str]:
    """The destination paths of every copy request the fault server received."""
    return [r.path for r in srv.requests
            if r.method == "PUT" and "x-amz-copy-source" in r.headers]


def test_partitions_are_cut_as_the_listing_goes() -> None:
    consumed: List[str] = []

    def listing(after: Any) -> Iterator[Dict[str, Any]]:
        for i in range(2500):
            key = f"k{i:04d}"
            if after is None or key > after:
                consumed.append(key)
                yield {"Key": key, "Size": i}

    parts = kcluster.partitions(listing, 1000, kcluster._Finished(()))
    after, items = next(parts)
    # The first partition is handed over before the listing reads past it.
    assert (after, len(items), len(consumed)) == (None, 1000, 1000)
    assert [(a, len(i)) for a, i in parts] == [("k0999", 1000), ("k1999", 500)]
    # Finished ranges are jumped over: the listing starts again after their last key.
    consumed.clear()
    done = kcluster._Finished([(None, "k0099"), ("k0199", "k2000")])
    got = list(kcluster.partitions(listing, 150, done))
    assert [(a, i[0][0], i[-1][0]) for a, i in got] == [
        ("k0099", "k0100", "k0199"), ("k2000", "k2001", "k2150"), ("k2150", "k2151", "k2300"),
        ("k2300", "k2301", "k2450"), ("k2450", "k2451", "k2499")]
    assert "k0000" in consumed and "k0500" not in consumed  # restarted past k2000


def test_every_key_copied_exactly_once(srv: Any, dask: Any) -> None:
    client = fault_client(srv)
    made = put_keys(client, "src/", 23)
    progress: List[Dict[str, Any]] = []
    parts: List[Dict[str, Any]] = []
    op = client.copyAll("src/", {"prefix": "dst/"}, cluster=dask, partition_keys=4,
                        concurrency=2)
    op.on("progress", lambda p: progress.append(dict(p)))
    op.on("partition", lambda p: parts.append(dict(p)))
    result = op.wait(HANG_GUARD)
    assert result["copied"] == 23 and result["errors"] == []
    assert result["partitions"] == 6 and result["bytes"] == sum(made.values())
    puts = copy_puts(srv)
    assert sorted(puts) == sorted(f"/bkt/dst/{k[4:]}" for k in made)  # once each
    # The partitions are start-after ranges that tile the listing, each on a worker.
    assert sorted(p["keys"] for p in parts) == [3, 4, 4, 4, 4, 4]
    assert {p["after"] for p in parts} == {None, "src/003.txt", "src/007.txt", "src/011.txt",
                                           "src/015.txt", "src/019.txt"}
    assert {p["worker"] for p in parts} <= set(dask.scheduler_info()["workers"])
    last = progress[-1]
    assert last["keys"] == 23 and last["bytes"] == sum(made.values())
    assert last["listed"] == 23 and last["partitions"] == 6 and not last["listing"]
    assert all(a["keys"] <= b["keys"] for a, b in zip(progress, progress[1:]))


def test_copy_headers_go_to_every_copy_on_the_workers(srv: Any, dask: Any) -> None:
    """SSE-C keys of the source and of the copies travel to the workers, masked in the
    task's arguments (Dask shows them in its errors and dashboard)."""
    from test_sse_c import KEY, OTHER, sse_c

    client = fault_client(srv)
    for i in range(5):
        client.putBuffer(f"secret {i}", f"/enc/{i}", sse_c(KEY)).wait(HANG_GUARD)
    headers = {**sse_c(KEY, copy_source=True), **sse_c(OTHER)}
    result = client.copyAll("enc/", {"prefix": "re/"}, cluster=dask, partition_keys=2,
                            headers=headers).wait(HANG_GUARD)
    assert result["copied"] == 5 and result["errors"] == [] and result["partitions"] == 3
    for i in range(5):
        assert client.get(f"/re/{i}", sse_c(OTHER)).end().wait(HANG_GUARD).read() == \
            f"secret {i}".encode()
    shown = repr(knoxpy.client._Options(knoxpy.bulk.copy_headers(headers)))
    assert not [v for k, v in headers.items() if k.endswith("-key") and v in shown]
    # a bad header fails the whole operation before anything is sent
    with pytest.raises(knoxpy.ValidationError, match="customer-key must be the base64"):
        client.copyAll("enc/", {"prefix": "no/"}, cluster=dask, headers={
            "x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": "c2hvcnQ="}).wait(HANG_GUARD)


def test_copy_and_delete_against_moto(moto_port: int, bucket: str, dask: Any) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket))
    prefix = f"cl-{uuid.uuid4().hex[:6]}/"
    made = put_keys(client, prefix + "a/", 9)
    result = client.copyAll(prefix + "a/", {"prefix": prefix + "b/"}, cluster=dask,
                            partition_keys=2).wait(HANG_GUARD)
    assert result["copied"] == 9 and result["errors"] == []
    copied = {e["Key"]: e["Size"] for e in client.listAll({"prefix": prefix + "b/"})}
    assert copied == {prefix + "b/" + k[len(prefix) + 2:]: n for k, n in made.items()}
    result = client.deleteAll(client.listAll({"prefix": prefix}), cluster=dask,
                              partition_keys=5).wait(HANG_GUARD)
    assert result["deleted"] == 18 and result["errors"] == [] and result["partitions"] == 4
    assert list(client.listAll({"prefix": prefix})) == []


def test_per_key_errors_come_back(srv: Any, dask: Any) -> None:
    client = fault_client(srv)
    put_keys(client, "e/", 8)
    srv.inject("status", count=1, status=403, code="AccessDenied",
               match=lambda r: r.method == "PUT" and r.path == "/bkt/f/005.txt")
    errors: List[Dict[str, Any]] = []
    op = client.copyAll("e/", {"prefix": "f/"}, cluster=dask, partition_keys=3)
    op.on("keyError", lambda e: errors.append(dict(e)))
    result = op.wait(HANG_GUARD)
    assert result["copied"] == 7
    assert [(e["Key"], e["DestKey"], e["Code"]) for e in result["errors"]] == [
        ("e/005.txt", "f/005.txt", "AccessDenied")]
    assert errors == result["errors"]
    # deleteAll: a key S3 refuses stays, and is reported
    srv.inject("delete_errors", count=3, keys=["e/002.txt"], code="AccessDenied")
    result = client.deleteAll(client.listAll({"prefix": "e/"}), cluster=dask,
                              partition_keys=3).wait(HANG_GUARD)
    assert result["deleted"] == 7
    assert [(e["Key"], e["Code"]) for e in result["errors"]] == [("e/002.txt", "AccessDenied")]
    assert [e["Key"] for e in client.listAll({"prefix": "e/"})] == ["e/002.txt"]


def test_a_rerun_with_the_manifest_skips_finished_partitions(srv: Any, dask: Any,
                                                            tmp_path: Path) -> None:
    client = fault_client(srv)
    put_keys(client, "m/", 10)
    manifest = tmp_path / "copy.json"
    srv.inject("status", count=1, status=403, code="AccessDenied",
               match=lambda r: r.method == "PUT" and r.path == "/bkt/n/006.txt")
    first = client.copyAll("m/", {"prefix": "n/"}, cluster=dask, partition_keys=3,
                           manifest=manifest).wait(HANG_GUARD)
    assert first["copied"] == 9 and len(first["errors"]) == 1
    # Partitions m/000-002, 003-005 and 009 are done; 006-008 had an error.
    recorded = json.loads(manifest.read_text())
    assert {(d["after"], d["last"]) for d in recorded["done"]} == {
        (None, "m/002.txt"), ("m/002.txt", "m/005.txt"), ("m/008.txt", "m/009.txt")}
    assert SECRET not in manifest.read_text() and KEY not in manifest.read_text()
    before = len(copy_puts(srv))
    lists_before = sum(1 for r in srv.requests if r.method == "GET" and "list-type" in r.path)
    second = client.copyAll("m/", {"prefix": "n/"}, cluster=dask, partition_keys=3,
                            manifest=manifest).wait(HANG_GUARD)
    assert second["copied"] == 3 and second["errors"] == [] and second["skipped"] == 7
    assert sorted(copy_puts(srv)[before:]) == ["/bkt/n/006.txt", "/bkt/n/007.txt",
                                               "/bkt/n/008.txt"]
    # The listing jumped over the finished ranges (start-after their last keys).
    lists = [r.path for r in srv.requests if r.method == "GET" and "list-type" in r.path]
    assert any("start-after=m%2F005.txt" in p for p in lists[lists_before:])
    third = client.copyAll("m/", {"prefix": "n/"}, cluster=dask, partition_keys=3,
                           manifest=manifest).wait(HANG_GUARD)
    assert third["copied"] == 0 and third["skipped"] == 10
    assert len(copy_puts(srv)) == before + 3
    # A manifest of another run is refused, naming the file.
    with pytest.raises(knoxpy.ValidationError, match="records another run"):
        client.copyAll("m/", {"prefix": "other/"}, cluster=dask,
                       manifest=manifest).wait(HANG_GUARD)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(knoxpy.ValidationError, match="not a knoxpy cluster manifest"):
        client.copyAll("m/", {"prefix": "n/"}, cluster=dask,
                       manifest=tmp_path / "bad.json").wait(HANG_GUARD)


def test_sync_copies_what_differs_and_deletes_what_the_source_lacks(srv: Any,
                                                                     dask: Any) -> None:
    client = fault_client(srv)
    put_keys(client, "s/", 10)
    for i in range(5):  # the same bytes: the same ETag
        client.putBuffer(b"x" * (i + 1), f"/t/{i:03d}.txt").wait()
    client.putBuffer(b"changed", "/t/005.txt").wait()
    for extra in ("t/!first", "t/0015.txt", "t/zzz"):  # before, between, after the sources
        client.putBuffer(b"extra", "/" + extra).wait()
    before = len(copy_puts(srv))
    result = kcluster.sync(client, "s/", {"prefix": "t/"}, dask, delete=True,
                           partition_keys=3).wait(HANG_GUARD)
    assert (result["copied"], result["unchanged"], result["deleted"]) == (5, 5, 3)
    assert result["errors"] == []
    assert sorted(copy_puts(srv)[before:]) == [f"/bkt/t/{i:03d}.txt" for i in range(5, 10)]
    assert [e["Key"] for e in client.listAll({"prefix": "t/"})] == [
        f"t/{i:03d}.txt" for i in range(10)]
    again = kcluster.sync(client, "s/", {"prefix": "t/"}, dask, delete=True,
                          partition_keys=4).wait(HANG_GUARD)
    assert (again["copied"], again["unchanged"], again["deleted"]) == (0, 10, 0)
    assert len(copy_puts(srv)) == before + 5
    with pytest.raises(knoxpy.ValidationError, match="overlap"):
        kcluster.sync(client, "s/", {"prefix": "s/sub/"}, dask, delete=True).wait(HANG_GUARD)


def test_copies_inside_the_source_prefix_are_not_copied_again(srv: Any, dask: Any,
                                                             tmp_path: Path) -> None:
    client = fault_client(srv)
    put_keys(client, "a/", 5)
    result = client.copyAll("", {"prefix": "zz/"}, cluster=dask,
                            partition_keys=2).wait(HANG_GUARD)
    assert result["copied"] == 5 and result["errors"] == []
    assert sorted(copy_puts(srv)) == [f"/bkt/zz/a/{i:03d}.txt" for i in range(5)]
    with pytest.raises(knoxpy.ValidationError, match="a manifest cannot go with"):
        client.copyAll("", {"prefix": "zz/"}, cluster=dask,
                       manifest=tmp_path / "m.json").wait(HANG_GUARD)
    with pytest.raises(knoxpy.ValidationError, match="not versions"):
        client.deleteAll(client.listAllVersions({"prefix": "a/"}),
                         cluster=dask).wait(HANG_GUARD)


def test_a_failure_of_the_whole_operation_fails_it(moto_port: int, bucket: str,
                                                   dask: Any) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket))
    prefix = f"nb-{uuid.uuid4().hex[:6]}/"
    put_keys(client, prefix, 3)
    with pytest.raises(knoxpy.S3Error) as info:
        client.copyAll(prefix, {"bucket": "knoxpy-no-such-bucket-" + uuid.uuid4().hex[:6]},
                       cluster=dask).wait(HANG_GUARD)
    assert info.value.code == "NoSuchBucket"




def _block(name: str) -> None:
    """Holds a worker's only thread until the event ``name`` is set."""
    distributed.Event(name).wait()


@contextlib.contextmanager
def held_workers(dask: Any) -> Iterator[Any]:
    """Every worker's thread held by a task until the gate (yielded) is set, so that no
    task submitted meanwhile runs; the gate opens at the end whatever happens."""
    gate = distributed.Event(f"gate-{uuid.uuid4().hex}", client=dask)
    blockers = [dask.submit(_block, gate.name, workers=[w], pure=False)
                for w in dask.scheduler_info()["workers"]]
    try:
        yield gate
    finally:
        gate.set()
        distributed.wait(blockers, timeout=HANG_GUARD)


def test_a_source_deleted_after_its_listing_is_a_key_error(srv: Any, dask: Any) -> None:
    client = fault_client(srv)
    put_keys(client, "v/", 6)
    with held_workers(dask) as gate:
        op = client.copyAll("v/", {"prefix": "w/"}, cluster=dask, partition_keys=6)

        def listed(progress: Dict[str, Any]) -> None:
            # The partition is listed and submitted, the workers held: delete one of its
            # keys before any worker can copy it, then let them go.
            if progress["listed"] == 6 and not gate.is_set():
                with srv._lock:
                    srv.buckets["bkt"].delete("v/004.txt")
                gate.set()

        op.on("progress", listed)
        result = op.wait(HANG_GUARD)
    assert result["copied"] == 5
    assert [(e["Key"], e["Code"]) for e in result["errors"]] == [("v/004.txt", "NoSuchKey")]


def test_ctrl_c_cancels_the_cluster_tasks(srv: Any, dask: Any) -> None:
    client = fault_client(srv)
    put_keys(client, "c/", 12)
    with held_workers(dask):
        op = client.copyAll("c/", {"prefix": "d/"}, cluster=dask, partition_keys=2,
                            max_pending=3)
        # At the first partition submitted, Ctrl-C in the waiting thread.
        op.once("progress", lambda p: _thread.interrupt_main())
        with pytest.raises(KeyboardInterrupt):
            op.wait(HANG_GUARD)
        # Once wait() has raised, nothing more is submitted, and what was is cancelled:
        # the scheduler forgets each task (Dask's messages take their time) and no
        # worker holds one; then the workers may go.
        run = op._run  # type: ignore[attr-defined]
        submitted = list(run.submitted)
        assert submitted

        def forgotten(dask_scheduler: Any = None) -> bool:
            return all(any(t[2] == "forgotten" for t in dask_scheduler.story(k))
                       for k in submitted)

        def on_workers(dask_worker: Any = None) -> List[str]:
            return [str(k) for k in dask_worker.state.tasks if k in submitted]

        wait_until(lambda: dask.run_on_scheduler(forgotten)
                   and not any(dask.run(on_workers).values()),
                   "the copy's tasks were not cancelled")
        assert run.submitted == submitted
    assert copy_puts(srv) == []
    with pytest.raises(kcluster.Cancelled):
        op.wait(HANG_GUARD)


def test_bad_arguments_are_validation_errors(srv: Any, dask: Any) -> None:
    client = fault_client(srv)
    with pytest.raises(knoxpy.ValidationError, match="distributed.Client"):
        client.copyAll("a/", {"prefix": "b/"}, cluster="tcp://nowhere").wait(HANG_GUARD)
    with pytest.raises(knoxpy.ValidationError, match="partition_keys"):
        client.copyAll("a/", {"prefix": "b/"}, cluster=dask, partition_keys=0).wait(HANG_GUARD)
    with pytest.raises(knoxpy.ValidationError, match="the destination is the source"):
        client.copyAll("a/", {"prefix": "a/"}, cluster=dask).wait(HANG_GUARD)
    with pytest.raises(knoxpy.ValidationError, match="manifest needs a listAll"):
        client.deleteAll(["a"], cluster=dask, manifest="x.json").wait(HANG_GUARD)
    # What travels to the workers shows no secret when Dask prints it.
    assert SECRET not in repr(kcluster._portable(dict(client.options, secret=SECRET)))


def cli_env(home: Path) -> Dict[str, str]:
    """The CLI's environment: credentials from it, this worktree's knoxpy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               PYTHONPATH=str(ROOT))
    return env


def wait_until(check: Any, what: str) -> None:
    """Wait for ``check()`` (Dask's own messages take their time); a hang guard only."""
    deadline = time.monotonic() + HANG_GUARD
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_cli_ctrl_c_cancels_the_cluster_tasks(moto_port: int, bucket: str, dask: Any,
                                              tmp_path: Path) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket))
    prefix = f"clc-{uuid.uuid4().hex[:6]}/"
    put_keys(client, prefix + "src/", 4)

    def ours(dask_scheduler: Any = None) -> List[str]:
        return [str(k) for k in dask_scheduler.tasks if str(k).startswith("knoxpy-")]

    earlier = set(dask.run_on_scheduler(ours))
    with held_workers(dask):
        proc = subprocess.Popen(
            [sys.executable, "-m", "knoxpy", "--endpoint-url", f"http://127.0.0.1:{moto_port}",
             "cp", "-r", f"s3://{bucket}/{prefix}src/", f"s3://{bucket}/{prefix}dst/",
             "--scheduler", dask.scheduler.address],
            env=cli_env(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: set(dask.run_on_scheduler(ours)) - earlier,
                       "the CLI submitted nothing")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=HANG_GUARD)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130 and "interrupted" in err, err
        wait_until(lambda: not set(dask.run_on_scheduler(ours)) - earlier,
                   "the CLI's tasks stayed")
    assert list(client.listAll({"prefix": prefix + "dst/"})) == []


def test_cli_cp_and_rm_on_a_cluster(moto_port: int, bucket: str, dask: Any,
                                    tmp_path: Path) -> None:
    client = knoxpy.createClient(moto_options(moto_port, bucket))
    prefix = f"cli-{uuid.uuid4().hex[:6]}/"
    made = put_keys(client, prefix + "src/", 5)
    env = cli_env(tmp_path)

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "knoxpy", "--endpoint-url",
                               f"http://127.0.0.1:{moto_port}", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=HANG_GUARD,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == code, (done.stdout, done.stderr)
        assert SECRET not in done.stdout + done.stderr
        return done

    cp = ("cp", "-r", f"s3://{bucket}/{prefix}src/", f"s3://{bucket}/{prefix}dst/",
          "--manifest", str(tmp_path / "cp.json"))
    done = run(*cp, "--scheduler", "local:2")
    assert "copy: 5 objects" in done.stdout
    assert sorted(e["Key"] for e in client.listAll({"prefix": prefix + "dst/"})) == sorted(
        prefix + "dst/" + k[len(prefix) + 4:] for k in made)
    address = dask.scheduler.address
    assert "--manifest goes with --scheduler" in run(*cp, code=1).stderr
    assert "with --scheduler the source must be an s3://" in run(
        "cp", "-r", str(tmp_path), f"s3://{bucket}/x/", "--scheduler", address, code=1).stderr
    done = run(*cp, "--scheduler", address)  # the manifest says it is all done
    assert "copy: 0 objects" in done.stdout and "5 keys done before" in done.stdout
    done = run("sync", f"s3://{bucket}/{prefix}src/", f"s3://{bucket}/{prefix}dst/",
               "--delete", "--scheduler", address)
    assert "sync: 0 copied, 0 deleted, 5 unchanged" in done.stdout
    done = run("rm", "-r", f"s3://{bucket}/{prefix}", "--scheduler", address)
    assert "delete: 10 objects" in done.stdout
    assert list(client.listAll({"prefix": prefix})) == []
