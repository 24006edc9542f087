"""listAll, deleteAll, copyAll (issue 3 items 4-6, CONTRACT §6) at scale.

Against moto: 2,500 keys (created once for the module) listed, copied and deleted in
both URL styles, knox-shaped entries, special and unicode keys, UploadPartCopy.
Against the project's fault server (test/servers/s3shaped.py): per-key errors, 503
bursts, 200-with-<Error>, missing sources, listings that fail for good or answer
hostile XML, a part copy that keeps failing, batching, concurrency, backpressure,
and CONTRACT §2 (no event before the call returns, callbacks, unhandled errors).
"""
from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from conftest import create_bucket, fault_client, moto_options
from servers.s3shaped import S3Server

import knoxpy
import knoxpy.bulk
from knoxpy._xml import MalformedXML

SRC = "src/"
DIRS, PER_DIR = 5, 500  # 2,500 keys under src/d0/ .. src/d4/
SPECIAL = [  # knox's special characters, unicode, XML metacharacters, odd slashes and spaces
    "src/special/a b+c?d#e'(f)!*~",
    "src/special/ünïcødé/日本語 😀.txt",
    'src/special/x&y<z>"q"',
    "src/special/double//slash",
    "src/special/ lead and trail ",
    "src/special/trailing/",
]
MIB = 1024 * 1024
TIMEOUT = 60


@dataclass
class Seeded:
    port: int
    bucket: str
    bucket2: str
    data: Dict[str, bytes]  # every key under SRC -> its body

    @property
    def keys(self) -> List[str]:
        return sorted(self.data)

    def client(self, style: str, bucket: Optional[str] = None, **extra: Any) -> Any:
        return knoxpy.createClient(moto_options(self.port, bucket or self.bucket, style=style,
                                                **extra))


def body_of(key: str) -> bytes:
    return (key * (1 + len(key) % 3)).encode()  # sizes differ from key to key


def put_all(client: Any, items: Dict[str, bytes]) -> None:
    """Start every PUT before waiting for any: the loop runs them all concurrently."""
    reqs = [client.putBuffer(data, "/" + key) for key, data in items.items()]
    knoxpy.run(timeout=120)
    assert {r.wait().statusCode for r in reqs} == {200}


def keys_under(client: Any, prefix: str) -> List[str]:
    return [e["Key"] for e in client.listAll({"prefix": prefix})]


@pytest.fixture(scope="module")
def seeded(moto_port: int) -> Iterator[Seeded]:
    """2,500 keys plus the special ones in a bucket of this module's own; a second bucket."""
    tag = uuid.uuid4().hex[:8]
    s = Seeded(moto_port, f"knoxpy-bulk-{tag}", f"knoxpy-bulk2-{tag}", {})
    create_bucket(moto_port, s.bucket)
    create_bucket(moto_port, s.bucket2)
    keys = [f"{SRC}d{d}/k{i:04d}" for d in range(DIRS) for i in range(PER_DIR)] + SPECIAL
    s.data = {k: body_of(k) for k in keys}
    put_all(s.client("path"), s.data)
    yield s
    for bucket in (s.bucket, s.bucket2):  # leave moto as found
        c = s.client("path", bucket)
        c.deleteAll(c.listAll()).wait(TIMEOUT)


