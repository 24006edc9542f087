"""knoxpy over TLS (issue 14): one SSLContext per pool, the ``ca`` option and the CA
environment variables, against the fault server behind TLS with a test CA made here."""
from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from conftest import read_interleaved
from servers.s3shaped import S3Server, pattern
from servers.tls import TestCA, tls_server

import knoxpy
from knoxpy import _transport
from knoxpy.errors import RequestError, ValidationError


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(str(tmp_path_factory.mktemp("ca")))


@pytest.fixture(autouse=True)
def no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tls_srv(ca: TestCA) -> Iterator[S3Server]:
    with tls_server(S3Server, ca, mode="store") as server:
        yield server


def _client(srv: S3Server, **extra: Any) -> Any:
    opts: dict[str, Any] = dict(key="AKID", secret="s3cr3t", bucket="bkt", endpoint="localhost",
                                port=srv.port, secure=True, style="path", maxRetries=0)
    opts.update(extra)
    return knoxpy.createClient(opts)


def _pooled_sockets(client: Any, srv: S3Server) -> List[Any]:
    """The sockets of the connections a client's pool holds for the server, idle now."""
    pool = client._transport.pool.connection_from_host("127.0.0.1", srv.port, "https")
    return [c.sock for c in list(pool.pool.queue) if c is not None and c.sock is not None]


def test_with_ca_requests_work_and_the_server_is_verified(tls_srv: S3Server, ca: TestCA) -> None:
    c = _client(tls_srv, ca=ca.pem)
    res = c.putBuffer(b"hello", "/k").wait(10)
    assert res.statusCode == 200
    res = c.get("/k").end().wait(10)
    assert (res.statusCode, res.read()) == (200, b"hello")
    socks = _pooled_sockets(c, tls_srv)
    assert socks and all(isinstance(s, ssl.SSLSocket) for s in socks)
    assert all(s.getpeercert() for s in socks)  # empty unless the certificate was verified


def test_without_ca_the_test_certificate_is_refused_with_a_clear_error(tls_srv: S3Server) -> None:
    c = _client(tls_srv)
    with pytest.raises(RequestError) as err:
        c.get("/k").end().wait(10)
    assert err.value.code == "EPROTO"
    assert "certificate verify failed" in str(err.value)


