"""`make demo`: knox's README story, for real, against an embedded moto S3 server.

Run it with `make demo` (which installs what it needs), or `python examples/demo.py`
inside the project's virtualenv. Nothing leaves this machine: the S3 server is
moto's, on 127.0.0.1.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time

import urllib3
from moto.server import ThreadedMotoServer

import knoxpy


def step(title: str) -> None:
    print(f"\n== {title}")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    urllib3.request("PUT", f"http://127.0.0.1:{port}/learnboost")  # create the bucket
    print(f"embedded S3 (moto) on 127.0.0.1:{port}, bucket 'learnboost'")

    client = knoxpy.createClient(
        key="<api-key-here>", secret="<secret-here>", bucket="learnboost",
        endpoint="localhost", port=port, style="path",  # plain urllib3 resolves no bucket.localhost
    )
    print(f"client: {client!r} (Signature V{client.signatureVersion})")

    step("PUT a JSON string with client.put(...).end(string)")
    string = json.dumps({"foo": "bar"})
    req = client.put("/test/obj.json", {
        "Content-Length": len(string.encode()),
        "Content-Type": "application/json",
    })

    def saved(res: knoxpy.IncomingMessage) -> None:
        if res.statusCode == 200:
            print(f"saved to {req.url}")
        res.resume()

    req.on("response", saved)
    req.end(string)
    knoxpy.run()

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "big.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(8 * 1024 * 1024))

        step("putFile 8 MiB with a progress line")
        started = time.monotonic()

        def progress(p: knoxpy.Progress) -> None:
            bar = "#" * (p["percent"] // 5)
            print(f"\r  [{bar:<20}] {p['percent']:3d}%  {p['written']:>9,} / {p['total']:,} bytes",
                  end="", flush=True)

        def put_done(err: object, res: knoxpy.IncomingMessage) -> None:
            print(f"\n  -> {res.statusCode} in {time.monotonic() - started:.2f}s, "
                  f"ETag {res.headers.get('etag')}")
            res.resume()

        client.putFile(src, "/big.bin", put_done).on("progress", progress)
        knoxpy.run()

        step("getFile and pipe the response to a file")
        dest = os.path.join(tmp, "copy.bin")

        def got(err: object, res: knoxpy.IncomingMessage) -> None:
            print(f"  {res.statusCode}, {res.headers['content-length']} bytes, piping to {dest}")
            res.pipe(open(dest, "wb"))
            res.on("end", lambda: print("  piped; identical to the source:",
                                        open(dest, "rb").read() == open(src, "rb").read()))

        client.getFile("/big.bin", got)
        knoxpy.run()

    step("copy, then list with knox's normalised shape")
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
    res = client.deleteMultiple(["/test/obj.json", "/test/big-copy.bin", "/big.bin"]).wait()
    print(f"  {res.statusCode}: deleted {res.read().count(b'<Deleted>')} keys")
    left = client.list().wait()["Contents"]
    print(f"  keys left in the bucket: {len(left)}")

    server.stop()
    print("\ndemo finished: every step ran against a real S3 API on loopback")
    return 0


if __name__ == "__main__":
    sys.exit(main())