@pytest.fixture(params=["virtualHosted", "path"])
def style(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


# -- listAll against moto ------------------------------------------------------------------
def test_list_all_iterates_every_key_across_pages(seeded: Seeded, style: str) -> None:
    entries = list(seeded.client(style).listAll({"prefix": SRC}))
    assert [e["Key"] for e in entries] == seeded.keys  # 3 pages, in S3's order
    for e in entries:  # knox-shaped: ints and datetimes, not strings
        data = seeded.data[e["Key"]]
        assert type(e["Size"]) is int and e["Size"] == len(data)
        assert isinstance(e["LastModified"], datetime.datetime)
        assert e["LastModified"].tzinfo is not None
        assert e["ETag"] == md5_etag(data)
        assert e["StorageClass"] == "STANDARD"


def test_list_all_emits_data_then_end_then_close(seeded: Seeded, style: str) -> None:
    events: List[Tuple[str, Any]] = []
    listing = seeded.client(style).listAll({"prefix": SRC})
    listing.on("data", lambda e: events.append(("data", e["Key"])))
    listing.on("end", lambda *a: events.append(("end", a)))
    listing.on("close", lambda *a: events.append(("close", a)))
    assert listing.wait(TIMEOUT) == len(seeded.keys)  # wait() returns how many were delivered
    assert [k for name, k in events if name == "data"] == seeded.keys
    assert [name for name, _ in events[-2:]] == ["end", "close"]
    assert len(events) == len(seeded.keys) + 2


def test_list_all_with_a_delimiter_gives_common_prefixes(seeded: Seeded, style: str) -> None:
    c = seeded.client(style)
    top = list(c.listAll({"prefix": SRC, "delimiter": "/"}))
    assert top == [{"Prefix": f"{SRC}d{d}/"} for d in range(DIRS)] + [{"Prefix": SRC + "special/"}]
    mixed = list(c.listAll({"prefix": SRC + "special/", "delimiter": "/"}))
    names = [e.get("Key", e.get("Prefix")) for e in mixed]
    assert names == sorted(names)  # objects and prefixes merged in S3's order
    assert {e["Prefix"] for e in mixed if "Prefix" in e} == {
        SRC + "special/ünïcødé/", SRC + "special/double/", SRC + "special/trailing/"}
    assert {e["Key"] for e in mixed if "Key" in e} == {
        k for k in SPECIAL if "/" not in k[len(SRC + "special/"):]}
    for e in mixed:
        if "Key" in e:
            assert type(e["Size"]) is int


def test_list_all_prefix_filter_and_small_pages(seeded: Seeded, style: str) -> None:
    c = seeded.client(style)
    want = [k for k in seeded.keys if k.startswith(SRC + "d3/")]
    assert len(want) == PER_DIR
    assert keys_under(c, SRC + "d3/") == want
    # 70 keys a page: eight pages of moto's continuation tokens ('maxKeys' is an alias)
    page = "max-keys" if style == "path" else "maxKeys"
    assert [e["Key"] for e in c.listAll({"prefix": SRC + "d3/", page: 70})] == want
    assert keys_under(c, SRC + "nothing-here/") == []


def test_special_and_unicode_keys_round_trip(seeded: Seeded, style: str) -> None:
    c = seeded.client(style)
    assert keys_under(c, SRC + "special/") == sorted(SPECIAL)
    for key in SPECIAL:
        res = c.get("/" + key).end().wait(TIMEOUT)
        assert (res.statusCode, res.read()) == (200, seeded.data[key]), key


# -- copyAll and deleteAll against moto ----------------------------------------------------
def test_copy_all_within_the_bucket_then_delete_all_from_a_listing(seeded: Seeded) -> None:
    c = seeded.client("path")
    dest = f"copy-{uuid.uuid4().hex[:6]}/"
    copied: List[Dict[str, str]] = []
    op = c.copyAll(SRC, {"prefix": dest}).on("copied", copied.append)
    result = op.wait(TIMEOUT)
    assert result == {"copied": len(seeded.keys), "errors": []}
    assert sorted(e["Key"] for e in copied) == seeded.keys
    assert all(e["DestKey"] == dest + e["Key"][len(SRC):] for e in copied)
    assert all(e["ETag"] == md5_etag(seeded.data[e["Key"]]) for e in copied)
    listed = {e["Key"]: e for e in c.listAll({"prefix": dest})}
    assert sorted(listed) == [dest + k[len(SRC):] for k in seeded.keys]
    for key in seeded.keys:
        assert listed[dest + key[len(SRC):]]["ETag"] == md5_etag(seeded.data[key])
    for key in SPECIAL:  # the bytes themselves, for the keys that are hardest to name
        res = c.get("/" + dest + key[len(SRC):]).end().wait(TIMEOUT)
        assert res.read() == seeded.data[key], key

    # 2,506 keys from a listing stream: three batches of at most 1000
    key_errors: List[Any] = []
    op = c.deleteAll(c.listAll({"prefix": dest})).on("keyError", key_errors.append)
    assert op.wait(TIMEOUT) == {"deleted": len(seeded.keys), "errors": []}
    assert key_errors == []
    assert keys_under(c, dest) == []
    assert keys_under(c, SRC) == seeded.keys  # the source is untouched


def test_copy_all_to_another_bucket_then_delete_all_from_a_list(seeded: Seeded) -> None:
    c = seeded.client("virtualHosted")
    result = c.copyAll(SRC + "d1/", {"bucket": seeded.bucket2, "prefix": "in/"}).wait(TIMEOUT)
    assert result == {"copied": PER_DIR, "errors": []}
    c2 = seeded.client("virtualHosted", seeded.bucket2)
    got = {e["Key"]: e for e in c2.listAll({"prefix": "in/"})}
    want = {"in/" + k[len(SRC + "d1/"):]: k for k in seeded.keys if k.startswith(SRC + "d1/")}
    assert sorted(got) == sorted(want)
    assert all(got[d]["ETag"] == md5_etag(seeded.data[s]) for d, s in want.items())
    res = c2.get("/in/k0007").end().wait(TIMEOUT)
    assert res.read() == seeded.data[SRC + "d1/k0007"]

    # a plain list of names, with and without knox's leading slash
    names = [("/" if i % 2 else "") + k for i, k in enumerate(sorted(got))]
    assert c2.deleteAll(names).wait(TIMEOUT) == {"deleted": PER_DIR, "errors": []}
    assert keys_under(c2, "in/") == []
    special = SRC + "special/"
    assert c.copyAll(special, {"bucket": seeded.bucket2}).wait(TIMEOUT)["copied"] == len(SPECIAL)
    assert keys_under(c2, SRC) == sorted(SPECIAL)  # the same prefix by default
    assert c2.deleteAll(c2.listAll({"prefix": SRC})).wait(TIMEOUT)["deleted"] == len(SPECIAL)


def test_copy_all_into_a_longer_prefix_copies_every_source_key(seeded: Seeded,
                                                               style: str) -> None:
    """copyAll('p/a', {'prefix': 'p/ab'}) copies p/abc too (issue 11 item 10): only the
    copies it makes itself are skipped when the listing reaches them."""
    c = seeded.client(style)
    base = f"sub-{uuid.uuid4().hex[:6]}/"
    sources = {base + name: name.encode() * 3 for name in ("a1", "ab2", "abc", "az")}
    put_all(c, sources)
    copied: List[Dict[str, str]] = []
    op = c.copyAll(base + "a", {"prefix": base + "ab"}).on("copied", copied.append)
    assert op.wait(TIMEOUT) == {"copied": 4, "errors": []}
    want = {base + "ab" + k[len(base) + 1:]: k for k in sources}  # ab1, abb2, abbc, abz
    assert sorted((e["Key"], e["DestKey"]) for e in copied) == sorted(
        (k, d) for d, k in want.items())
    assert keys_under(c, base) == sorted(set(sources) | set(want))  # no copy of a copy
    for dest_key, key in want.items():
        assert c.get("/" + dest_key).end().wait(TIMEOUT).read() == sources[key]
    c.deleteAll(c.listAll({"prefix": base})).wait(TIMEOUT)


def test_delete_all_from_an_iterator_is_eager(seeded: Seeded, style: str) -> None:
    """Deleting starts at the call: nobody waits, listens or runs the loop until it is done."""
    c = seeded.client(style)
    prefix = f"eager-{uuid.uuid4().hex[:6]}/"
    put_all(c, {f"{prefix}k{i:03d}": b"x" * i for i in range(40)})
    op = c.deleteAll({"Key": f"{prefix}k{i:03d}"} for i in range(40))  # a generator of entries
    deadline = time.monotonic() + 20
    while keys_under(c, prefix):  # the iterator form needs no loop
        assert time.monotonic() < deadline, "deleteAll did not start before anyone waited"
        time.sleep(0.05)
    assert not op.done  # settling waits for the loop ...
    knoxpy.run(timeout=TIMEOUT)  # ... which delivers it here
    assert op.done and op.wait() == {"deleted": 40, "errors": []}


def test_copy_all_uses_upload_part_copy_for_big_objects(seeded: Seeded, style: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knoxpy.bulk, "MULTIPART_COPY_THRESHOLD", 5 * MIB)
    monkeypatch.setattr(knoxpy.bulk, "MULTIPART_COPY_PART_SIZE", 5 * MIB)
    c = seeded.client(style)
    tag = uuid.uuid4().hex[:6]
    big = os.urandom(12 * MIB)
    headers = {"Content-Type": "application/x-knoxpy", "x-amz-meta-origin": "bulk-test",
               "Cache-Control": "max-age=60"}
    assert c.putBuffer(big, f"/big-{tag}/big.bin", headers).wait(TIMEOUT).statusCode == 200
    assert c.putBuffer(b"small", f"/big-{tag}/small.txt").wait(TIMEOUT).statusCode == 200
    copied: List[Dict[str, str]] = []
    op = c.copyAll(f"big-{tag}/", {"prefix": f"bigcopy-{tag}/"}).on("copied", copied.append)
    assert op.wait(TIMEOUT) == {"copied": 2, "errors": []}
    etags = {e["Key"].rsplit("/", 1)[1]: e["ETag"] for e in copied}
    assert etags["big.bin"].endswith('-3"')  # 5 + 5 + 2 MiB parts
    assert etags["small.txt"] == md5_etag(b"small")  # one CopyObject below the threshold
    res = c.get(f"/bigcopy-{tag}/big.bin").end().wait(TIMEOUT)
    assert res.read() == big
    assert res.headers["content-type"] == "application/x-knoxpy"
    assert res.headers["x-amz-meta-origin"] == "bulk-test"
    assert res.headers["cache-control"] == "max-age=60"
    deleted = c.deleteAll([f"big-{tag}/big.bin", f"big-{tag}/small.txt",
                           f"bigcopy-{tag}/big.bin", f"bigcopy-{tag}/small.txt"]).wait(TIMEOUT)
    assert deleted == {"deleted": 4, "errors": []}


# -- against the fault server --------------------------------------------------------------
make = fault_client


def seed(srv: S3Server, n: int, prefix: str = "p/", bucket: str = "bkt") -> List[str]:
    keys = [f"{prefix}k{i:04d}" for i in range(n)]
    for key in keys:
        srv.put(bucket, key, key.encode())
    return keys


def stored(srv: S3Server, bucket: str = "bkt") -> List[str]:
    return list(srv.buckets[bucket].keys()) if bucket in srv.buckets else []


def is_list(r: Any) -> bool:
    return bool(r.method == "GET" and "list-type" in r.query)


def is_delete(r: Any) -> bool:
    return bool(r.method == "POST" and "delete" in r.query)


def copy_of(key: str) -> Callable[[Any], bool]:
    return lambda r: bool(r.method == "PUT"
                          and r.headers.get("x-amz-copy-source", "").endswith("/" + key))


def test_delete_all_sends_batches_of_at_most_1000(srv: S3Server) -> None:
    keys = seed(srv, 2500)
    assert make(srv).deleteAll(keys).wait(TIMEOUT) == {"deleted": 2500, "errors": []}
    batches = [r for r in srv.requests if is_delete(r)]
    assert sorted(r.body.count(b"<Object>") for r in batches) == [500, 1000, 1000]
    assert all(r.headers.get("content-md5") for r in batches)  # S3 requires it
    assert stored(srv) == []


def test_delete_all_reports_per_key_errors_and_succeeds(srv: S3Server) -> None:
    keys = seed(srv, 30)
    refused = [keys[3], keys[17]]
    srv.inject("delete_errors", keys=refused, code="AccessDenied")
    key_errors: List[Dict[str, str]] = []
    errors: List[Any] = []
    op = make(srv).deleteAll(keys).on("keyError", key_errors.append).on("error", errors.append)
    result = op.wait(TIMEOUT)
    want = [{"Key": k, "Code": "AccessDenied", "Message": "Access Denied"} for k in refused]
    assert result == {"deleted": 28, "errors": want}
    assert key_errors == want and errors == []
    assert stored(srv) == refused  # S3 kept what it refused


def test_slowdown_bursts_on_list_pages_and_delete_batches_are_retried(srv: S3Server) -> None:
    seed(srv, 2500)
    srv.inject("status", count=2, match=is_list, status=503, code="SlowDown")
    srv.inject("status", count=2, match=is_delete, status=503, code="SlowDown")
    c = make(srv)
    retries: List[Dict[str, Any]] = []
    op = c.deleteAll(c.listAll({"prefix": "p/"})).on("retry", retries.append)
    assert op.wait(TIMEOUT) == {"deleted": 2500, "errors": []}
    assert len(retries) == 4 and all(r["reason"] == "503 SlowDown" for r in retries)
    assert stored(srv) == []

    # a listing that flows emits its own 'retry' events
    seed(srv, 1200)
    srv.inject("status", count=1, match=is_list, status=503, code="SlowDown")
    own: List[Dict[str, Any]] = []
    listing = c.listAll({"prefix": "p/"}).on("retry", own.append)
    assert listing.on("data", lambda e: None).wait(TIMEOUT) == 1200
    assert [(r["reason"], r["attempt"]) for r in own] == [("503 SlowDown", 1)]


def test_error_in_200_on_a_copy_is_retried(srv: S3Server) -> None:
    keys = seed(srv, 5)
    srv.inject("error_in_200", count=1, match=copy_of(keys[2]), code="InternalError")
    retries: List[Dict[str, Any]] = []
    op = make(srv).copyAll("p/", {"prefix": "q/"}).on("retry", retries.append)
    assert op.wait(TIMEOUT) == {"copied": 5, "errors": []}
    assert [r["reason"] for r in retries] == ["200 InternalError"]
    assert stored(srv) == keys + ["q/" + k[2:] for k in keys]
    assert sum(1 for r in srv.requests if copy_of(keys[2])(r)) == 2


def test_a_copy_whose_source_is_gone_is_a_per_key_error(srv: S3Server) -> None:
    keys = seed(srv, 6)
    gone = keys[3]
    # The first copy is held until the test has deleted a key the listing already returned.
    srv.inject("gate", count=1, match=copy_of(keys[0]), name="first copy")
    key_errors: List[Dict[str, str]] = []
    op = make(srv, concurrency=1).copyAll("p/", {"bucket": "other"})
    op.on("keyError", key_errors.append)
    assert srv.wait_held("first copy"), "copyAll did not start before anyone waited"
    srv.buckets["bkt"].delete(gone)
    srv.release("first copy")
    result = op.wait(TIMEOUT)
    assert result["copied"] == 5
    assert result["errors"] == key_errors == [
        {"Key": gone, "DestKey": gone, "Code": "NoSuchKey",
         "Message": "The specified key does not exist."}]
    assert stored(srv, "other") == [k for k in keys if k != gone]


def test_a_listing_that_fails_for_good_is_an_s3_error(srv: S3Server) -> None:
    seed(srv, 10)
    c = make(srv, maxRetries=1)

    def fail_lists() -> None:
        srv.clear_faults()
        srv.inject("status", count=100, match=is_list, status=500, code="InternalError")

    fail_lists()
    with pytest.raises(knoxpy.S3Error) as info:
        list(c.listAll({"prefix": "p/"}))
    assert (info.value.code, info.value.statusCode) == ("InternalError", 500)
    assert info.value.requestId  # from the answer, to quote to AWS
    assert sum(1 for r in srv.requests if is_list(r)) == 2  # tried, retried once, gave up

    fail_lists()
    errors: List[BaseException] = []
    listing = c.listAll({"prefix": "p/"}).on("data", lambda e: None).on("error", errors.append)
    with pytest.raises(knoxpy.S3Error):
        listing.wait(TIMEOUT)
    assert [e.code for e in errors] == ["InternalError"]  # type: ignore[attr-defined]

    for start in (lambda: c.deleteAll(c.listAll({"prefix": "p/"})),
                  lambda: c.copyAll("p/", {"prefix": "q/"})):
        fail_lists()
        with pytest.raises(knoxpy.S3Error, match="InternalError"):
            start().wait(TIMEOUT)
    assert stored(srv) == seed(srv, 10)  # nothing was deleted or copied


@pytest.mark.parametrize("fault, params, words", [
    ("bad_xml", {}, "malformed XML"),
    ("bad_xml", {"body": b"<Nonsense/>"}, "got <Nonsense>"),
    ("hostile_xml", {"kind": "billion_laughs"}, "DTD"),
    ("hostile_xml", {"kind": "external_entity"}, "DTD"),
])
def test_a_broken_or_hostile_listing_is_a_clear_error(srv: S3Server, fault: str,
                                                      params: Dict[str, Any], words: str) -> None:
    seed(srv, 3)
    c = make(srv)
    for consume in (lambda: list(c.listAll({"prefix": "p/"})),
                    lambda: c.listAll({"prefix": "p/"}).wait(TIMEOUT),
                    lambda: c.copyAll("p/", {"prefix": "q/"}).wait(TIMEOUT)):
        srv.inject(fault, count=1, match=is_list, **params)
        with pytest.raises(MalformedXML, match=words) as info:
            consume()
        assert isinstance(info.value, knoxpy.KnoxError)
        assert "ListBucketResult" in str(info.value)  # refused at its DTD: never expanded
    assert stored(srv) == seed(srv, 3)


def test_a_part_copy_that_keeps_failing_aborts_the_upload(srv: S3Server,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knoxpy.bulk, "MULTIPART_COPY_THRESHOLD", 5 * MIB)
    monkeypatch.setattr(knoxpy.bulk, "MULTIPART_COPY_PART_SIZE", 5 * MIB)
    srv.put("bkt", "p/big", os.urandom(12 * MIB), content_type="text/x-big")
    srv.put("bkt", "p/small", b"small")
    srv.inject("status", count=100, status=500, code="InternalError",
               match=lambda r: r.method == "PUT" and r.query.get("partNumber") == "2")
    key_errors: List[Dict[str, str]] = []
    op = make(srv, maxRetries=1).copyAll("p/", {"prefix": "q/"}).on("keyError", key_errors.append)
    result = op.wait(TIMEOUT)
    assert result["copied"] == 1
    assert [(e["Key"], e["DestKey"], e["Code"]) for e in result["errors"]] == [
        ("p/big", "q/big", "InternalError")]
    assert key_errors == result["errors"]
    assert srv.buckets["bkt"].uploads == {}  # aborted: no orphaned parts
    assert any(r.method == "DELETE" and "uploadId" in r.query for r in srv.requests)
    assert stored(srv) == ["p/big", "p/small", "q/small"]


def test_upload_part_copy_sends_ranges_guarded_by_the_source_etag(
        srv: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knoxpy.bulk, "MULTIPART_COPY_THRESHOLD", 5 * MIB)
    monkeypatch.setattr(knoxpy.bulk, "MULTIPART_COPY_PART_SIZE", 5 * MIB)
    data = os.urandom(12 * MIB)
    src = srv.put("bkt", "p/big", data, content_type="text/x-big", x_amz_meta_a="1")
    assert make(srv).copyAll("p/", {"bucket": "dst"}).wait(TIMEOUT) == {"copied": 1, "errors": []}
    parts = [r for r in srv.requests if r.method == "PUT" and "partNumber" in r.query]
    parts.sort(key=lambda r: int(r.query["partNumber"]))
    assert [r.headers["x-amz-copy-source-range"] for r in parts] == [
        f"bytes=0-{5 * MIB - 1}", f"bytes={5 * MIB}-{10 * MIB - 1}",
        f"bytes={10 * MIB}-{12 * MIB - 1}"]
    assert {r.headers["x-amz-copy-source-if-match"] for r in parts} == {src.etag}
    copy = srv.buckets["dst"].objects["p/big"]
    assert copy.data == data
    assert copy.meta == {"content-type": "text/x-big", "x-amz-meta-a": "1"}


def test_concurrency_bounds_the_batches_in_flight(srv: S3Server) -> None:
    """Five batches, concurrency 2: the server holds every batch until the test lets one go,
    so two are in flight at once, the third comes only once one is answered, never three."""
    keys = seed(srv, 5000)
    srv.inject("gate", count=5, match=is_delete, name="batches")
    in_flight: List[int] = []

    def let_one_go_at_a_time() -> None:
        for left in range(5, 0, -1):
            if not srv.wait_held("batches", min(2, left)):
                break  # fewer in flight than concurrency allows: the assertion below says so
            in_flight.append(srv.held("batches"))
            srv.release("batches", 1)
        srv.release("batches")

    driver = threading.Thread(target=let_one_go_at_a_time)
    driver.start()
    assert make(srv, concurrency=2).deleteAll(keys).wait(TIMEOUT)["deleted"] == 5000
    driver.join(TIMEOUT)
    assert in_flight == [2, 2, 2, 2, 1]
    assert srv.most_held("batches") == 2


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "8"])
def test_concurrency_must_be_a_positive_integer(srv: S3Server, bad: Any) -> None:
    c = make(srv, concurrency=bad)
    for op in (c.deleteAll(["a"]), c.copyAll("p/", {"prefix": "q/"})):  # neither raises inline
        with pytest.raises(knoxpy.ValidationError, match="concurrency must be a positive integer"):
            op.wait(TIMEOUT)
    assert srv.requests == []


