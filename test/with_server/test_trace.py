"""The request trace (knoxpy.trace): HAR 1.2, and the waterfall page in a real browser.

The HAR check below is written from the HAR 1.2 spec (W3C Web Performance WG draft,
"HTTP Archive (HAR) format"): every required field, with its type; custom fields only
with a leading underscore.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from conftest import fault_client, moto_options

import knoxpy

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# -- HAR 1.2, as the spec lists it ----------------------------------------------------------
_LOG = {"version": str, "creator": dict, "entries": list}
_LOG_OPTIONAL = {"browser": dict, "pages": list, "comment": str}
_ENTRY = {"startedDateTime": str, "time": (int, float), "request": dict, "response": dict,
          "cache": dict, "timings": dict}
_ENTRY_OPTIONAL = {"pageref": str, "serverIPAddress": str, "connection": str, "comment": str}
_REQUEST = {"method": str, "url": str, "httpVersion": str, "cookies": list, "headers": list,
            "queryString": list, "headersSize": int, "bodySize": int}
_REQUEST_OPTIONAL = {"postData": dict, "comment": str}
_RESPONSE = {"status": int, "statusText": str, "httpVersion": str, "cookies": list,
             "headers": list, "content": dict, "redirectURL": str, "headersSize": int,
             "bodySize": int}
_RESPONSE_OPTIONAL = {"comment": str}
_CONTENT = {"size": int, "mimeType": str}
_CONTENT_OPTIONAL = {"compression": int, "text": str, "encoding": str, "comment": str}
_PAGE = {"startedDateTime": str, "id": str, "title": str, "pageTimings": dict}


def _fields(obj: Any, required: Dict[str, Any], optional: Dict[str, Any], where: str) -> None:
    assert isinstance(obj, dict), f"{where} is not an object"
    for name, kind in required.items():
        assert name in obj, f"{where}.{name} is missing"
        value = obj[name]
        assert isinstance(value, kind) and not isinstance(value, bool), (
            f"{where}.{name} is {type(value).__name__}, not {kind}")
    for name, value in obj.items():
        if name in required:
            continue
        assert name in optional or name.startswith("_"), f"{where}.{name}: not in HAR 1.2"
        if name in optional:
            assert isinstance(value, optional[name]), f"{where}.{name} has the wrong type"


def _date(text: str, where: str) -> _dt.datetime:
    # ISO 8601 with a time zone (YYYY-MM-DDThh:mm:ss.sTZD); 3.10's parser takes no "Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", text), where
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _pairs(items: Any, where: str) -> None:
    assert isinstance(items, list), where
    for i, pair in enumerate(items):
        _fields(pair, {"name": str, "value": str}, {"comment": str}, f"{where}[{i}]")


def check_har(har: Any) -> List[Dict[str, Any]]:
    """Assert ``har`` is a HAR 1.2 document; return its entries."""
    _fields(har, {"log": dict}, {}, "har")
    log = har["log"]
    _fields(log, _LOG, _LOG_OPTIONAL, "log")
    assert log["version"] == "1.2"
    _fields(log["creator"], {"name": str, "version": str}, {"comment": str}, "log.creator")
    pages = set()
    for i, page in enumerate(log.get("pages", [])):
        _fields(page, _PAGE, {"comment": str}, f"log.pages[{i}]")
        _date(page["startedDateTime"], f"log.pages[{i}].startedDateTime")
        pages.add(page["id"])
    for i, e in enumerate(log["entries"]):
        where = f"log.entries[{i}]"
        _fields(e, _ENTRY, _ENTRY_OPTIONAL, where)
        _date(e["startedDateTime"], where + ".startedDateTime")
        if "pageref" in e and "pages" in log:
            assert e["pageref"] in pages, f"{where}.pageref names no page"
        req, res = e["request"], e["response"]
        _fields(req, _REQUEST, _REQUEST_OPTIONAL, where + ".request")
        _fields(res, _RESPONSE, _RESPONSE_OPTIONAL, where + ".response")
        _fields(res["content"], _CONTENT, _CONTENT_OPTIONAL, where + ".response.content")
        for part in ("headers", "queryString"):
            _pairs(req[part], f"{where}.request.{part}")
        _pairs(res["headers"], f"{where}.response.headers")
        assert req["cookies"] == [] and res["cookies"] == []
        t = e["timings"]
        _fields(t, {"send": (int, float), "wait": (int, float), "receive": (int, float)},
                {"blocked": (int, float), "dns": (int, float), "connect": (int, float),
                 "ssl": (int, float), "comment": str}, where + ".timings")
        for name in ("send", "wait", "receive"):
            assert t[name] >= 0, f"{where}.timings.{name} < 0"
        for name in ("blocked", "dns", "connect", "ssl"):
            assert t.get(name, -1) == -1 or t[name] >= 0, f"{where}.timings.{name}"
        if t.get("ssl", -1) >= 0:  # "the time is also included in the connect field"
            assert t["connect"] >= t["ssl"]
        total = sum(t.get(n, -1) for n in ("blocked", "dns", "connect", "send", "wait",
                                           "receive") if t.get(n, -1) > 0)
        assert abs(e["time"] - total) < 0.01, f"{where}.time is not the sum of its timings"
    return list(log["entries"])


def page_data(page: Path) -> Any:
    """The HAR embedded in a page written by knoxpy.trace."""
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text.split('<script type="application/json"')[0]  # self-contained
    found = re.search(r'<script type="application/json" id="har">(.*?)</script>', text, re.S)
    assert found is not None
    return json.loads(found.group(1))


# -- a demo-sized run ----------------------------------------------------------------------
def demo_run(client: Any, tmp: Path) -> None:
    """What `make demo` does, in small: knox's verbs, then uploads, downloads, listings."""
    client.put("/t/obj.json", {"Content-Length": 13, "Content-Type": "application/json"}
               ).end('{"foo":"bar"}').wait()
    readme = tmp / "Readme.md"
    readme.write_text("# knoxpy\n" * 50)
    client.putFile(str(readme), "/t/Readme.md").wait()
    assert client.getFile("/t/Readme.md").wait().read() == readme.read_bytes()
    client.copy("/t/Readme.md", "/t/Copy.md").end().wait()
    client.head("/t/Copy.md").end().wait()
    data = os.urandom(11 * MIB)
    client.upload(data, "/t/big.bin", partSize=5 * MIB, concurrency=2).wait()
    client.download("/t/big.bin", str(tmp / "big.bin"), partSize=5 * MIB).wait()
    assert (tmp / "big.bin").read_bytes() == data
    for i in range(3):
        client.put(f"/t/many/{i}", {"Content-Length": 1}).end("x").wait()
    assert len(list(client.listAll({"prefix": "t/many/"}))) == 3
    client.deleteMultiple(["/t/obj.json", "/t/Copy.md"], lambda err, res: None).wait()
    client.deleteAll(client.listAll({"prefix": "t/"})).wait()


