"""Every ```python block of README.md, docs/porting.md, docs/index.md and docs/modern-s3.md,
run against moto
in both URL styles.

docs/porting.md is knox's README example by example: each ```js block is followed by its
```python form, which must have a check below.

The blocks are read from README.md when the tests are collected, so editing an example
re-tests it, and a new block is picked up with no change here. Each block runs the way
a reader meets it, top to bottom:

- in a fresh temporary directory (the current directory while it runs), holding the
  local files the examples use (``my.json``, ``Readme.md``);
- with ``knoxpy.createClient`` pointed at moto (``endpoint='localhost'`` plus moto's
  port and the URL style under test; the README's bucket names are created there), and
  ``client`` already made, as the README's first block makes it;
- with the imports, functions and classes of the blocks above it in the same file
  defined (a later
  example may reuse ``on_response``), and the objects the examples read put first
  (``/test/Readme.md``, ``/doodle.png``, ``/source.txt``...);
- then ``knoxpy.run()``: every request the block started must finish, and an
  ``'error'`` nobody handled fails the test.

After that, the check registered in ``CHECKS`` for the block (found by a piece of its
text) asserts it did what the README says: the object exists after a PUT, is gone after
a DELETE, the copy is there, the output shows the status code... A block with no check
must still run cleanly.

To leave a block out, put this HTML comment on the line(s) right before its fence,
with the reason (it is invisible on GitHub)::

    <!-- readme-test: skip (needs a real 5 GB file) -->

Nothing else skips a block.
"""
from __future__ import annotations

import ast
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import urllib3
from conftest import KEY, ROOT, SECRET, create_bucket

import knoxpy

README = ROOT / "README.md"
PORTING = ROOT / "docs" / "porting.md"
INDEX = ROOT / "docs" / "index.md"  # the quick start
MODERN = ROOT / "docs" / "modern-s3.md"  # what S3 has grown since knox
SKIP_MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s*(?:\((?P<reason>.*?)\))?\s*-->")
TIMEOUT = 20
BUCKETS = ("learnboost", "dest-bucket")  # the buckets the README names

READ_ME = b"# knoxpy's Readme\n\nA few lines of text to PUT and GET.\n" * 20
MY_JSON = b'{"name": "tj", "from": "my.json"}\n'
DOODLE = bytes(range(256)) * 40  # stands for doodle.png
GIVEN = {  # key -> (body, Content-Type): the objects the examples read
    "/test/Readme.md": (READ_ME, "text/markdown"),
    "/test/Readme.markdown": (READ_ME, "text/markdown"),
    "/doodle.png": (DOODLE, "image/png"),
    "/test/source.txt": (b"source in test/", "text/plain"),
    "/source.txt": (b"source at the top", "text/plain"),
    "/my-prefix/one.txt": (b"1", "text/plain"),
    "/my-prefix/two.txt": (b"2", "text/plain"),
}


@dataclass
class Block:
    index: int
    line: int  # of the opening fence, 1-based
    heading: str
    code: str
    skip: Optional[str]  # the reason, when marked
    source: Path = README

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-") or "top"
        return f"{self.index:02d}-{slug}-L{self.line}"


def readme_blocks(text: str, source: Path = README) -> List[Block]:
    """The ```python blocks of a Markdown text, with the heading above each."""
    blocks: List[Block] = []
    lines = text.splitlines()
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if re.match(r"^```\s*python(?:\s.*)?$", line):  # ```python title="..." too
            start = i
            i += 1
            body: List[str] = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            j = start - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            marker = SKIP_MARKER.search(lines[j]) if j >= 0 else None
            skip = (marker.group("reason") or "marked") if marker else None
            blocks.append(Block(len(blocks), start + 1, heading, "\n".join(body) + "\n", skip,
                                source))
        i += 1
    return blocks