@pytest.mark.parametrize("keys", ["p/k0000", b"p/k0000", {"Key": "p/k0000"}, 42, None])
def test_delete_all_refuses_what_is_not_a_collection_of_keys(srv: S3Server, keys: Any) -> None:
    seed(srv, 1)
    with pytest.raises(knoxpy.ValidationError, match="keys must be a list"):
        make(srv).deleteAll(keys).wait(TIMEOUT)
    assert stored(srv) == ["p/k0000"]


def test_copy_all_refuses_to_copy_onto_itself(srv: S3Server) -> None:
    c = make(srv)
    for args in (("p/", {}), ("p/", {"bucket": "bkt", "prefix": "p/"}), (5, {"prefix": "q/"}),
                 ("p/", "q/")):
        with pytest.raises(knoxpy.ValidationError, match="copyAll"):
            c.copyAll(*args).wait(TIMEOUT)


def test_copy_all_into_its_own_prefix_does_not_copy_the_copies(srv: S3Server) -> None:
    # The copies sort after the source keys: later pages list them, and they are skipped.
    keys = seed(srv, 2100)
    assert make(srv).copyAll("p/", {"prefix": "p/z-backup/"}).wait(TIMEOUT) == {
        "copied": 2100, "errors": []}
    assert stored(srv) == keys + ["p/z-backup/" + k[2:] for k in keys]