@pytest.mark.parametrize("name", ["AWS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_the_ca_environment_variables_are_honoured(
    tls_srv: S3Server, ca: TestCA, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, ca.pem)
    res = _client(tls_srv).head("/nothing").end().wait(10)
    assert res.statusCode == 404


def test_aws_ca_bundle_wins_over_ssl_cert_file_and_the_option_over_both(
    tls_srv: S3Server, ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = TestCA(str(tmp_path))
    monkeypatch.setenv("SSL_CERT_FILE", other.pem)
    monkeypatch.setenv("AWS_CA_BUNDLE", ca.pem)
    assert _client(tls_srv).head("/k").end().wait(10).statusCode == 404
    with pytest.raises(RequestError, match="certificate verify failed"):
        _client(tls_srv, ca=other.pem).head("/k").end().wait(10)


def test_a_profile_ca_bundle_is_trusted_and_named_when_missing(
    tls_srv: S3Server, ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = TestCA(str(tmp_path))
    config = tmp_path / "config"
    config.write_text(f"[profile corp]\nca_bundle = {ca.pem}\n"
                      f"[profile gone]\nca_bundle = {tmp_path / 'gone.pem'}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("SSL_CERT_FILE", other.pem)  # the profile's wins over OpenSSL's
    assert _client(tls_srv, profile="corp").head("/k").end().wait(10).statusCode == 404
    monkeypatch.setenv("AWS_CA_BUNDLE", other.pem)  # and AWS_CA_BUNDLE over the profile's
    with pytest.raises(RequestError, match="certificate verify failed"):
        _client(tls_srv, profile="corp").head("/k").end().wait(10)
    monkeypatch.delenv("AWS_CA_BUNDLE")
    with pytest.raises(ValidationError, match="ca_bundle of profile gone in .*config: no such"):
        _client(tls_srv, profile="gone")


def test_ca_as_pem_text_works(tls_srv: S3Server, ca: TestCA) -> None:
    c = _client(tls_srv, ca=Path(ca.pem).read_text())
    assert c.head("/k").end().wait(10).statusCode == 404


def test_the_connections_of_a_pool_share_one_context_loaded_once(
    tls_srv: S3Server, ca: TestCA
) -> None:
    c = _client(tls_srv, ca=ca.pem)
    got: List[Any] = []
    for _ in range(8):  # all in flight at once: eight connections
        c.getFile("/missing", lambda err, res: got.append(err or res.statusCode))
    knoxpy.run(20)
    assert got == [404] * 8
    socks = _pooled_sockets(c, tls_srv)
    assert len(socks) >= 2
    context = c._transport.pool.ssl_context
    assert all(s.context is context for s in socks)
    assert _client(tls_srv, ca=ca.pem)._transport.pool.ssl_context is context  # one per CA


def test_a_certificate_for_another_host_is_refused(ca: TestCA) -> None:
    with tls_server(S3Server, ca, mode="store", hostnames=["other.example"]) as srv:
        with pytest.raises(RequestError) as err:
            _client(srv, ca=ca.pem).head("/k").end().wait(10)
    assert err.value.code == "EPROTO"
    assert "mismatch" in str(err.value) or "match" in str(err.value)


def test_turning_verification_off_still_works_over_the_shared_context(tls_srv: S3Server) -> None:
    c = _client(tls_srv, rejectUnauthorized=False)
    assert c.head("/k").end().wait(10).statusCode == 404
    assert c._transport.pool.ssl_context.verify_mode == ssl.CERT_NONE


def test_a_missing_ca_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ValidationError, match=r"ca: no such CA file or directory: .*nope\.pem"):
        knoxpy.createClient(key="a", secret="b", bucket="bkt", ca=missing)
    monkeypatch.setenv("AWS_CA_BUNDLE", missing)
    with pytest.raises(ValidationError, match="AWS_CA_BUNDLE: no such CA file"):
        knoxpy.createClient(key="a", secret="b", bucket="bkt")


def test_a_file_without_certificates_is_refused_when_the_client_is_made(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValidationError, match=r"ca: '.*bad\.pem' holds no CA certificate"):
        knoxpy.createClient(key="a", secret="b", bucket="bkt", ca=str(bad))
    with pytest.raises(ValidationError, match="the PEM text given holds no CA certificate"):
        knoxpy.createClient(key="a", secret="b", bucket="bkt",
                            ca="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_a_plain_http_client_loads_no_trust_store(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bad))
    c = knoxpy.createClient(key="a", secret="b", bucket="bkt", endpoint="localhost", port=1,
                            secure=False)
    with pytest.raises(ValidationError, match="AWS_CA_BUNDLE: .*bad.pem' holds no CA"):
        c._transport.pool.ssl_context  # noqa: B018 - what its first HTTPS request would do


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_ca_file_is_named(tmp_path: Path, ca: TestCA) -> None:
    locked = tmp_path / "locked.pem"
    locked.write_bytes(Path(ca.pem).read_bytes())
    locked.chmod(0)
    with pytest.raises(ValidationError, match="cannot read the CA file"):
        knoxpy.createClient(key="a", secret="b", bucket="bkt", ca=str(locked))


@pytest.mark.parametrize("extra, message", [
    ({"ca": 5}, "ca must be the path of a PEM file"),
    ({"ca": ""}, "ca must be the path of a PEM file"),
    ({"agent": _transport.urllib3.PoolManager()}, "ca and agent"),
    ({"rejectUnauthorized": False}, "ca and rejectUnauthorized=False"),
])
def test_ca_options_that_cannot_work_are_refused(
    extra: dict[str, Any], message: str, ca: TestCA
) -> None:
    opts: dict[str, Any] = {"key": "a", "secret": "b", "bucket": "bkt", "ca": ca.pem}
    opts.update(extra)
    with pytest.raises(ValidationError, match=message):
        knoxpy.createClient(opts)


# -- answers over TLS: small ones read whole, the rest handed on with what was read ahead --
def test_small_and_large_answers_over_tls_read_exactly(tls_srv: S3Server, ca: TestCA) -> None:
    c = _client(tls_srv, ca=ca.pem)
    for size in (0, 1, 1024, 16 * 1024, 64 * 1024, 64 * 1024 + 1, 3 * 1024 * 1024):
        res = c.get(f"/gen/size-{size}").end().wait(20)
        assert res.statusCode == 200
        assert res.read() == pattern(0, size), size
        head = c.head(f"/gen/size-{size}").end().wait(20)
        assert (head.statusCode, head.headers["content-length"]) == (200, str(size))
        head.resume()


def test_many_in_flight_over_tls_all_read_whole(tls_srv: S3Server, ca: TestCA) -> None:
    c = _client(tls_srv, ca=ca.pem)
    got: List[Any] = []

    def on_response(err: Any, res: Any) -> None:
        if err is not None:
            got.append(err)
            return
        parts: List[bytes] = []
        res.on("data", parts.append)
        res.on("end", lambda: got.append(b"".join(parts)))

    for _ in range(2):  # fresh connections, then reused ones
        for _ in range(32):
            c.getFile("/gen/size-16384", on_response)
        knoxpy.run(60)
    assert got == [pattern(0, 16384)] * 64


def test_multipart_upload_and_download_over_tls(
    tls_srv: S3Server, ca: TestCA, tmp_path: Path
) -> None:
    c = _client(tls_srv, ca=ca.pem)
    data = os.urandom(11 * 1024 * 1024 + 7)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    c.upload(str(src), "/big.bin", partSize=5 * 1024 * 1024).wait(60)
    dest = tmp_path / "dest.bin"
    c.download("/big.bin", str(dest), partSize=5 * 1024 * 1024).wait(60)
    assert dest.read_bytes() == data


def test_small_reads_and_large_readintos_over_tls_give_every_byte_once(
        tls_srv: S3Server, ca: TestCA) -> None:
    """A large readinto reads the TLS socket itself (knoxpy._transport._read_socket_into),
    past http.client's buffer, which the small reads in between fill."""
    size = 3 * 1024 * 1024 + 12345
    res = _client(tls_srv, ca=ca.pem).get(f"/gen/size-{size}").end().wait(20)
    assert read_interleaved(res) == pattern(0, size)


@pytest.mark.parametrize("fault", ["short_body", "reset_response_body"])
def test_a_body_cut_short_over_tls_is_an_error_and_a_download_asks_again(
        tls_srv: S3Server, ca: TestCA, tmp_path: Path, fault: str) -> None:
    c = _client(tls_srv, ca=ca.pem)
    size = 3 * 1024 * 1024
    tls_srv.inject(fault, count=1, match="GET /bkt/gen/size-", after=1_000_000)
    res = c.get(f"/gen/size-{size}").end().wait(20)
    buf = bytearray(256 * 1024)
    with pytest.raises(RequestError) as info:
        while res.readinto(buf):
            pass
    assert info.value.code == "ECONNRESET"
    tls_srv.inject(fault, count=1, match="GET /bkt/gen/size-", after=1_000_000)
    dest = tmp_path / "cut.bin"
    _client(tls_srv, ca=ca.pem, maxRetries=3).download(f"/gen/size-{size}", str(dest)).wait(60)
    assert dest.read_bytes() == pattern(0, size)


def test_the_command_line_takes_a_ca_bundle(tls_srv: S3Server, ca: TestCA, tmp_path: Path) -> None:
    tls_srv.put("bkt", "hello.txt", b"hi there")
    root = str(Path(knoxpy.__file__).parents[1])  # this checkout's knoxpy, not an installed one
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PYTHONPATH=root, HOME=str(tmp_path), AWS_ACCESS_KEY_ID="AKID",
               AWS_SECRET_ACCESS_KEY="s3cr3t")
    argv = [sys.executable, "-m", "knoxpy", "--endpoint-url", f"https://127.0.0.1:{tls_srv.port}"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv + list(args), env=env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)

    done = run("--ca-bundle", ca.pem, "cat", "s3://bkt/hello.txt")
    assert (done.returncode, done.stdout) == (0, "hi there"), done.stderr
    done = run("cat", "s3://bkt/hello.txt")
    assert done.returncode != 0 and "certificate verify failed" in done.stderr
    done = run("--ca-bundle", str(tmp_path / "none.pem"), "cat", "s3://bkt/hello.txt")
    assert done.returncode != 0 and "no such CA file" in done.stderr


@pytest.mark.parametrize("version, tickets", [
    (ssl.TLSVersion.TLSv1_3, True), (ssl.TLSVersion.TLSv1_2, True),
    (ssl.TLSVersion.TLSv1_2, False)], ids=["tls1.3", "tls1.2-ticket", "tls1.2-session-id"])
def test_new_connections_resume_the_tls_session_of_one_given_back(
    tls_srv: S3Server, ca: TestCA, version: ssl.TLSVersion, tickets: bool
) -> None:
    """TLS 1.3 resumes from the tickets sent after the handshake; TLS 1.2 from the ticket
    (RFC 5077) sent in it or, from a server that sends none, by the session's ID."""
    tls_srv.tls.maximum_version = version
    if not tickets:
        tls_srv.tls.options |= ssl.OP_NO_TICKET
    c = _client(tls_srv, ca=ca.pem)
    assert c.head("/k").end().wait(10).statusCode == 404  # one connection, back in the pool
    first = _pooled_sockets(c, tls_srv)
    assert [(s.session_reused, s.version()) for s in first] == [
        (False, version.name.replace("_", "."))]
    got: List[Any] = []
    tls_srv.inject("barrier", count=6, match="GET /bkt/missing")  # six connections at once
    for _ in range(6):  # that one again, and five new ones
        c.getFile("/missing", lambda err, res: got.append(err or res.statusCode))
    knoxpy.run(20)
    assert got == [404] * 6
    socks = _pooled_sockets(c, tls_srv)
    assert len(socks) == 6
    assert sorted(s.session_reused for s in socks) == [False] + [True] * 5


def test_new_connections_make_their_handshakes_at_once(tls_srv: S3Server, ca: TestCA) -> None:
    """Requests that find no pooled connection connect on workers, not one after another
    on the thread that waits: the server holds every handshake until 8 have begun (with
    handshakes made in turn, the first would wait for the others for ever)."""
    import threading

    tls_srv.handshake_barrier = threading.Barrier(8, timeout=30)
    c = _client(tls_srv, ca=ca.pem)  # a new server: its pool has no connection yet
    requests = [c.get("/gen/size-100").end() for _ in range(8)]
    answers = [r.wait(60) for r in requests]
    assert [a.statusCode for a in answers] == [200] * 8
    assert [len(a.read()) for a in answers] == [100] * 8
    assert tls_srv.handshakes_held is True