def fences(text: str) -> List[tuple[int, str]]:
    """(line, language) of every opening code fence of a Markdown text, in order."""
    found: List[tuple[int, str]] = []
    inside = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if not inside:
                found.append((n, (line[3:].split() or [""])[0]))
            inside = not inside
    return found


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
PORTING_BLOCKS = readme_blocks(PORTING.read_text(encoding="utf-8"), PORTING)
INDEX_BLOCKS = readme_blocks(INDEX.read_text(encoding="utf-8"), INDEX)
MODERN_BLOCKS = readme_blocks(MODERN.read_text(encoding="utf-8"), MODERN)
DOCS_BLOCKS = {PORTING: PORTING_BLOCKS, INDEX: INDEX_BLOCKS, MODERN: MODERN_BLOCKS}


# -- what each example must have done -------------------------------------------------------
@dataclass
class Ran:
    ns: Dict[str, Any]  # the block's globals
    client: Any  # a client on the README's bucket, on moto
    out: str  # what it printed
    port: int


def _object(ran: Ran, key: str, bucket: str = "learnboost") -> Any:
    c = knoxpy.createClient(key=KEY, secret=SECRET, bucket=bucket)  # patched: on moto
    res = c.get(key).end().wait(TIMEOUT)
    return res if res.statusCode == 200 else (res.resume() and None)


def _body(ran: Ran, key: str, bucket: str = "learnboost") -> Optional[bytes]:
    res = _object(ran, key, bucket)
    return None if res is None else bytes(res.read())


def check_client(ran: Ran) -> None:
    assert isinstance(ran.ns["client"], knoxpy.Client)
    assert ran.ns["client"].bucket == "learnboost"


def check_put_string(ran: Ran) -> None:
    res = _object(ran, "/test/obj.json")
    assert res is not None and json.loads(res.read()) == {"foo": "bar"}
    assert res.headers["content-type"] == "application/json"
    assert f"saved to {ran.client.url('/test/obj.json')}" in ran.out


def check_acl_header(ran: Ran) -> None:
    req = ran.ns["_"]
    assert isinstance(req, knoxpy.ClientRequest)
    assert req.getHeader("x-amz-acl") == "public-read"


def check_put_file(ran: Ran) -> None:
    res = _object(ran, "/user.json")
    assert res is not None and res.read() == MY_JSON
    assert res.headers["content-type"] == "application/json; charset=UTF-8"


def check_put_stream_relay(ran: Ran) -> None:
    res = _object(ran, "/doodle-copy.png")
    assert res is not None and res.read() == DOODLE
    assert res.headers["content-type"] == "image/png"


def check_put_written(ran: Ran) -> None:
    assert _body(ran, "/Readme.md") == READ_ME


def check_put_buffer(ran: Ran) -> None:
    assert _body(ran, "/string.txt") == b"a string of data"


def check_get_prints(ran: Ran) -> None:
    assert ran.out.splitlines()[0] == "200"
    assert "'content-type': 'text/markdown'" in ran.out
    assert READ_ME.decode() in ran.out  # the body, as str chunks (setEncoding('utf8'))


def check_get_file_pipe(ran: Ran) -> None:
    assert Path("Readme.md").read_bytes() == READ_ME


def check_get_file_save(ran: Ran) -> None:
    assert Path("downloaded.md").read_bytes() == READ_ME


def check_progress(ran: Ran) -> None:
    size = len(MY_JSON)
    assert f"{size} of {size} bytes, 100%" in ran.out
    assert _body(ran, "/user.json") == MY_JSON


def check_head(ran: Ran) -> None:
    assert ran.out.split() == ["200", str(len(READ_ME))]


def check_wait_read(ran: Ran) -> None:
    assert ran.ns["res"].statusCode == 200 and ran.ns["body"] == READ_ME


def check_delete(ran: Ran) -> None:
    assert "204" in ran.out.split()
    assert _body(ran, "/test/Readme.md") is None


def check_copy(ran: Ran) -> None:
    assert _body(ran, "/test/dest.txt") == b"source in test/"
    assert _body(ran, "/dest.txt") == b"source at the top"