def test_copy_all_into_its_own_prefix_copies_keys_already_there(srv: S3Server) -> None:
    """Keys under the destination that copyAll did not write are sources like any other;
    the copies, listed in later pages, are not copied again."""
    keys = seed(srv, 2100, prefix="p/a")
    srv.put("bkt", "p/m/x", b"was there")
    srv.put("bkt", "p/z", b"after")
    copied: List[Dict[str, str]] = []
    op = make(srv).copyAll("p/", {"prefix": "p/m/"}).on("copied", copied.append)
    assert op.wait(TIMEOUT) == {"copied": 2102, "errors": []}
    assert sorted(e["Key"] for e in copied) == keys + ["p/m/x", "p/z"]
    assert stored(srv) == sorted(keys + ["p/m/" + k[2:] for k in keys]
                                 + ["p/m/m/x", "p/m/x", "p/m/z", "p/z"])
    assert srv.buckets["bkt"].objects["p/m/m/x"].data == b"was there"


def test_copy_all_into_a_shorter_prefix_does_not_copy_its_copies(srv: S3Server) -> None:
    """copyAll('p/ab', {'prefix': 'p/a'}) sends p/abbc0000 to p/abc0000, under the source
    prefix and after it: the third page lists those copies, and they are not copied again
    (the first page is consumed, so its copies are made, before the third is asked for)."""
    keys = seed(srv, 2100, prefix="p/abbc")
    assert make(srv).copyAll("p/ab", {"prefix": "p/a"}).wait(TIMEOUT) == {
        "copied": 2100, "errors": []}
    assert stored(srv) == keys + ["p/abc" + k[len("p/abbc"):] for k in keys]


