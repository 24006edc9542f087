"""Issue 12: the JS leniencies a literal port of knox code relies on, against moto."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import time
import urllib.parse
from pathlib import Path
from typing import Any, List

import pytest

import knoxpy
from knoxpy import _js

ROOT = Path(__file__).resolve().parents[2]


# -- callbacks and listeners with fewer parameters (JS ignores extra arguments) ----------------

def test_a_callback_that_takes_only_err_is_called_with_err(client: Any) -> None:
    client.putBuffer(b"x", "/lenient/one").wait(10)
    seen: List[Any] = []
    op = client.deleteMultiple(["lenient/one"], lambda err: seen.append(err))
    knoxpy.run(timeout=10)
    assert seen == [None]
    op.wait(10)


def test_a_callback_with_no_parameters_is_called(client: Any) -> None:
    seen: List[str] = []
    client.putBuffer(b"x", "/lenient/two", lambda: seen.append("done"))
    knoxpy.run(timeout=10)
    assert seen == ["done"]


def test_a_transfer_callback_that_takes_only_err(client: Any, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"y" * 100)
    seen: List[Any] = []
    client.upload(str(src), "/lenient/three", lambda err: seen.append(err)).wait(30)
    knoxpy.run(timeout=10)
    assert seen == [None]


def test_listeners_with_fewer_parameters_and_once_removal(client: Any) -> None:
    ended: List[str] = []
    responses: List[str] = []
    req = client.get("/lenient/two")
    req.once("response", lambda: responses.append("response"))
    req.on("response", lambda res: (res.on("end", lambda: ended.append("end")), res.resume()))
    req.end()
    knoxpy.run(timeout=10)
    assert responses == ["response"] and ended == ["end"]
    assert req.listenerCount("response") == 1  # the once listener went, by its own function


def test_a_once_listener_can_be_removed_by_the_function_given() -> None:
    em = knoxpy.createClient(key="k", secret="s", bucket="bkt").get("/x")
    f = lambda: None  # noqa: E731
    em.once("response", f)
    em.removeListener("response", f)
    assert em.listenerCount("response") == 0


def test_a_varargs_callable_gets_every_argument_and_is_not_wrapped() -> None:
    def every(*args: Any) -> Any:
        return args

    assert _js.fit(every) is every
    assert _js.fit(lambda a, b: (a, b))(1, 2, 3) == (1, 2)


class _Relay:
    def __init__(self) -> None:
        self.seen: List[Any] = []

    def done(self, err: Any) -> None:
        self.seen.append(err)

    def __call__(self, err: Any, res: Any) -> None:
        self.seen.append((err, res))


def test_bound_methods_and_callable_objects_get_what_they_accept() -> None:
    relay = _Relay()
    _js.fit(relay.done)(None, "res", "extra")
    _js.fit(relay)(None, "res", "extra")
    assert relay.seen == [None, (None, "res")]


# -- a naive datetime is local time, Python's own rule ------------------------------------------

_SIGN = textwrap.dedent("""
    import datetime as dt, time, urllib.parse, knoxpy
    c = knoxpy.createClient(key='k', secret='s', bucket='bkt', signatureVersion=2)
    url = c.signedUrl('/f', dt.datetime.now() + dt.timedelta(minutes=5))
    expires = int(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)['Expires'][0])
    print(expires - int(time.time()))
""")


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "America/Los_Angeles", "UTC"])
def test_a_naive_expiration_is_local_time_in_every_zone(tz: str) -> None:
    env = dict(os.environ, TZ=tz, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _SIGN], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 295 <= int(out.stdout) <= 301  # five minutes from now, whatever the zone


def test_an_aware_expiration_is_its_instant() -> None:
    c = knoxpy.createClient(key="k", secret="s", bucket="bkt", signatureVersion=2)
    at = dt.datetime(2030, 1, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    url = c.signedUrl("/f", at)
    expires = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["Expires"][0]
    assert int(expires) == int(dt.datetime(2030, 1, 1, 0, tzinfo=dt.timezone.utc).timestamp())


# -- None is JS undefined: not given --------------------------------------------------------------

def test_a_pager_with_none_params_lists_from_the_start(client: Any) -> None:
    for name in ("a", "b", "c"):
        client.putBuffer(b"x", f"/pager/{name}").wait(10)
    data = client.list({"prefix": "pager/", "marker": None, "delimiter": None,
                        "max-keys": 2}).wait(10)
    assert [e["Key"] for e in data["Contents"]] == ["pager/a", "pager/b"]
    data = client.list({"prefix": None, "marker": "pager/b"}).wait(10)
    assert [e["Key"] for e in data["Contents"]][:1] == ["pager/c"]


def test_a_none_header_is_left_out(client: Any) -> None:
    client.putBuffer(b"x", "/none-meta", {"x-amz-meta-note": None,
                                         "Content-Type": None}).wait(10)
    res = client.headFile("/none-meta").wait(10)
    assert "x-amz-meta-note" not in res.headers
    assert res.headers.get("content-type") != "None"


def test_set_header_none_is_refused_naming_the_header(client: Any) -> None:
    req = client.put("/x")
    with pytest.raises(knoxpy.ValidationError, match="x-amz-meta-note"):
        req.setHeader("x-amz-meta-note", None)


def test_none_options_mean_not_given(client_options: Any, tmp_path: Path) -> None:
    c = knoxpy.createClient(dict(client_options, region=None, token=None, timeout=None,
                                 maxRetries=None))
    src = tmp_path / "f"
    src.write_bytes(b"z" * 10)
    c.upload(str(src), "/none-opts", partSize=None, concurrency=None, resume=None).wait(30)
    url = c.signedUrl("/none-opts", time.time() + 60, {"verb": None, "qs": {"versionId": None},
                                          "contentType": None})
    assert "versionId" not in url and "None" not in url
