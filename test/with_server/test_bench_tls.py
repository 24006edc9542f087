"""bench/tls.py and bench/server.py --tls: the benchmark's HTTPS mode, verified as clients do."""
from __future__ import annotations

import os
import ssl
import sys
from typing import Any, Iterator

import pytest
import urllib3
from urllib3.exceptions import SSLError

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bench')
sys.path.insert(0, BENCH)

import tls  # noqa: E402  (bench/tls.py)
from server import BenchServer  # noqa: E402  (bench/server.py)


@pytest.fixture(scope='module')
def https(tmp_path_factory: Any) -> Iterator[Any]:
    d = str(tmp_path_factory.mktemp('tls'))
    ca, chain, key = tls.make_certs(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    srv = BenchServer(0, ctx).start()
    try:
        yield srv, ca, d
    finally:
        srv.stop()


@pytest.mark.parametrize('host', ['127.0.0.1', 'localhost'])
def test_a_client_trusting_the_test_ca_gets_answers(https: Any, host: str) -> None:
    srv, ca, _ = https
    with urllib3.PoolManager(ca_certs=ca, retries=False) as pm:
        r = pm.request('GET', f'https://{host}:{srv.port}/bench/small/size-16384')
    assert r.status == 200 and len(r.data) == 16384


def test_the_trust_bundle_is_the_system_store_and_the_ca(https: Any) -> None:
    srv, ca, d = https
    bundle = tls.trust_bundle(ca, d)
    store = tls.system_store()
    assert store is not None, 'no system store or certifi on this machine'
    assert tls.count_certs(bundle) == tls.count_certs(store) + 1
    ctx = ssl.create_default_context(cafile=bundle)
    with urllib3.PoolManager(ssl_context=ctx, retries=False) as pm:
        r = pm.request('PUT', f'https://127.0.0.1:{srv.port}/bench/small/k', body=b'x' * 1024)
    assert r.status == 200


def test_a_client_trusting_only_the_system_store_is_refused(https: Any) -> None:
    srv, _, _ = https
    store = tls.system_store()
    assert store is not None
    with urllib3.PoolManager(ca_certs=store, retries=False) as pm, \
            pytest.raises(SSLError) as info:
        pm.request('GET', f'https://127.0.0.1:{srv.port}/bench/small/size-16')
    assert 'CERTIFICATE_VERIFY_FAILED' in str(info.value)


def test_a_wrong_host_name_is_refused(https: Any) -> None:
    srv, ca, _ = https
    with urllib3.PoolManager(ca_certs=ca, retries=False,
                             assert_hostname='s3.amazonaws.com') as pm, \
            pytest.raises(SSLError) as info:
        pm.request('GET', f'https://127.0.0.1:{srv.port}/bench/small/size-16')
    assert 's3.amazonaws.com' in str(info.value)