def check_copy_to(ran: Ran) -> None:
    assert _body(ran, "/dest.txt", bucket="dest-bucket") == b"source at the top"
    assert "200" in ran.out.split()  # on_response, as the GET example defined it


def check_delete_multiple(ran: Ran) -> None:
    assert _body(ran, "/test/Readme.md") is None
    assert _body(ran, "/test/Readme.markdown") is None


def check_list(ran: Ran) -> None:
    assert "my-prefix/one.txt" in ran.out and "my-prefix/two.txt" in ran.out


def check_options(ran: Ran) -> None:
    made = ran.ns["client"]
    # (endpoint, port and style are moto's here, and knox derives no region for an endpoint)
    assert (made.token, made.secure) == ("<session-token>", False)
    assert made.agent is not None and made.agent.connection_pool_kw["maxsize"] == 16


def check_upload_download(ran: Ran) -> None:
    expected = b"".join(b"line %d\n" % i for i in range(100_000))
    assert _body(ran, "/logs/app.log") == expected
    assert Path("app.log").read_bytes() == expected
    assert ran.out.split()[-2:] == ["logs/app.log", str(len(expected))]


def check_quick_start(ran: Ran) -> None:
    assert Path("obj.json").read_bytes() == Path("restored.json").read_bytes() == b'{"foo":"bar"}'
    assert f"saved to {ran.client.url('/test/obj.json')}" in ran.out
    assert "200 b'{\"foo\":\"bar\"}'" in ran.out and "backups/obj.json 13" in ran.out


def check_bulk(ran: Ran) -> None:
    assert ran.out.splitlines() == ["my-prefix/one.txt 1", "my-prefix/two.txt 1",
                                    "{'copied': 2, 'errors': []}",
                                    "{'deleted': 2, 'errors': []}"]


def check_acl_request(ran: Ran) -> None:
    assert "<Permission>FULL_CONTROL</Permission>" in ran.out


def check_urls(ran: Ran) -> None:
    assert ran.ns["readme_url"] == "http://" + ran.client.urlBase + "/test/Readme.md"
    assert ran.ns["user_data_url"] == "https://" + ran.client.urlBase + "/user.json"


def check_signed_url(ran: Ran) -> None:
    parts = urllib.parse.urlsplit(ran.ns["url"])
    assert "X-Amz-Signature=" in parts.query
    with urllib3.HTTPConnectionPool("127.0.0.1", ran.port) as pool:
        res = pool.request("GET", parts.path + "?" + parts.query,
                           headers={"Host": parts.netloc}, retries=False)
    assert (res.status, res.data) == (200, READ_ME)


def check_presigned_post(ran: Ran) -> None:
    fields = ran.ns["post"]["fields"]
    assert fields["key"] == "uploads/${filename}" and fields["Content-Type"] == "text/plain"
    assert "x-amz-signature" in fields and "policy" in fields


def check_versions(ran: Ran) -> None:
    assert ran.out.splitlines()[:2] == ["notes.txt True False", "notes.txt False False"]
    assert "b'draft'" in ran.out


def check_tags_and_restore(ran: Ran) -> None:
    assert ran.out.splitlines()[0] == "{'team': 'finance'}"
    assert ran.out.splitlines()[-1] == "True" and "restore ongoing: False" in ran.out


def check_conditional_writes(ran: Ran) -> None:
    assert ran.out.splitlines() == ["taken: 412"]
    assert _body(ran, "/config.json") == b"v2"