def test_max_keys_sets_the_page_size(srv: S3Server) -> None:
    keys = seed(srv, 2500)
    assert [e["Key"] for e in make(srv).listAll({"prefix": "p/", "max-keys": 100})] == keys
    pages = [r for r in srv.requests if is_list(r)]
    assert len(pages) == 25 and {r.query["max-keys"] for r in pages} == {"100"}
    assert [r.query.get("continuation-token") is None for r in pages] == [True] + [False] * 24


def test_breaking_out_of_the_iterator_stops_fetching(srv: S3Server) -> None:
    seed(srv, 2500)
    listing = make(srv).listAll({"prefix": "p/", "max-keys": 100})
    for entry in listing:
        assert entry["Key"] == "p/k0000"
        break
    with listing._cond:  # the fetcher returns once the read-ahead is full: no thread left behind
        assert listing._cond.wait_for(lambda: not listing._fetching, TIMEOUT)
    pages = sum(1 for r in srv.requests if is_list(r))
    assert knoxpy.bulk.READ_AHEAD_PAGES == 2
    assert pages <= 3  # the read-ahead (and a page being fetched), not all 25 pages
    time.sleep(0.3)
    assert sum(1 for r in srv.requests if is_list(r)) == pages
    assert next(listing)["Key"] == "p/k0001"  # and it can go on later