def test_a_demo_sized_run_is_valid_har_and_its_page_round_trips(
        moto_port: int, bucket: str, tmp_path: Path) -> None:
    har_path = tmp_path / "run.har"
    client = knoxpy.createClient(moto_options(moto_port, bucket, trace=str(har_path)))
    demo_run(client, tmp_path)
    assert client.trace.save() == str(har_path)
    har = json.loads(har_path.read_text(encoding="utf-8"))
    entries = check_har(har)
    calls = [e["_knoxpy"]["call"] for e in entries]
    for name in ("putFile", "getFile", "upload", "download", "listAll", "deleteAll"):
        assert name in calls, (name, sorted(set(calls)))
    parts = sorted(e["_knoxpy"]["part"] for e in entries if "part" in e["_knoxpy"])
    assert parts == [1, 2, 3]
    assert all(e["response"]["status"] < 300 for e in entries)
    signing = entries[0]["_knoxpy"]["signing"]
    assert signing["canonical_request"].startswith("PUT\n")
    assert "AWS4-HMAC-SHA256" in signing["string_to_sign"]
    assert [s[0] for s in signing["key_steps"]] == ["kDate", "kRegion", "kService", "kSigning"]
    # the CLI turns the HAR into the page, and the page carries every entry unchanged
    page = tmp_path / "run.html"
    done = subprocess.run([sys.executable, "-m", "knoxpy", "trace", str(har_path), "-o",
                           str(page)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert f"{len(entries)} requests" in done.stdout
    assert page_data(page) == har


def test_every_request_the_server_saw_is_an_entry(srv: Any, tmp_path: Path) -> None:
    client = fault_client(srv, trace=str(tmp_path / "run.har"))
    demo_run(client, tmp_path)
    entries = check_har(json.loads(Path(client.trace.save()).read_text()))
    seen = [(r.method, r.path) for r in srv.requests]
    traced = [(e["request"]["method"], e["request"]["url"].split(f":{srv.port}", 1)[1])
              for e in entries]
    assert sorted(traced) == sorted(seen)
    assert len(entries) == len(seen) >= 20


def test_a_retry_and_a_redirect_name_what_they_follow(srv: Any, tmp_path: Path,
                                                      forget_learned: None) -> None:
    srv.inject("status", status=503, code="SlowDown", match="PUT /bkt/a")
    srv.inject("redirect", kind="region", region="eu-west-1", match="GET /bkt/a")
    got: List[Dict[str, Any]] = []
    client = fault_client(srv, trace=got.append)  # a callable gets each finished entry
    client.put("/a", {"Content-Length": 1}).end("x").wait()
    client.get("/a").end().wait().read()
    check_har({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
                       "entries": got}})
    (put503, put, get400, get) = got
    assert put503["response"]["status"] == 503
    assert put["_knoxpy"]["retryOf"] == put503["_knoxpy"]["id"]
    assert put["_knoxpy"]["retryReason"] and put["_knoxpy"]["attempt"] == 2
    assert get400["response"]["status"] == 400
    assert get["_knoxpy"]["redirectFrom"] == {"entry": get400["_knoxpy"]["id"],
                                              "region": "us-east-1", "to": "eu-west-1",
                                              "status": 400}


def test_memory_is_bounded_the_oldest_summarised(srv: Any) -> None:
    from knoxpy.trace import Recorder

    recorder = Recorder(os.devnull, max_entries=3)
    client = fault_client(srv, trace=recorder)
    for i in range(5):
        client.put(f"/k{i}", {"Content-Length": 1}).end("x").wait()
    log = recorder.har()["log"]
    assert [e["request"]["url"][-2:] for e in log["entries"]] == ["k2", "k3", "k4"]
    assert log["_knoxpy"]["summarised"]["entries"] == 2
    assert log["_knoxpy"]["summarised"]["statuses"] == {"200": 2}


def test_no_secret_reaches_either_file(srv: Any, tmp_path: Path) -> None:
    secret, token = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY", "FQoGZXIvYXdzEXAMPLE/TOKEN+x="
    import base64
    import hashlib

    raw_key = b"0123456789abcdef0123456789abcdef"
    sse_key = base64.b64encode(raw_key).decode()
    sse = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
           "x-amz-server-side-encryption-customer-key": sse_key,
           "x-amz-server-side-encryption-customer-key-MD5":
               base64.b64encode(hashlib.md5(raw_key).digest()).decode()}
    har_path, page = tmp_path / "s.har", tmp_path / "s.html"
    client = fault_client(srv, secret=secret, token=token, trace=str(har_path))
    assert client.put("/enc", dict(sse, **{"Content-Length": 1})).end("x").wait(
        ).statusCode == 200
    assert client.get("/enc", sse).end().wait().read() == b"x"
    client.upload(os.urandom(6 * MIB), "/big", sse, partSize=5 * MIB).wait()
    client.trace.save()
    client.trace.save(str(page))
    signatures = [re.search(r"Signature=([0-9a-f]{64})", r.headers["authorization"]).group(1)
                  for r in srv.requests]  # type: ignore[union-attr]
    assert len(signatures) == len(srv.requests) >= 5
    import urllib.parse

    for path in (har_path, page):
        text = path.read_text(encoding="utf-8")
        for value in (secret, token, sse_key, *signatures):
            for form in {value, urllib.parse.quote(value, safe=""), json.dumps(value)[1:-1]}:
                assert form not in text, (path.name, value)
    entries = check_har(json.loads(har_path.read_text()))
    headers = {h["name"].lower(): h["value"] for h in entries[0]["request"]["headers"]}
    assert headers["x-amz-security-token"] == "<session token>"
    assert headers["x-amz-server-side-encryption-customer-key"] == "<SSE-C key>"
    assert headers["authorization"].endswith("Signature=<masked>")
    assert "<session token>" in entries[0]["_knoxpy"]["signing"]["canonical_request"]


