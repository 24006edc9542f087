"""`make demo`: the whole story, for real, against an embedded moto S3 server.

First knox's README story (put, putFile, getFile, copy, list, a signed URL,
deleteMultiple), then what knoxpy adds beyond knox: an upload of a stream nobody knows
the length of (multipart, with 'progress' and 'part' events), a verified download, a
listing of a few hundred keys across pages, copyAll and deleteAll, and the command
line, with one request explained by the teaching mode. Every request the client made is
traced (knoxpy.trace): at the end the demo writes a HAR file and its waterfall page, and
prints where to open them.

Run it with `make demo` (which installs what it needs), or `python examples/demo.py`
inside the project's virtualenv. Nothing leaves this machine: the S3 server is
moto's, on 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterator, Optional

import urllib3
from moto.server import ThreadedMotoServer

import knoxpy

BUCKET = "learnboost"
STREAM_MIB = 20  # the upload of unknown length
MANY = 300  # keys for listAll, copyAll and deleteAll
TRACE_DIR = os.path.join(tempfile.gettempdir(), "knoxpy-demo")  # where the trace goes


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


class Bar:
    """A progress line: redrawn in place on a terminal, a line per quarter otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.started = time.monotonic()
        self.shown: Any = None  # the last line shown when not on a terminal

    def __call__(self, p: knoxpy.Progress) -> None:
        total, written = p["total"], p["written"]
        mib_s = written / 2**20 / max(time.monotonic() - self.started, 1e-6)
        if total is None:  # a stream of unknown length: no percentage until it ends
            text = f"  {written / 2**20:6.1f} MiB sent, total unknown  ({mib_s:.0f} MiB/s)"
            quarter: Any = ("MiB", written // (5 * 2**20))  # a line per 5 MiB
        else:
            bar = "#" * (p["percent"] // 5)
            text = (f"  [{bar:<20}] {p['percent']:3d}%  {written:>11,} / {total:,} bytes"
                    f"  ({mib_s:.0f} MiB/s)")
            quarter = ("%", p["percent"] // 25)
        if self.tty:
            print("\r\033[K" + text, end="", flush=True)
        elif quarter != self.shown:
            self.shown = quarter
            print(text, flush=True)

    def note(self, text: str) -> None:
        """A line of its own, under the progress line."""
        print(("\r\033[K" if self.tty else "") + text, flush=True)

    def done(self) -> None:
        if self.tty:
            print()


def knox_readme_story(client: knoxpy.Client, tmp: str) -> None:
    step("PUT a JSON string with client.put(...).end(string)")
    string = json.dumps({"foo": "bar"})
    req = client.put("/test/obj.json", {
        "Content-Length": len(string.encode()),
        "Content-Type": "application/json",
    })

    def saved(res: knoxpy.IncomingMessage) -> None:
        if res.statusCode == 200:
            print(f"  saved to {req.url}")
        res.resume()

    req.on("response", saved)
    req.end(string)
    knoxpy.run()

    src = os.path.join(tmp, "big.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(8 * 1024 * 1024))

    step("putFile 8 MiB, with knox's 'progress' events")
    bar = Bar()

    def put_done(err: object, res: knoxpy.IncomingMessage) -> None:
        bar.done()
        print(f"  -> {res.statusCode} in {time.monotonic() - bar.started:.2f}s, "
              f"ETag {res.headers.get('etag')}")
        res.resume()

    client.putFile(src, "/big.bin", put_done).on("progress", bar)
    knoxpy.run()

    step("getFile, and pipe the response to a file")
    dest = os.path.join(tmp, "copy.bin")

    def got(err: object, res: knoxpy.IncomingMessage) -> None:
        print(f"  {res.statusCode}, {res.headers['content-length']} bytes, piping to {dest}")
        res.pipe(open(dest, "wb"))
        res.on("end", lambda: print("  piped; identical to the source:",
                                    _same_file(dest, src)))

    client.getFile("/big.bin", got)
    knoxpy.run()

    step("copyFile, then list with knox's normalised shape")
    client.copyFile("/big.bin", "/test/big-copy.bin",
                    lambda err, res: (print(f"  copy -> {res.statusCode}"), res.resume()))
    knoxpy.run()
    data = client.list({"prefix": "test/"}).wait()
    for obj in data["Contents"]:
        print(f"  {obj['Key']:<22} {obj['Size']:>9,} bytes  {obj['LastModified']:%Y-%m-%d %H:%M}")
    print(f"  IsTruncated={data['IsTruncated']!r} MaxKeys={data['MaxKeys']!r}")

    step("a signed URL, fetched with plain urllib3")
    url = client.signedUrl("/test/obj.json", time.time() + 300)
    print(f"  {url[:100]}...")
    body = urllib3.request("GET", url)
    print(f"  {body.status}: {body.data.decode()}")

    step("deleteMultiple")
    res = client.deleteMultiple(["/test/big-copy.bin", "/big.bin"]).wait()
    print(f"  {res.statusCode}: deleted {res.read().count(b'<Deleted>')} keys")


def any_size(client: knoxpy.Client, tmp: str) -> None:
    step(f"beyond knox: upload a {STREAM_MIB} MiB stream of unknown length (multipart)")
    sent = hashlib.md5()

    def stream() -> Iterator[bytes]:  # a generator: nobody knows its length up front
        for _ in range(STREAM_MIB):
            chunk = os.urandom(2**20)
            sent.update(chunk)
            yield chunk

    bar = Bar()
    op = client.upload(stream(), "/streams/random.bin", {"Content-Type": "application/x-random"})
    op.on("progress", bar)
    op.on("part", lambda p: bar.note(
        f"  part {p['partNumber']}: {p['size']:>9,} bytes, ETag {p['ETag']}"))
    result = op.wait()
    bar.done()
    print(f"  -> {result['Key']} in {time.monotonic() - bar.started:.2f}s, ETag {result['ETag']}\n"
          "     (a multipart ETag: the MD5 of the parts' MD5s, then the number of parts)")

    step("download it to a file: parallel ranged GETs, verified before it appears")
    path = os.path.join(tmp, "random.bin")
    bar = Bar()
    got = client.download("/streams/random.bin", path).on("progress", bar).wait()
    bar.done()
    same = _md5(path) == sent.hexdigest()
    print(f"  -> {got['size']:,} bytes at {got['path']}; MD5 matches what was sent: {same}")


def at_any_scale(client: knoxpy.Client) -> None:
    step(f"beyond knox: {MANY} small keys, 16 PUTs in flight (each callback starts the next)")
    keys = iter(f"/many/key-{i:04d}.txt" for i in range(MANY))
    started = time.monotonic()

    def put_next(err: Optional[BaseException] = None, res: Any = None) -> None:
        if res is not None:
            res.resume()
        key = next(keys, None)
        if key is not None:
            client.putBuffer(key.encode(), key, {"Content-Type": "text/plain"}, put_next)

    for _ in range(16):
        put_next()
    knoxpy.run()
    print(f"  {MANY} PUTs in {time.monotonic() - started:.2f}s")

    step("listAll: every key across pages (100 a page here), as a plain iterator")
    entries = list(client.listAll({"prefix": "many/", "max-keys": 100}))
    print(f"  {len(entries)} keys: {entries[0]['Key']} ... {entries[-1]['Key']}")
    dirs = [e["Prefix"] for e in client.listAll({"delimiter": "/"}) if "Prefix" in e]
    print(f"  with a delimiter, the 'directories' at the top: {dirs}")

    step("copyAll many/ to backup/many/ (server-side copies, in parallel)")
    print(f"  {client.copyAll('many/', {'prefix': 'backup/many/'}).wait()}")

    step("deleteAll of a whole listing (1000 keys a request), with 'keyError' for refusals")
    op = client.deleteAll(client.listAll({"prefix": "backup/"}))
    op.on("keyError", lambda e: print("  refused:", e))
    print(f"  backup/: {op.wait()}")


def command_line(port: int) -> None:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="demo-secret",
               AWS_REGION="us-east-1", AWS_PROFILE="")
    env.pop("AWS_SESSION_TOKEN", None)
    endpoint = f"http://127.0.0.1:{port}"

    def knoxpy_cli(*args: str) -> None:
        print(f"  $ knoxpy {' '.join(args)}", flush=True)
        done = subprocess.run([sys.executable, "-m", "knoxpy", *args], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in done.stdout.splitlines():
            print("    " + line)
        if done.returncode != 0:
            raise SystemExit(f"knoxpy {args[0]} exited {done.returncode}")

    step("the command line (credentials from AWS_* variables), as subprocesses")
    knoxpy_cli("ls", f"s3://{BUCKET}/", "--endpoint-url", endpoint)
    knoxpy_cli("ls", "-h", f"s3://{BUCKET}/streams/", "--endpoint-url", endpoint)

    step("the teaching mode: one request explained (--explain), secrets masked")
    knoxpy_cli("--explain", "stat", f"s3://{BUCKET}/test/obj.json", "--endpoint-url", endpoint)


def pandas_through_knox(port: int) -> None:
    """pandas reads and writes ``knox://`` URLs: knoxpy is an fsspec filesystem."""
    import pandas as pd

    step("pandas through knox:// (knoxpy as an fsspec filesystem, docs/ecosystem.md)")
    storage_options = {"key": "<api-key-here>", "secret": "<secret-here>",
                       "endpoint_url": f"http://127.0.0.1:{port}", "style": "path"}
    url = f"knox://{BUCKET}/tables/weather.parquet"
    weather = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "high_c": [4.5, 23.0, 31.5]})
    weather.to_parquet(url, storage_options=storage_options)
    back = pd.read_parquet(url, storage_options=storage_options)
    print(f"  df.to_parquet({url!r}), then pd.read_parquet: {len(back)} rows, "
          f"the same frame: {back.equals(weather)}")
    for line in back.to_string(index=False).splitlines():
        print("    " + line)


def bulk_copy_on_a_cluster(client: knoxpy.Client) -> None:
    """copyAll on a local Dask cluster of two worker processes (docs/bulk.md)."""
    import distributed

    step(f"copyAll on a local Dask cluster: 2 worker processes, {MANY} keys in partitions")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR
                                  ) as cluster, distributed.Client(cluster) as dask:
        op = client.copyAll("many/", {"prefix": "cluster-copy/"}, cluster=dask,
                            partition_keys=100)
        workers = set()
        op.on("partition", lambda p: workers.add(p["worker"]))
        result = op.wait()
    print(f"  {result['copied']} copied in {result['partitions']} partitions by "
          f"{len(workers)} workers, errors: {result['errors']}")


def _md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same_file(a: str, b: str) -> bool:
    return _md5(a) == _md5(b)


def main() -> int:
    began = time.monotonic()
    os.makedirs(TRACE_DIR, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        urllib3.request("PUT", f"http://127.0.0.1:{port}/{BUCKET}")  # create the bucket
        print(f"embedded S3 (moto) on 127.0.0.1:{port}, bucket {BUCKET!r}")

        client = knoxpy.createClient(
            key="<api-key-here>", secret="<secret-here>", bucket=BUCKET,
            # path style: the signed URL below is fetched by plain urllib3, which resolves
            # no bucket.localhost
            endpoint="localhost", port=port, style="path",
            partSize=5 * 2**20,  # parts of 5 MiB (S3's least), so 20 MiB shows a few
            trace=os.path.join(TRACE_DIR, "trace.har"),  # every request, for the page below
        )
        print(f"client: {client!r} (Signature V{client.signatureVersion})")

        with tempfile.TemporaryDirectory() as tmp:
            knox_readme_story(client, tmp)
            any_size(client, tmp)
        at_any_scale(client)
        command_line(port)
        pandas_through_knox(port)
        bulk_copy_on_a_cluster(client)

        step("clean up with deleteAll")
        print(f"  {client.deleteAll(client.listAll()).wait()}")
        print(f"  keys left in the bucket: {len(client.list().wait()['Contents'])}")

        step("the trace of every request above: HAR 1.2, and a page with its waterfall")
        har = client.trace.save()
        page = client.trace.save(os.path.join(TRACE_DIR, "trace.html"))
        print(f"  {len(client.trace.entries())} requests, grouped by the call that made them")
        print(f"  open file://{page} in a browser (click a row for its signing steps);")
        print(f"  {har} opens in a browser's network panel or any HAR viewer")
    finally:
        server.stop()
    print(f"\ndemo finished in {time.monotonic() - began:.1f}s: every step ran against a real "
          "S3 API on loopback")
    return 0


if __name__ == "__main__":
    sys.exit(main())