def test_pause_stops_the_flow_and_fetching_resume_goes_on(srv: S3Server) -> None:
    seed(srv, 2500)
    listing = make(srv).listAll({"prefix": "p/", "max-keys": 100})
    seen: List[str] = []

    def ondata(entry: Dict[str, Any]) -> None:
        seen.append(entry["Key"])
        if len(seen) == 150:
            listing.pause()

    listing.on("data", ondata)
    knoxpy.run(timeout=TIMEOUT)  # returns: a paused listing with a full read-ahead is idle
    assert len(seen) == 150 and listing.isPaused()
    pages = sum(1 for r in srv.requests if is_list(r))
    assert pages <= 4  # the page being delivered, the read-ahead, one on its way
    time.sleep(0.2)
    assert sum(1 for r in srv.requests if is_list(r)) == pages  # backpressure holds
    assert listing.resume().wait(TIMEOUT) == 2500
    assert seen == [f"p/k{i:04d}" for i in range(2500)]


def test_pipe_pauses_until_drain(srv: S3Server) -> None:
    seed(srv, 1200)

    class Slow(knoxpy.Emitter):
        """A writable that takes 100 entries, then asks the source to wait for 'drain'."""

        def __init__(self) -> None:
            super().__init__()
            self.got: List[str] = []
            self.ended = False

        def write(self, entry: Dict[str, Any]) -> bool:
            self.got.append(entry["Key"])
            if len(self.got) % 100:
                return True
            self._loop.call_soon(self.emit, "drain")
            return False

        def end(self) -> None:
            self.ended = True

    sink = Slow()
    listing = make(srv).listAll({"prefix": "p/"})
    assert listing.pipe(sink) is sink
    assert listing.wait(TIMEOUT) == 1200
    assert sink.got == [f"p/k{i:04d}" for i in range(1200)] and sink.ended