# A piece of each block's text -> its check. Every entry must match a block.
CHECKS: Dict[str, Callable[[Ran], None]] = {
    "    bucket='learnboost',\n)": check_client,
    "    'bucket': 'learnboost',\n})": check_client,
    ".on('progress', show_progress)": check_progress,
    "client.getFile('/test/Readme.md', save)": check_get_file_save,
    "on('response', deleted).end()": check_delete,
    "client.headFile('/test/Readme.md'": check_head,
    "agent=urllib3.PoolManager(maxsize=16)": check_options,
    "client.upload(lines(), '/logs/app.log'": check_upload_download,
    "{'prefix': 'porting-backup/'}": check_bulk,
    "post = client.presignedPost('/uploads/${filename}'": check_presigned_post,
    "data = client.listVersions({'prefix': 'notes'}).wait()": check_versions,
    "op = client.restore('/archive/2019.log'": check_tags_and_restore,
    "except knoxpy.PreconditionFailed as err:": check_conditional_writes,
    "client.download('/backups/obj.json', 'restored.json')": check_quick_start,
    "req.end(string)": check_put_string,
    "{'x-amz-acl': 'public-read'}": check_acl_header,
    "client.putFile('my.json', '/user.json', done)": check_put_file,
    "client.getFile('/doodle.png', relay)": check_put_stream_relay,
    "req = client.put('/Readme.md'": check_put_written,
    "client.putBuffer(buffer, '/string.txt'": check_put_buffer,
    "client.get('/test/Readme.md').on('response', on_response).end()": check_get_prints,
    "client.getFile('/test/Readme.md', on_file)": check_get_file_pipe,
    "body = res.read()": check_wait_read,
    "client.deleteFile('/test/Readme.md'": check_delete,
    "client.copyFile('/source.txt', '/dest.txt'": check_copy,
    "client.copyTo('/source.txt', 'dest-bucket', '/dest.txt')": check_copy_to,
    "client.copyTo('/source.txt', dest_options, '/dest.txt')": check_copy_to,
    "client.deleteMultiple(['/test/Readme.md', '/test/Readme.markdown']": check_delete_multiple,
    "client.list({'prefix': 'my-prefix'}, listed)": check_list,
    "'/test/Readme.md?acl'": check_acl_request,
    "readme_url = client.http(": check_urls,
    "url = client.signedUrl(": check_signed_url,
}


def check_for(block: Block) -> Optional[Callable[[Ran], None]]:
    found = [check for piece, check in CHECKS.items() if piece in block.code]
    assert len(found) <= 1, f"{block.source.name}:{block.line} matches several checks"
    return found[0] if found else None


# -- running a block ---------------------------------------------------------------------------
def _definitions(blocks: List[Block]) -> ast.Module:
    """The imports, functions and classes of ``blocks``: what a reader has defined so far."""
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    body = [node for b in blocks for node in ast.parse(b.code).body if isinstance(node, keep)]
    return ast.Module(body=body, type_ignores=[])


def _compiled(block: Block) -> Any:
    """The block's code; a last bare expression is kept in ``_``, as the REPL does."""
    tree = ast.parse(block.code, filename=str(block.source))
    ast.increment_lineno(tree, block.line)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        assign = ast.Assign(targets=[ast.Name("_", ast.Store())], value=last.value)
        tree.body[-1] = ast.copy_location(assign, last)
        ast.fix_missing_locations(tree)
    return compile(tree, str(block.source), "exec")


@pytest.fixture(scope="module")
def readme_buckets(moto_port: int) -> None:
    for name in BUCKETS:
        try:
            create_bucket(moto_port, name)
        except AssertionError:  # already there (BucketAlreadyOwnedByYou)
            pass


