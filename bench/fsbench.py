"""The fsspec scenarios of the benchmark: knoxpy.fs against s3fs and obstore's adapter.

    python bench/clients.py CLIENT fs_SCENARIO --port N [--store-port M] [--size BYTES] ...

CLIENT is knoxpy (``knoxpy.fs.KnoxFileSystem``), s3fs (``s3fs.S3FileSystem``, path style)
or obstore (``obstore.fsspec.FsspecStore('s3', ...)``). Every call goes through the
fsspec API, as pandas, pyarrow and Dask make it. Scenarios (one per process):

  fs_setup      knoxpy only, run once by bench/run.py: the parquet file on the store server,
                --keys small objects under fs/keys/ on the discard server
  fs_parquet    ``pandas.read_parquet(path, filesystem=fs)`` of the stored file: MB/s
  fs_ranges     ``cat_ranges`` of --ranges random 64 KiB ranges of a --size object: ranges/s
  fs_find       ``find('bench/fs/keys/')`` of the --keys objects: keys/s
  fs_put / fs_get   ``put_file`` / ``get_file`` of --size bytes: MB/s
  fs_copy       the --keys objects copied server-side on a LocalCluster of --workers worker
                processes (one thread each; its start is not timed): keys/s. knoxpy:
                ``knoxpy.cluster.copy_all``; the others: the same partitions (1000 keys,
                cut from one ``find`` in this process) mapped over the workers, each task
                ``fs.copy(sources, dests)`` (fsspec's batched ``cp_file``)

The parquet object lives on a 'store' mode s3shaped server (real bytes); the others on
bench/server.py ('discard': listings and sizes kept, GET bodies generated).
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

KEY, SECRET = 'AKIDBENCHMARK0000000', 'bench/secret/' + 'x' * 27  # as bench/clients.py
BUCKET, REGION = 'bench', 'us-east-1'
PARQUET = f'{BUCKET}/fs/data.parquet'
KEYS = f'{BUCKET}/fs/keys'
RANGE = 64 * 1024
PARTITION = 1000  # keys per copy task: knoxpy.cluster's default, for every client
CLIENTS = ('knoxpy', 's3fs', 'obstore')


def filesystem(client: str, port: int) -> Any:
    """A fresh filesystem of ``client`` for the server on ``port`` (no instance cache)."""
    url = f'http://127.0.0.1:{port}'
    if client == 'knoxpy':
        from knoxpy.fs import KnoxFileSystem
        return KnoxFileSystem(key=KEY, secret=SECRET, endpoint_url=url, style='path',
                              region=REGION, skip_instance_cache=True)
    if client == 's3fs':
        import s3fs
        return s3fs.S3FileSystem(key=KEY, secret=SECRET, endpoint_url=url,
                                 client_kwargs={'region_name': REGION},
                                 config_kwargs={'s3': {'addressing_style': 'path'}},
                                 skip_instance_cache=True)
    if client == 'obstore':
        from obstore.fsspec import FsspecStore
        return FsspecStore('s3', config={
            'endpoint': url, 'access_key_id': KEY, 'secret_access_key': SECRET,
            'region': REGION, 'virtual_hosted_style_request': False},
            client_options={'allow_http': True}, skip_instance_cache=True)
    raise ValueError(f'no such client: {client}')


def _rate(n: float, fn: Any) -> Dict[str, float]:
    t0 = time.perf_counter()
    c0 = time.process_time()
    fn()
    dt = time.perf_counter() - t0
    return {'rate': n / dt, 'seconds': dt, 'cpu_s': time.process_time() - c0}


def setup(a: Any) -> Dict[str, Any]:
    """The parquet file (on the store server) and the small keys (on the discard one)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = a.parquet_bytes // 32  # four float64 columns of random values: incompressible
    rng = np.random.default_rng(0)
    table = pa.table({f'c{i}': rng.random(rows) for i in range(4)})
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, 'data.parquet')
        pq.write_table(table, local, row_group_size=max(1, rows // 8))
        size = os.path.getsize(local)
        filesystem('knoxpy', a.store_port).put_file(local, PARQUET)
    import knoxpy
    c = knoxpy.createClient(key=KEY, secret=SECRET, bucket=BUCKET, endpoint='127.0.0.1',
                            port=a.port, style='path', region=REGION)

    def put_key(i: int) -> None:
        res = c.putBuffer(b'x' * 100, f'/fs/keys/{i:06d}').wait()
        assert res.statusCode == 200, res.statusCode
        res.resume()

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(put_key, range(a.keys)))
    return {'parquet_bytes': size, 'keys': a.keys}


def parquet(client: str, a: Any) -> Dict[str, Any]:
    import pandas as pd
    fs = filesystem(client, a.store_port)
    size = fs.info(PARQUET)['size']
    frame: List[Any] = []
    out = _rate(size / 1e6, lambda: frame.append(pd.read_parquet(PARQUET, filesystem=fs)))
    assert len(frame[0]) == a.parquet_bytes // 32 or len(frame[0]) > 0
    return out


def ranges(client: str, a: Any) -> Dict[str, Any]:
    fs = filesystem(client, a.port)
    path = f'{BUCKET}/big/size-{a.size}'
    rng = random.Random(1)
    starts = [rng.randrange(0, a.size - RANGE) for _ in range(a.ranges)]
    fs.cat_file(path, 0, 1)  # a connection, lazily imported modules
    got: List[List[bytes]] = []
    out = _rate(a.ranges, lambda: got.append(
        fs.cat_ranges([path] * len(starts), starts, [s + RANGE for s in starts])))
    assert all(len(b) == RANGE for b in got[0]), 'a short range'
    return out


def find(client: str, a: Any) -> Dict[str, Any]:
    fs = filesystem(client, a.port)
    found: List[Any] = []
    out = _rate(a.keys, lambda: found.append(fs.find(KEYS)))
    assert len(found[0]) == a.keys, (len(found[0]), a.keys)
    return out


def put(client: str, a: Any) -> Dict[str, Any]:
    fs = filesystem(client, a.port)
    out = _rate(a.size / 1e6, lambda: fs.put_file(a.file, f'{BUCKET}/fs/put-{client}'))
    return out


def get(client: str, a: Any) -> Dict[str, Any]:
    fs = filesystem(client, a.port)
    out = _rate(a.size / 1e6, lambda: fs.get_file(f'{BUCKET}/big/size-{a.size}', a.dest))
    assert os.path.getsize(a.dest) == a.size, os.path.getsize(a.dest)
    return out


def _fs_copy_task(client: str, port: int, sources: List[str], dests: List[str]) -> int:
    """One peer partition on a worker: its filesystem made once per worker process."""
    fs = _worker_fs.get(client)
    if fs is None:
        fs = _worker_fs[client] = filesystem(client, port)
    fs.copy(sources, dests)
    return len(sources)


_worker_fs: Dict[str, Any] = {}


def copy(client: str, a: Any) -> Dict[str, Any]:
    import distributed
    dest = f'fs/copies/{client}-{a.workers}-{os.getpid()}/'
    with distributed.LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                                  dashboard_address=':0') as cluster, \
            distributed.Client(cluster) as dask:
        dask.run(lambda: None)  # every worker up before the clock starts
        if client == 'knoxpy':
            import knoxpy
            import knoxpy.cluster
            c = knoxpy.createClient(key=KEY, secret=SECRET, bucket=BUCKET,
                                    endpoint='127.0.0.1', port=a.port, style='path',
                                    region=REGION)

            def go() -> None:
                res = knoxpy.cluster.copy_all(c, 'fs/keys/', {'prefix': dest}, dask,
                                              partition_keys=PARTITION).wait()
                assert res['copied'] == a.keys and not res['errors'], res
        else:
            fs = filesystem(client, a.port)

            def go() -> None:
                keys = fs.find(KEYS)
                futures = [dask.submit(_fs_copy_task, client, a.port, part,
                                       [f'{BUCKET}/{dest}{k.rsplit("/", 1)[1]}' for k in part],
                                       pure=False)
                           for part in (keys[i:i + PARTITION]
                                        for i in range(0, len(keys), PARTITION))]
                assert sum(dask.gather(futures)) == a.keys
        out = _rate(a.keys, go)
    check = filesystem('knoxpy', a.port).find(f'{BUCKET}/{dest}')
    assert len(check) == a.keys, (len(check), a.keys)
    return out


SCENARIOS = {'fs_parquet': parquet, 'fs_ranges': ranges, 'fs_find': find, 'fs_put': put,
             'fs_get': get, 'fs_copy': copy}


def run(client: str, scenario: str, a: Any) -> Dict[str, Any]:
    if scenario == 'fs_setup':
        return setup(a)
    return SCENARIOS[scenario](client, a)