# -- CONTRACT §2 --------------------------------------------------------------------------
def test_no_event_before_the_call_returns(srv: S3Server) -> None:
    keys = seed(srv, 20)
    c = make(srv)
    calls: List[str] = []
    c.deleteAll(keys[:10], lambda err, res: calls.append(f"delete {err} {res}"))
    c.copyAll("p/", {"prefix": "q/"}, lambda err, res: calls.append(f"copy {err} {res}")) \
        .on("copied", lambda e: calls.append("copied"))
    c.listAll({"prefix": "p/"}).on("data", lambda e: calls.append("data"))
    c.deleteAll("not a list", lambda err, res: calls.append(f"invalid {type(err).__name__}"))
    time.sleep(0.5)  # the work is done on workers by now ...
    assert calls == []  # ... but only the loop delivers
    knoxpy.run(timeout=TIMEOUT)
    assert "invalid ValidationError" in calls and "data" in calls and "copied" in calls
    assert sum(1 for x in calls if x.startswith(("delete None {", "copy None {"))) == 2


def test_the_callback_form_with_run(seeded: Seeded) -> None:
    c = seeded.client("path")
    results: List[Tuple[Any, Any]] = []
    c.copyAll(SRC + "special/", {"prefix": "cb/"}, lambda err, res: results.append((err, res)))
    knoxpy.run(timeout=TIMEOUT)
    assert results == [(None, {"copied": len(SPECIAL), "errors": []})]
    c.deleteAll(c.listAll({"prefix": "cb/"}), lambda err, res: results.append((err, res)))
    knoxpy.run(timeout=TIMEOUT)
    assert results[1] == (None, {"deleted": len(SPECIAL), "errors": []})

    # a failure goes to the callback, and is not raised again from run()
    c.copyAll(SRC + "special/", {"bucket": "knoxpy-no-such-bucket-" + uuid.uuid4().hex[:6]},
              lambda err, res: results.append((err, res)))
    knoxpy.run(timeout=TIMEOUT)
    err, res = results[2]
    assert res is None and isinstance(err, knoxpy.S3Error) and err.code == "NoSuchBucket"