def test_presigned_query_parameters_are_masked() -> None:
    from knoxpy.trace import mask_url

    url = mask_url("https://b.s3.amazonaws.com/k?X-Amz-Credential=AKID%2F2026&"
                   "X-Amz-Signature=abcdef&X-Amz-Security-Token=TOK&partNumber=1")
    assert "AKID" not in url and "abcdef" not in url and "TOK" not in url
    assert "partNumber=1" in url


def test_the_cli_writes_a_trace_page_directly(srv: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("hello")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID="AKID", AWS_SECRET_ACCESS_KEY="s3cr3t")
    page = tmp_path / "cli.html"
    done = subprocess.run(
        [sys.executable, "-m", "knoxpy", "--endpoint-url", f"http://127.0.0.1:{srv.port}",
         "--trace", str(page), "put", "f.txt", "s3://bkt/f.txt"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert f"trace written to {page}" in done.stderr
    entries = check_har(page_data(page))
    assert [(e["request"]["method"], e["response"]["status"]) for e in entries][-1] == (
        "PUT", 200)
    assert "s3cr3t" not in page.read_text()


def test_a_har_that_is_not_one_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.har"
    bad.write_text('{"entries": []}')
    done = subprocess.run([sys.executable, "-m", "knoxpy", "trace", str(bad)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert "not a HAR file" in done.stderr


# -- the page in a real browser ------------------------------------------------------------
def _chromium() -> tuple[str, str]:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no headless browser here: install Debian's chromium and chromium-driver "
                    "(.ci/run does) to test the trace page")
    return browser, driver


@pytest.fixture
def browser() -> Iterator[Any]:
    chrome, driver_path = _chromium()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


class _PartsTogether:
    """The fault server, holding each of the first two part PUTs until both have arrived:
    the upload's parts are then in flight at once, whatever the machine's load."""

    def __init__(self, srv: Any) -> None:
        self.barrier = threading.Barrier(2, timeout=60)
        self.held = 0
        route = srv._route

        def held_route(req: Any) -> None:
            if req.method == "PUT" and "partNumber=" in req.path and self.held < 2:
                self.held += 1
                self.barrier.wait()
            route(req)

        srv._route = held_route


def test_the_page_shows_parallel_parts_a_retry_and_signing_steps(
        srv: Any, tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _PartsTogether(srv)
    srv.inject("status", status=503, code="SlowDown", match="partNumber=3")
    page = tmp_path / "upload.html"
    client = fault_client(srv, trace=str(page))
    client.upload(os.urandom(11 * MIB), "/big.bin", partSize=5 * MIB, concurrency=3).wait()
    client.trace.save()
    entries = check_har(page_data(page))

    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-rendered"))
    rows = browser.find_elements(By.CSS_SELECTOR, ".row")
    assert len(rows) == len(entries) == 6  # initiate, 3 parts, a retry, complete
    assert browser.find_element(By.CSS_SELECTOR, ".call").text.startswith("upload")

    def row_of(part: int, attempt: int = 1) -> Any:
        entry = next(e for e in entries if e["_knoxpy"].get("part") == part
                     and e["_knoxpy"]["attempt"] == attempt)
        return browser.find_element(By.ID, f"e-{entry['_knoxpy']['id']}"), entry

    (one, _), (two, _) = row_of(1), row_of(2)
    bar1 = one.find_element(By.CSS_SELECTOR, ".bar").rect
    bar2 = two.find_element(By.CSS_SELECTOR, ".bar").rect
    assert bar1["x"] < bar2["x"] + bar2["width"] and bar2["x"] < bar1["x"] + bar1["width"], (
        "parts sent in parallel are drawn as overlapping bars", bar1, bar2)
    assert bar1["y"] != bar2["y"]

    retry, retried = row_of(3, attempt=2)
    first, failed = row_of(3)
    link = retry.find_element(By.CSS_SELECTOR, "a.badge.retry")
    assert link.text == f"↻ retry of #{failed['_knoxpy']['id']}"
    assert link.get_attribute("href").endswith(f"#e-{failed['_knoxpy']['id']}")
    assert first.find_element(By.CSS_SELECTOR, ".status").text == "503"

    shots = [tmp_path / "trace.png", tmp_path / "trace-steps.png"]  # kept as artefacts
    browser.set_window_size(1400, 470)  # the waterfall, without the page's white below
    browser.save_screenshot(str(shots[0]))
    browser.set_window_size(1400, 900)
    details = one.find_element(By.XPATH, "following-sibling::div[1]")
    assert not details.is_displayed()
    one.find_element(By.CSS_SELECTOR, ".name").click()
    WebDriverWait(browser, 30).until(lambda d: details.is_displayed())
    steps = details.find_element(By.CSS_SELECTOR, "pre.steps")
    assert steps.is_displayed()
    for text in ("The canonical request", "The string to sign", "The signing key",
                 "kSigning", "AWS4-HMAC-SHA256", "partNumber=1"):
        assert text in steps.text, text
    browser.save_screenshot(str(shots[1]))
    for shot in shots:
        assert shot.stat().st_size > 10_000
        if os.environ.get("KNOXPY_DOCS_SCREENSHOT"):  # refresh the pictures in docs/explain.md
            shutil.copy(shot, ROOT / "docs" / "images" / shot.name)


def test_a_client_without_a_trace_pays_nothing(srv: Any) -> None:
    import gc

    from knoxpy import _loop
    from knoxpy.trace import Recorder

    plain = fault_client(srv)
    assert plain.trace is None
    req = plain.put("/plain", {"Content-Length": 1})
    assert req.traced is None
    assert req.end("x").wait().statusCode == 200
    recorder = Recorder(lambda entry: None)
    assert _loop._spawn_hook is not None  # work carries its call while a trace records
    del recorder
    gc.collect()
    assert _loop._spawn_hook is None  # and not once no trace is left


def test_a_hostile_key_name_is_text_in_the_page(srv: Any, tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    key = "/</script><img src=x onerror=\"document.title='pwned'\"><!--.txt"
    page = tmp_path / "hostile.html"
    client = fault_client(srv, trace=str(page))
    client.put(key, {"Content-Length": 1}).end("x").wait()
    client.trace.save()
    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-rendered"))
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert "pwned" not in browser.title
    name = browser.find_element(By.CSS_SELECTOR, ".row .name").text
    assert name == "/bkt" + key


def test_a_bad_trace_option_is_a_validation_error(tmp_path: Path) -> None:
    from knoxpy.trace import Recorder

    with pytest.raises(knoxpy.ValidationError, match="trace must be a file path"):
        knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt", trace=True)
    with pytest.raises(knoxpy.ValidationError, match="max_entries must be a positive int"):
        Recorder(str(tmp_path / "t.har"), max_entries=0)
    with pytest.raises(knoxpy.ValidationError, match="give save"):
        Recorder(lambda entry: None).save()
    assert knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt", trace=False).trace is None


def test_options_that_travel_to_another_process_leave_the_trace_behind(tmp_path: Path) -> None:
    import pickle

    client = knoxpy.createClient(key="AKID", secret="s3cr3t", bucket="bkt",
                                 trace=str(tmp_path / "t.har"))
    travelled = pickle.loads(pickle.dumps(dict(client.options)))
    assert travelled["trace"] is None and travelled["bucket"] == "bkt"
    assert knoxpy.createClient(travelled).trace is None