@pytest.fixture(params=["virtualHosted", "path"])
def on_moto(request: pytest.FixtureRequest, moto_port: int, readme_buckets: None,
            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """knoxpy.createClient pointed at moto in one style; a fresh working directory."""
    real = knoxpy.createClient
    style = request.param

    def create_on_moto(options: Any = None, **kw: Any) -> Any:
        opts = dict(options or {}, **kw)
        opts.update(key=KEY, secret=SECRET, endpoint="localhost", port=moto_port, style=style)
        return real(opts)

    monkeypatch.setattr(knoxpy, "createClient", create_on_moto)
    monkeypatch.setattr(knoxpy, "create_client", create_on_moto)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.json").write_bytes(MY_JSON)
    (tmp_path / "Readme.md").write_bytes(READ_ME)
    client = create_on_moto(bucket="learnboost")
    for key, (body, ctype) in GIVEN.items():
        assert client.putBuffer(body, key, {"Content-Type": ctype}).wait(TIMEOUT).statusCode == 200
    for gone in ("/test/obj.json", "/user.json", "/doodle-copy.png", "/Readme.md",
                 "/string.txt", "/test/dest.txt", "/dest.txt"):
        client.del_(gone).end().wait(TIMEOUT).resume()
    create_on_moto(bucket="dest-bucket").del_("/dest.txt").end().wait(TIMEOUT).resume()
    yield client, moto_port


def _run_block(block: Block, blocks: List[Block], on_moto: Any,
               capsys: pytest.CaptureFixture[str]) -> None:
    if block.skip:
        pytest.skip(f"{block.source.name}:{block.line}: {block.skip}")
    client, port = on_moto
    ns: Dict[str, Any] = {"__name__": "__readme__", "knoxpy": knoxpy, "client": client}
    exec(compile(_definitions(blocks[: block.index]), str(block.source), "exec"), ns)
    exec(_compiled(block), ns)
    knoxpy.run(TIMEOUT)
    out = capsys.readouterr().out
    check = check_for(block)
    if check is not None:
        check(Ran(ns, client, out, port))


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_example(block: Block, on_moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _run_block(block, BLOCKS, on_moto, capsys)


@pytest.mark.parametrize("block", [b for page in DOCS_BLOCKS.values() for b in page],
                         ids=[f"{b.source.stem}-{b.id}" for page in DOCS_BLOCKS.values()
                              for b in page])
def test_docs_example(block: Block, on_moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _run_block(block, DOCS_BLOCKS[block.source], on_moto, capsys)


def test_the_readme_has_examples_and_every_check_has_its_block() -> None:
    assert len(BLOCKS) >= 15
    for piece in CHECKS:
        assert any(piece in b.code for b in BLOCKS + [b for page in DOCS_BLOCKS.values()
                                                      for b in page]), \
            f"no block of README.md or docs/ holds {piece!r}"


def test_the_porting_guide_puts_python_beside_every_knox_example() -> None:
    """Each ```js block (one of knox's README examples) is followed by its ```python form,
    which has a check: every ported example is verified, not only run."""
    found = fences(PORTING.read_text(encoding="utf-8"))
    js = [i for i, (_, lang) in enumerate(found) if lang == "js"]
    assert len(js) >= 19  # knox's README examples, and its client options
    for i in js:
        line = found[i][0]
        assert i + 1 < len(found) and found[i + 1][1] == "python", \
            f"porting.md:{line}: a js block with no python block after it"
        block = next(b for b in PORTING_BLOCKS if b.line == found[i + 1][0])
        assert not block.skip and check_for(block) is not None, \
            f"porting.md:{block.line}: the python form of a knox example has no check"


def test_block_extraction_and_the_skip_marker() -> None:
    text = ("# T\n\n```python\na = 1\n```\n\n## Two\n<!-- readme-test: skip (needs S3) -->\n\n"
            "```python\nb = 2\n```\n```sh\nmake\n```\n<!-- readme-test: skip -->\n"
            "```python\nc = 3\n```\n```js title=\"knox\"\nd\n```\n```python title=\"knoxpy\"\nd = 4\n```\n")
    blocks = readme_blocks(text)
    assert [(b.heading, b.code, b.skip, b.line) for b in blocks] == [
        ("T", "a = 1\n", None, 3), ("Two", "b = 2\n", "needs S3", 10),
        ("Two", "c = 3\n", "marked", 17), ("Two", "d = 4\n", None, 23)]
    assert [lang for _, lang in fences(text)] == ["python", "python", "sh", "python", "js",
                                                  "python"]


def test_a_broken_example_fails(on_moto: Any) -> None:
    """The runner can fail: an unhandled 'error' in an example comes out of knoxpy.run()."""
    block = Block(0, 1, "broken", "client.putFile('no-such-file.json', '/x.json')\n", None)
    exec(_compiled(block), {"client": on_moto[0]})
    with pytest.raises(FileNotFoundError):
        knoxpy.run(TIMEOUT)