def test_an_error_nobody_listens_for_raises_from_run(seeded: Seeded, srv: S3Server) -> None:
    c = seeded.client("path")
    c.copyAll(SRC + "special/", {"bucket": "knoxpy-no-such-bucket-" + uuid.uuid4().hex[:6]})
    with pytest.raises(knoxpy.S3Error, match="NoSuchBucket"):
        knoxpy.run(timeout=TIMEOUT)

    seed(srv, 3)
    srv.inject("bad_xml", count=1, match=is_list)
    make(srv).listAll({"prefix": "p/"}).on("data", lambda e: None)  # no 'error' listener
    with pytest.raises(MalformedXML):
        knoxpy.run(timeout=TIMEOUT)
    knoxpy.run(timeout=TIMEOUT)  # nothing left behind


def test_awaitable_inside_asyncio(srv: S3Server) -> None:
    keys = seed(srv, 1200)

    async def main() -> Tuple[int, Any, Any]:
        c = make(srv)
        n = await c.listAll({"prefix": "p/"})
        copied = await c.copyAll("p/", {"prefix": "q/"})
        deleted = await c.deleteAll(c.listAll({"prefix": "p/"}))
        return n, copied, deleted

    n, copied, deleted = asyncio.run(main())
    assert n == len(keys)
    assert copied == {"copied": 1200, "errors": []}
    assert deleted == {"deleted": 1200, "errors": []}
    assert stored(srv) == ["q/" + k[2:] for k in keys]


def test_the_iterator_works_from_any_thread(srv: S3Server) -> None:
    keys = seed(srv, 1500)
    listing = make(srv).listAll({"prefix": "p/"})
    got: List[str] = []
    t = threading.Thread(target=lambda: got.extend(e["Key"] for e in listing))
    t.start()
    t.join(TIMEOUT)
    assert got == keys
