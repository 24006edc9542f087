"""``knoxpy``, the command line: ``ls``, ``put``, ``get``, ``cp``, ``mv``, ``rm``, ``cat``,
``presign``, ``stat`` and ``sync`` on ``s3://bucket/key`` addresses, as the AWS CLI writes them.

Credentials and settings are found the usual way (``knoxpy._config``): options,
``AWS_*`` variables, then ``~/.aws`` profiles. ``--explain`` shows each request, its
canonical request, string to sign, key derivation and signature (``knoxpy._explain``).

Exit codes: 0 done, 1 an S3 or transfer error (one ``knoxpy: error: ...`` line each;
``--debug`` adds tracebacks and logging), 2 a usage error, 130 interrupted.

Transfers of many files run ``--jobs`` at a time, each on its own thread with its own
knoxpy loop (docs/execution-model.md: objects belong to the thread that made them).
Progress bars (tqdm, the ``cli`` extra) show only when stdout and stderr are terminals.

    $ knoxpy --endpoint-url http://127.0.0.1:9000 put -r ./site s3://www/
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime as _dt
import email.utils
import hashlib
import importlib
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from . import __version__, _cancel, _config, _parts, _validate, _xml
from ._loop import MAIN_WAKE
from ._work import s3_error
from .client import Client
from .errors import Cancelled, KnoxError, PreconditionFailed, ValidationError

_tqdm: Any
try:
    _tqdm = importlib.import_module("tqdm")
except ImportError:  # the CLI works without the 'cli' extra, just without bars
    _tqdm = None

__all__ = ["S3Url", "main", "parse_s3"]

PROG = "knoxpy"
DEFAULT_JOBS = 8
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


class CLIError(Exception):
    """One line for the user: ``knoxpy: error: <message>``."""


# -- addresses --------------------------------------------------------------------------------
class S3Url(NamedTuple):
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def under(self, rel: str) -> S3Url:
        """The key ``rel`` under this "directory"."""
        return S3Url(self.bucket, self.dir_prefix + rel)

    @property
    def dir_prefix(self) -> str:
        """The key as a "directory": ``''`` or ending with ``/``."""
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"


def parse_s3(text: str) -> Optional[S3Url]:
    """``s3://bucket/key`` as ``S3Url``; None for a local path.

    >>> parse_s3('s3://photos/2024/a.jpg'), parse_s3('./a.jpg')
    (S3Url(bucket='photos', key='2024/a.jpg'), None)
    """
    if not text.startswith("s3://"):
        return None
    bucket, _, key = text[5:].partition("/")
    if not bucket:
        raise CLIError(f"{text!r}: an s3:// address needs a bucket (s3://bucket/key)")
    return S3Url(bucket, key)


def _need_s3(text: str, what: str) -> S3Url:
    url = parse_s3(text)
    if url is None:
        raise CLIError(f"{what} must be an s3://bucket/key address, not {text!r}")
    return url


def human_size(n: float) -> str:
    """The AWS CLI's human sizes.

    >>> human_size(10), human_size(1536), human_size(5 * 1024 ** 3)
    ('10 Bytes', '1.5 KiB', '5.0 GiB')
    """
    if n < 1024:
        return f"{int(n)} Bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        n /= 1024
        if n < 1024 or unit == "PiB":
            break
    return f"{n:.1f} {unit}"


# -- output: lines, errors and progress bars --------------------------------------------------
class _Bar:
    """One file's progress, forwarded to the total; a no-op without tqdm or a terminal."""

    def __init__(self, out: Output, desc: str, total: Optional[int]) -> None:
        self._out = out
        self._bar = out._new_bar(desc, total, leave=False) if out.bars else None
        self.done = 0

    def reset(self, total: Optional[int]) -> None:
        if self._bar is not None:
            self._bar.reset(total)

    def to(self, done: int) -> None:
        """Advance to ``done`` bytes (retries may go back: the total only moves forward)."""
        delta, self.done = done - self.done, done
        if self._bar is not None:
            with self._out.lock:
                self._bar.update(delta)
        self._out._advance(max(delta, 0))

    def update(self, n: int) -> None:
        self.to(self.done + n)

    def close(self) -> None:
        if self._bar is not None:
            with self._out.lock:
                self._bar.close()


class Output:
    """Where the CLI writes: result lines on stdout, errors on stderr, bars on stderr."""

    def __init__(self, quiet: bool, debug: bool) -> None:
        self.quiet = quiet
        self.debug = debug
        self.bars = (not quiet and _tqdm is not None and sys.stdout.isatty()
                     and sys.stderr.isatty())
        self.lock = threading.RLock()
        self.failures = 0
        self._total: Any = None

    def _new_bar(self, desc: str, total: Optional[int], leave: bool) -> Any:
        assert _tqdm is not None
        return _tqdm.tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                          leave=leave, file=sys.stderr, dynamic_ncols=True, miniters=1)

    def line(self, text: str) -> None:
        if self.quiet:
            return
        with self.lock:
            if self.bars:
                _tqdm.tqdm.write(text, file=sys.stdout)
            else:
                print(text, flush=True)

    def error(self, text: str, exc: Optional[BaseException] = None) -> None:
        with self.lock:
            self.failures += 1
            if self.debug and exc is not None:
                traceback.print_exception(type(exc), exc, exc.__traceback__)
            message = f"{PROG}: error: {text}"
            if self.bars:
                _tqdm.tqdm.write(message, file=sys.stderr)
            else:
                print(message, file=sys.stderr, flush=True)

    def bar(self, desc: str, total: Optional[int]) -> _Bar:
        return _Bar(self, desc, total)

    def start_total(self, files: int, size: int) -> None:
        if self.bars and files > 1:
            self._total = self._new_bar(f"total ({files} files)", size, leave=True)

    def _advance(self, n: int) -> None:
        if self._total is not None and n:
            with self.lock:
                self._total.update(n)

    def end_total(self) -> None:
        if self._total is not None:
            self._total.close()
            self._total = None


# -- the clients ------------------------------------------------------------------------------
_COPY_OPTIONS = "--storage-class, --metadata-directive, --sse, --sse-kms-key-id, --sse-c-key " \
    "and --sse-c-copy-source-key"


def _key_file(value: str, option: str) -> bytes:
    """An SSE-C key from a file (as the AWS CLI's ``fileb://FILE``): never on the command line,
    where ``ps`` would show it."""
    path = value[len("fileb://"):] if value.startswith("fileb://") else value
    try:
        with open(path, "rb") as f:
            key = f.read(33)
    except OSError as err:
        raise CLIError(f"{option}: cannot read {path}: {err.strerror}") from None
    if len(key) != 32:
        raise CLIError(f"{option}: {path} must hold a 256-bit key (32 bytes)")
    return key


def copy_headers(args: argparse.Namespace) -> Dict[str, Any]:
    """cp's storage and encryption options as the headers of every copy, checked as
    ``copyAll(headers=...)`` checks them."""
    from .bulk import copy_headers as checked

    headers: Dict[str, Any] = {}
    for option, name in (("storage_class", "x-amz-storage-class"),
                         ("metadata_directive", "x-amz-metadata-directive"),
                         ("sse", "x-amz-server-side-encryption"),
                         ("sse_kms_key_id", "x-amz-server-side-encryption-aws-kms-key-id")):
        if getattr(args, option, None):
            headers[name] = getattr(args, option)
    if "x-amz-server-side-encryption-aws-kms-key-id" in headers and \
            headers.get("x-amz-server-side-encryption") != "aws:kms":
        raise CLIError("--sse-kms-key-id goes with --sse aws:kms")
    for option, prefix in (("sse_c_key", "x-amz-server-side-encryption-customer-"),
                           ("sse_c_copy_source_key",
                            "x-amz-copy-source-server-side-encryption-customer-")):
        value = getattr(args, option, None)
        if value:
            key = _key_file(value, "--" + option.replace("_", "-"))
            headers[prefix + "algorithm"] = "AES256"
            headers[prefix + "key"] = base64.b64encode(key).decode()
    try:
        return checked(headers)
    except ValidationError as err:
        raise CLIError(str(err).replace("copyAll: ", "")) from None


class Context:
    """Settings found once, a client per bucket, and the output."""

    def __init__(self, args: argparse.Namespace, out: Output) -> None:
        self.out = out
        self.dryrun = bool(getattr(args, "dryrun", False))
        self.jobs = int(getattr(args, "jobs", DEFAULT_JOBS))
        # put --no-overwrite: S3's create-only write, checked when the object is made
        self.put_headers = {"If-None-Match": "*"} if getattr(args, "no_overwrite", False) \
            else {}
        self.copy_headers = copy_headers(args)  # cp between s3:// addresses: on every copy
        explicit = {k: v for k, v in (("profile", args.profile), ("region", args.region),
                                      ("endpoint_url", args.endpoint_url)) if v}
        self._base = _config.client_options(explicit, os.environ)
        if args.ca_bundle:
            self._base["ca"] = args.ca_bundle
        if not self._base.get("key"):
            raise CLIError(
                "no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                "add a profile to ~/.aws/credentials (aws \"key\" required)"
            )
        if args.explain:
            self._base["explain"] = True
        self.trace: Any = None
        if args.trace:  # one recorder for every client, written when the command ends
            from . import trace

            self.trace = self._base["trace"] = trace.Recorder(args.trace)
        self._clients: Dict[str, Client] = {}
        self._lock = threading.Lock()

    def client(self, bucket: str) -> Client:
        with self._lock:
            if bucket not in self._clients:
                self._clients[bucket] = Client(dict(self._base, bucket=bucket))
            return self._clients[bucket]


def _check(res: Any, what: Any) -> None:
    """A knox call answered non-2xx: raise S3's error (knox hands it back as a response)."""
    if res.statusCode < 300:
        return
    body = res.read() if res.req is None or res.req.method != "HEAD" else b""
    raise CLIError(f"{what}: {s3_error(res, body)}")


def _answer_header(res: Any, name: str, parse: Callable[[str], Any], where: str) -> Any:
    """A header of S3's answer, parsed; None when absent. A server that sends something
    else than the header's form gets one error line naming it, not a traceback."""
    value = res.headers.get(name.lower())
    if value is None:
        return None
    try:
        return parse(value)
    except (ValueError, TypeError, OverflowError):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise CLIError(f"{where}: the server sent a bad {name} header: {shown!r}") from None


def _http_date(value: str) -> _dt.datetime:
    """An HTTP date (``Last-Modified``); ``ValueError`` (or ``TypeError``) if it is not one."""
    when = email.utils.parsedate_to_datetime(value)
    if when is None:  # pragma: no cover - Python 3.9 returns None for some garbage
        raise ValueError(value)
    return when


def _filename(key: str) -> str:
    """A key as knox's calls take it: every key gets its own leading ``/``."""
    return "/" + key


# -- transfers: the one place that chooses how bytes move -------------------------------------
def send_file(client: Client, path: str, key: str, bar: _Bar,
              headers: Optional[Dict[str, str]] = None) -> None:
    """Upload ``path`` as ``key`` with ``client.upload``: one PUT when small, a parallel
    multipart upload (aborted on failure) when large, so files over 5 GB go too."""
    op = client.upload(path, _filename(key), dict(headers or {}))  # Content-Type: the name's
    op.on("progress", lambda p: bar.to(int(p["written"])))
    try:
        op.wait()
    except PreconditionFailed:
        raise CLIError(f"s3://{client.bucket}/{key} exists: not overwritten "
                       "(--no-overwrite)") from None


def fetch_file(client: Client, key: str, path: str, bar: _Bar) -> None:
    """Download ``key`` to ``path``: written beside it, checked, then renamed into place.

    The size is checked against Content-Length and, for a single-part ETag (an MD5),
    the content against the ETag, so a file at ``path`` is always whole. Its mtime is
    the object's Last-Modified (what ``sync`` compares for multipart objects).
    """
    where = f"s3://{client.bucket}/{key}"
    res = client.get(_filename(key)).end().wait()
    _check(res, where)
    try:  # no Content-Length: a chunked answer, read to its end
        size = _answer_header(res, "Content-Length", _validate.content_length, where)
        modified = _answer_header(res, "Last-Modified", _http_date, where)
    except CLIError:
        res.destroy()
        raise
    bar.reset(size)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _parts.create_partial(path)
    md5 = hashlib.md5()
    written = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in res:
                f.write(chunk)
                md5.update(chunk)
                written += len(chunk)
                bar.to(written)
        if size is not None and written != size:
            raise KnoxError(f"got {written} of {size} bytes")
        etag = res.headers.get("etag", "").strip('"')
        kms = res.headers.get("x-amz-server-side-encryption") == "aws:kms"  # ETag not an MD5
        if _MD5_ETAG.match(etag) and not kms and md5.hexdigest() != etag:
            raise KnoxError(f"content does not match the ETag {etag} (MD5 {md5.hexdigest()})")
        if modified is not None:
            stamp = modified.timestamp()
            os.utime(tmp, (stamp, stamp))
        os.replace(tmp, path)
    except BaseException:
        res.destroy()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def copy_object(ctx: Context, src: S3Url, dst: S3Url) -> None:
    """Server-side copy (knox's ``copyTo``); S3 may answer 200 with an ``<Error>`` body."""
    req = ctx.client(src.bucket).copyTo(_filename(src.key), dst.bucket, _filename(dst.key),
                                        dict(ctx.copy_headers))
    res = req.end().wait()
    try:
        body = res.read_xml()  # the whole body: a padded 200 <Error> has a 5xx statusCode
        if res.statusCode >= 300:
            raise s3_error(res, body)
        _xml.parse_copy_result(body)  # a copy is done only with a <CopyObjectResult> ETag
    except KnoxError as err:  # mv deletes its source only after this returns
        raise CLIError(f"{src} to {dst}: {err}") from None


class Job(NamedTuple):
    verb: str  # upload, download, copy, delete: the AWS CLI's words
    src: str
    dst: str
    size: int
    run: Callable[[_Bar], None]


def run_jobs(ctx: Context, jobs: List[Job], after: Optional[Callable[[Job], None]] = None
             ) -> int:
    """Run ``jobs``, ``--jobs`` at a time; one line each as it completes. Returns failures."""
    out = ctx.out
    if ctx.dryrun:
        for job in jobs:
            out.line(f"(dryrun) {job.verb}: {job.src} to {job.dst}" if job.dst
                     else f"(dryrun) {job.verb}: {job.src}")
        return 0
    failed = 0
    out.start_total(len(jobs), sum(j.size for j in jobs))
    since = _cancel.generation()  # a Ctrl-C cancels every job, even one not begun yet

    def one(job: Job) -> None:
        if _cancel.cancelled_since(since):
            raise Cancelled()
        bar = out.bar(os.path.basename(job.src.rstrip("/")) or job.src, job.size)
        try:
            with _cancel.scope(since):
                job.run(bar)
        finally:
            bar.close()

    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, min(ctx.jobs, len(jobs)))) as pool:
            try:
                futures = {pool.submit(one, job): job for job in jobs}
                for future in _as_completed(futures):
                    job = futures[future]
                    err = future.exception()
                    if err is None:
                        out.line(f"{job.verb}: {job.src} to {job.dst}" if job.dst
                                 else f"{job.verb}: {job.src}")
                        if after is not None:
                            after(job)
                    else:
                        failed += 1
                        where = f"{job.src} to {job.dst}" if job.dst else job.src
                        reason = str(err)
                        out.error(reason if reason.startswith(("s3://", where)) else
                                  f"{job.verb} failed: {where}: {_reason(err)}", err)
            except KeyboardInterrupt as exc:
                # the running jobs stop (uploads aborted, partial files removed) and are
                # waited for, so that exit finds them clean; the others never begin
                _cancel.interrupted(exc)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        out.end_total()
    return failed


def _as_completed(futures: Dict[concurrent.futures.Future[None], Job]
                  ) -> Iterator[concurrent.futures.Future[None]]:
    """``concurrent.futures.as_completed``, waking at least every ``MAIN_WAKE`` seconds:
    a SIGINT the kernel gives another thread wakes no lock, and Python raises the
    KeyboardInterrupt only in the main thread, once it wakes (knoxpy._loop)."""
    pending = set(futures)
    while pending:
        done, pending = concurrent.futures.wait(
            pending, timeout=MAIN_WAKE, return_when=concurrent.futures.FIRST_COMPLETED)
        yield from done


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror and not isinstance(err, KnoxError):
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err) or type(err).__name__


# -- local and remote listings ----------------------------------------------------------------
def _unreadable(err: OSError) -> None:
    raise CLIError(f"cannot read the directory {err.filename}: {err.strerror}")


def _walk(root: str) -> Iterator[Tuple[str, str]]:
    """``(path, key suffix)`` of every file under ``root``, in sorted order, but knoxpy's
    own partial downloads; a directory that cannot be read is an error, not "empty"."""
    for folder, dirs, files in os.walk(root, onerror=_unreadable):
        dirs.sort()
        for name in sorted(files):
            if _parts.is_partial_name(name):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            yield path, rel.replace(os.sep, "/")


def _remote(ctx: Context, url: S3Url, prefix: str) -> Iterator[Dict[str, Any]]:
    return iter(ctx.client(url.bucket).listAll({"prefix": prefix}))


def _local_target(root: str, rel: str) -> str:
    try:
        return _validate.local_path_for_key(root, rel)
    except ValidationError as err:
        raise CLIError(str(err)) from None


# -- commands ---------------------------------------------------------------------------------
def cmd_ls(ctx: Context, args: argparse.Namespace) -> int:
    url = _need_s3(args.path, "ls's address")
    client = ctx.client(url.bucket)
    params: Dict[str, Any] = {"prefix": url.key}
    if not args.recursive:
        params["delimiter"] = "/"
    shown = url.key[: url.key.rfind("/") + 1]  # names are shown relative to the "directory"
    if args.versions:
        return _ls_versions(client, params, shown, args)
    count = total = 0
    for entry in client.listAll(params):
        print(_listing_line(entry, shown, args))
        if "Prefix" not in entry:
            count, total = count + 1, total + int(entry.get("Size", 0))
    if args.summarize:
        print(f"\nTotal Objects: {count}\n   Total Size: "
              f"{human_size(total) if args.human_readable else total}")
    return 0


def _listing_line(entry: Dict[str, Any], shown: str, args: argparse.Namespace,
                  versions: bool = False) -> str:
    """An ``ls`` line: ``PRE name`` for a common prefix, else the date, the size and the
    name; ``versions``: ``DELETED`` for a delete marker, the version id and ``(latest)``."""
    if "Prefix" in entry:
        return f"{'PRE':>30} {entry['Prefix'][len(shown):]}"
    modified = entry.get("LastModified")
    when = (modified.astimezone().strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(modified, _dt.datetime) else f"{modified or '':19}")
    size = int(entry.get("Size", 0))
    what = "DELETED" if versions and entry.get("DeleteMarker") else (
        human_size(size) if args.human_readable else size)
    name = entry["Key"] if args.recursive else entry["Key"][len(shown):]
    line = f"{when} {what:>10} {name}"
    if versions:
        line += f" {entry.get('VersionId', '')}{' (latest)' if entry.get('IsLatest') else ''}"
    return line


def _ls_versions(client: Client, params: Dict[str, Any], shown: str,
                 args: argparse.Namespace) -> int:
    """``ls --versions``: every version and delete marker, newest first for each key."""
    for entry in client.listAllVersions(params):
        print(_listing_line(entry, shown, args, versions=True))
    return 0


def _upload_jobs(ctx: Context, src: str, dst: S3Url, recursive: bool) -> List[Job]:
    client = ctx.client(dst.bucket)
    if recursive:
        if not os.path.isdir(src):
            raise CLIError(f"{src!r} is not a directory (--recursive uploads a directory)")
        return [Job("upload", path, str(dst.under(rel)), os.path.getsize(path),
                    _sender(client, path, dst.dir_prefix + rel, ctx.put_headers))
                for path, rel in _walk(src)]
    if os.path.isdir(src):
        raise CLIError(f"{src!r} is a directory: add --recursive")
    if not os.path.exists(src):
        raise CLIError(f"{src!r}: no such file")
    key = dst.key if dst.key and not dst.key.endswith("/") else dst.key + os.path.basename(src)
    return [Job("upload", src, f"s3://{dst.bucket}/{key}", os.path.getsize(src),
                _sender(client, src, key, ctx.put_headers))]


def _sender(client: Client, path: str, key: str, headers: Optional[Dict[str, str]] = None
            ) -> Callable[[_Bar], None]:
    return lambda bar: send_file(client, path, key, bar, headers)


def _fetcher(client: Client, key: str, path: str) -> Callable[[_Bar], None]:
    return lambda bar: fetch_file(client, key, path, bar)


def _copier(ctx: Context, src: S3Url, dst: S3Url) -> Callable[[_Bar], None]:
    return lambda bar: copy_object(ctx, src, dst)


def _download_jobs(ctx: Context, src: S3Url, dst: str, recursive: bool) -> List[Job]:
    client = ctx.client(src.bucket)
    if not recursive:
        if not src.key or src.key.endswith("/"):
            raise CLIError(f"{src} names a prefix, not an object: add --recursive")
        if os.path.isdir(dst) or dst.endswith(("/", os.sep)):
            dst = os.path.join(dst, os.path.basename(src.key))
        return [Job("download", str(src), dst, 0, _fetcher(client, src.key, dst))]
    jobs = []
    prefix = src.dir_prefix
    for entry in _remote(ctx, src, prefix):
        key = str(entry["Key"])
        rel = key[len(prefix):]
        if not rel or key.endswith("/"):
            continue  # a "directory" marker object
        try:
            path = _local_target(dst, rel)
        except CLIError as err:
            ctx.out.error(f"download skipped: s3://{src.bucket}/{key}: {err}")
            continue
        jobs.append(Job("download", f"s3://{src.bucket}/{key}", os.path.join(dst, rel),
                        int(entry.get("Size", 0)), _fetcher(client, key, path)))
    return jobs


def _copy_jobs(ctx: Context, src: S3Url, dst: S3Url, recursive: bool) -> List[Job]:
    if not recursive:
        key = dst.key if dst.key and not dst.key.endswith("/") else (
            dst.key + os.path.basename(src.key))
        target = S3Url(dst.bucket, key)
        return [Job("copy", str(src), str(target), 0, _copier(ctx, src, target))]
    jobs = []
    for entry in _remote(ctx, src, src.dir_prefix):
        key = str(entry["Key"])
        one_src, one_dst = S3Url(src.bucket, key), dst.under(key[len(src.dir_prefix):])
        jobs.append(Job("copy", str(one_src), str(one_dst), 0, _copier(ctx, one_src, one_dst)))
    return jobs


def _transfer(ctx: Context, args: argparse.Namespace, move: bool = False) -> int:
    src, dst = args.src, args.dst
    s3_src, s3_dst = parse_s3(src), parse_s3(dst)
    if s3_src is None and s3_dst is None:
        raise CLIError("one of the two addresses must be s3://bucket/key (use cp for files)")
    if ctx.copy_headers and (s3_src is None or s3_dst is None):
        raise CLIError(f"{_COPY_OPTIONS} go with cp between s3:// addresses")
    if s3_src is not None and s3_dst is None and dst == "-":
        if move:
            raise CLIError("mv cannot write to stdout")
        return _cat(ctx, s3_src)
    if s3_src is None:
        assert s3_dst is not None
        jobs = _upload_jobs(ctx, src, s3_dst, args.recursive)
    elif s3_dst is None:
        jobs = _download_jobs(ctx, s3_src, dst, args.recursive)
    else:
        jobs = _copy_jobs(ctx, s3_src, s3_dst, args.recursive)
    after = None
    if move:
        verb = {"upload": "move", "download": "move", "copy": "move"}
        jobs = [job._replace(verb=verb[job.verb]) for job in jobs]
        after = _remover(ctx, s3_src)
    failed = run_jobs(ctx, jobs, after)
    return 1 if failed or ctx.out.failures else 0


def _remover(ctx: Context, s3_src: Optional[S3Url]) -> Callable[[Job], None]:
    """mv: once a source is safely at its destination, remove it."""
    def remove(job: Job) -> None:
        try:
            if s3_src is None:
                os.remove(job.src)
            else:
                url = _need_s3(job.src, "source")
                res = ctx.client(url.bucket).del_(_filename(url.key)).end().wait()
                _check(res, url)
                res.resume()
        except (OSError, KnoxError, CLIError) as err:
            ctx.out.error(f"could not remove {job.src} after moving it: {_reason(err)}", err)
    return remove


def cmd_cp(ctx: Context, args: argparse.Namespace) -> int:
    if _on_a_cluster(args):
        return _on_cluster(ctx, args)
    return _transfer(ctx, args)


def cmd_mv(ctx: Context, args: argparse.Namespace) -> int:
    return _transfer(ctx, args, move=True)


def cmd_put(ctx: Context, args: argparse.Namespace) -> int:
    _need_s3(args.dst, "put's destination")
    if parse_s3(args.src) is not None:
        raise CLIError("put uploads a local file or directory: use cp between s3:// addresses")
    return _transfer(ctx, args)


def cmd_get(ctx: Context, args: argparse.Namespace) -> int:
    _need_s3(args.src, "get's source")
    if parse_s3(args.dst) is not None:
        raise CLIError("get downloads to a local path: use cp between s3:// addresses")
    return _transfer(ctx, args)


def cmd_rm(ctx: Context, args: argparse.Namespace) -> int:
    url = _need_s3(args.path, "rm's address")
    if _on_a_cluster(args):
        return _on_cluster(ctx, args)
    client = ctx.client(url.bucket)
    if args.version_id is not None and (args.recursive or not args.version_id.strip()):
        raise CLIError("--version-id takes one version of one key (not with --recursive)")
    if not args.recursive:
        what = f"{url} (version {args.version_id})" if args.version_id else str(url)
        if ctx.dryrun:
            ctx.out.line(f"(dryrun) delete: {what}")
            return 0
        filename = _filename(url.key)
        if args.version_id:
            filename += "?versionId=" + args.version_id  # that version, for good
        res = client.del_(filename).end().wait()
        _check(res, url)
        res.resume()
        ctx.out.line(f"delete: {what}")
        return 0
    keys = [str(e["Key"]) for e in client.listAll({"prefix": url.dir_prefix})]
    return _delete_keys(ctx, client, keys)


def _delete_keys(ctx: Context, client: Client, keys: List[str]) -> int:
    if ctx.dryrun:
        for key in keys:
            ctx.out.line(f"(dryrun) delete: s3://{client.bucket}/{key}")
        return 0
    result = client.deleteAll([{"Key": k} for k in keys]).wait()
    failed = {e["Key"]: e for e in result["errors"]}
    for key in keys:
        if key in failed:
            e = failed[key]
            ctx.out.error(f"delete failed: s3://{client.bucket}/{key}: {e['Code']}: "
                          f"{e['Message']}")
        else:
            ctx.out.line(f"delete: s3://{client.bucket}/{key}")
    return 1 if failed else 0


def _cat(ctx: Context, url: S3Url) -> int:
    res = ctx.client(url.bucket).get(_filename(url.key)).end().wait()
    _check(res, url)
    out = sys.stdout.buffer
    try:
        for chunk in res:
            out.write(chunk)
        out.flush()
    except BrokenPipeError:  # `knoxpy cat ... | head`: the reader has all it wanted
        res.destroy()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def cmd_cat(ctx: Context, args: argparse.Namespace) -> int:
    return _cat(ctx, _need_s3(args.path, "cat's address"))


def cmd_presign(ctx: Context, args: argparse.Namespace) -> int:
    url = _need_s3(args.path, "presign's address")
    options: Dict[str, Any] = {"verb": args.method.upper()}
    if args.content_type:
        options["contentType"] = args.content_type
    try:
        signed = ctx.client(url.bucket).signedUrl(_filename(url.key), time.time() + args.expires,
                                                  options)
    except ValidationError as err:
        raise CLIError(str(err)) from None
    print(signed)
    return 0


def cmd_stat(ctx: Context, args: argparse.Namespace) -> int:
    url = _need_s3(args.path, "stat's address")
    res = ctx.client(url.bucket).head(_filename(url.key)).end().wait()
    _check(res, url)
    res.resume()
    h = res.headers
    size = _answer_header(res, "Content-Length", _validate.content_length, str(url)) or 0
    _answer_header(res, "Last-Modified", _http_date, str(url))  # shown as S3 sent it
    info: Dict[str, Any] = {
        "Key": str(url), "Size": size,
        "ContentType": h.get("content-type"), "ETag": h.get("etag"),
        "LastModified": h.get("last-modified"),
        "StorageClass": h.get("x-amz-storage-class", "STANDARD"),
    }
    for name, label in (("x-amz-version-id", "VersionId"),
                        ("x-amz-server-side-encryption", "ServerSideEncryption"),
                        ("x-amz-server-side-encryption-aws-kms-key-id", "SSEKMSKeyId"),
                        ("content-encoding", "ContentEncoding"),
                        ("cache-control", "CacheControl"),
                        ("content-disposition", "ContentDisposition")):
        if h.get(name):
            info[label] = h[name]
    info["Metadata"] = {k[len("x-amz-meta-"):]: v for k, v in sorted(h.items())
                        if k.startswith("x-amz-meta-")}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for name, value in info.items():
        if name == "Size":
            value = f"{value} ({human_size(value)})"
        if name == "Metadata":
            print("Metadata:" + ("" if value else "     (none)"))
            for k, v in value.items():
                print(f"  {k}: {v}")
            continue
        print(f"{name + ':':<15}{value}")
    return 0


# -- sync -------------------------------------------------------------------------------------
def _md5_file(path: str) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            md5.update(chunk)
    return md5.hexdigest()


def differs(path: str, entry: Dict[str, Any], upload: bool) -> bool:
    """Whether ``path`` and the listed object differ (``upload``: local is the source).

    Sizes first; a single-part ETag is the MD5 of the content, so it is compared to the
    file's; a multipart ETag is not, so then the newer side (mtime vs LastModified) wins.
    """
    st = os.stat(path)
    if st.st_size != int(entry.get("Size", -1)):
        return True
    etag = str(entry.get("ETag", "")).strip('"')
    if _MD5_ETAG.match(etag):
        return _md5_file(path) != etag
    modified = entry.get("LastModified")
    if not isinstance(modified, _dt.datetime):
        return True
    remote = modified.timestamp()
    return st.st_mtime > remote + 1 if upload else remote > st.st_mtime + 1


def cmd_sync(ctx: Context, args: argparse.Namespace) -> int:
    if _on_a_cluster(args):
        return _on_cluster(ctx, args)
    s3_src, s3_dst = parse_s3(args.src), parse_s3(args.dst)
    if (s3_src is None) == (s3_dst is None):
        raise CLIError("sync needs one local directory and one s3://bucket/prefix")
    if s3_dst is not None:
        return _sync_up(ctx, args.src, s3_dst, args.delete, args.force)
    assert s3_src is not None
    return _sync_down(ctx, s3_src, args.dst, args.delete, args.force)


def _refuse_empty_source(source: str, doomed: int, where: str, force: bool) -> None:
    """A ``--delete`` from a source that lists nothing would empty the destination: a
    wrong prefix or an unmounted disk, far more often than a wish; ``--force`` says so."""
    if doomed and not force:
        raise CLIError(f"sync --delete: the source {source} lists nothing, so all {doomed} "
                       f"files in {where} would be deleted; refusing (add --force to do it)")


def _sync_up(ctx: Context, root: str, dst: S3Url, delete: bool, force: bool) -> int:
    if not os.path.isdir(root):
        raise CLIError(f"{root!r} is not a directory")
    client = ctx.client(dst.bucket)
    prefix = dst.dir_prefix
    remote = {str(e["Key"])[len(prefix):]: e for e in _remote(ctx, dst, prefix)}
    jobs = []
    local = set()
    for path, rel in _walk(root):
        local.add(rel)
        entry = remote.get(rel)
        if entry is None or differs(path, entry, upload=True):
            jobs.append(Job("upload", path, str(dst.under(rel)),
                            os.path.getsize(path), _sender(client, path, prefix + rel)))
    # a key whose file exists is never deleted, whatever the walk skipped it for
    gone = [prefix + rel for rel in sorted(remote)
            if rel not in local and not _local_exists(root, rel)] if delete else []
    if not local:
        _refuse_empty_source(repr(root), len(gone), str(dst), force)
    failed = run_jobs(ctx, jobs)
    if gone:
        failed += _delete_keys(ctx, client, gone)
    return 1 if failed or ctx.out.failures else 0


def _local_exists(root: str, rel: str) -> bool:
    try:
        return os.path.lexists(_validate.local_path_for_key(root, rel))
    except ValidationError:  # a key no file under root could be (../x): not the walk's
        return False


def _sync_down(ctx: Context, src: S3Url, root: str, delete: bool, force: bool) -> int:
    client = ctx.client(src.bucket)
    prefix = src.dir_prefix
    jobs = []
    wanted = set()
    for entry in _remote(ctx, src, prefix):
        key = str(entry["Key"])
        rel = key[len(prefix):]
        if not rel or key.endswith("/"):
            continue
        try:
            path = _local_target(root, rel)
        except CLIError as err:
            ctx.out.error(f"download skipped: s3://{src.bucket}/{key}: {err}")
            continue
        wanted.add(os.path.normcase(path))
        if not os.path.exists(path) or differs(path, entry, upload=False):
            jobs.append(Job("download", f"s3://{src.bucket}/{key}", os.path.join(root, rel),
                            int(entry.get("Size", 0)), _fetcher(client, key, path)))
    gone = [path for path, _ in _walk(root)
            if os.path.normcase(os.path.realpath(path)) not in wanted
            ] if delete and os.path.isdir(root) else []
    if not wanted:
        _refuse_empty_source(str(src), len(gone), repr(root), force)
    failed = run_jobs(ctx, jobs)
    for path in gone:
        if ctx.dryrun:
            ctx.out.line(f"(dryrun) delete: {path}")
            continue
        try:
            os.remove(path)
            ctx.out.line(f"delete: {path}")
        except OSError as err:
            failed += 1
            ctx.out.error(f"delete failed: {path}: {_reason(err)}", err)
    return 1 if failed or ctx.out.failures else 0


# -- bulk work on a Dask cluster (--scheduler; knoxpy.cluster, the dask extra) ---------------
def _on_a_cluster(args: argparse.Namespace) -> bool:
    """Whether the command runs on a Dask cluster (``--scheduler``)."""
    if args.manifest and not args.scheduler:
        raise CLIError("--manifest goes with --scheduler")
    return bool(args.scheduler)


def _on_cluster(ctx: Context, args: argparse.Namespace) -> int:
    """``cp -r`` or ``sync`` between s3:// prefixes, or ``rm -r`` of one, on a Dask cluster."""
    try:
        from . import cluster
    except ImportError as err:
        raise CLIError(f"--scheduler: {err}") from None
    if not (args.command == "sync" or args.recursive) or ctx.dryrun:
        raise CLIError("--scheduler goes with --recursive (and without --dryrun)")
    if args.command == "rm":
        src, dst = _need_s3(args.path, "rm's address"), None
    else:  # the workers cannot read this machine's files
        src = _need_s3(args.src, "with --scheduler the source")
        dst = _need_s3(args.dst, "with --scheduler the destination")
    client = ctx.client(src.bucket)
    verb = {"rm": "delete", "cp": "copy", "sync": "sync"}[args.command]
    with cluster.connect(args.scheduler) as dask:
        options = {"manifest": args.manifest, "concurrency": ctx.jobs}
        if dst is None:
            op = client.deleteAll(client.listAll({"prefix": src.dir_prefix}), cluster=dask,
                                  **options)
        else:
            target = {"bucket": dst.bucket, "prefix": dst.dir_prefix}
            op = (cluster.sync(client, src.dir_prefix, target, dask, delete=args.delete,
                               **options) if verb == "sync" else
                  client.copyAll(src.dir_prefix, target, cluster=dask,
                                 headers=ctx.copy_headers, **options))
        bar = ctx.out.bar(f"{verb} on the cluster", None)
        op.on("progress", lambda p: bar.to(int(p["bytes"])))
        op.on("keyError", lambda e: ctx.out.error(
            f"{verb} failed: s3://{src.bucket}/{e['Key']}: {e['Code']}: {e['Message']}"))
        try:
            result = op.wait()
        finally:
            bar.close()
    done = (f"{result['copied']} copied, {result['deleted']} deleted, {result['unchanged']} "
            "unchanged" if verb == "sync" else
            f"{result['deleted' if dst is None else 'copied']} objects")
    ctx.out.line(f"{verb}: {done} ({human_size(result['bytes'])}) under {src}"
                 + (f" to {dst.bucket}/{dst.dir_prefix}" if dst else "")
                 + f", {result['partitions']} partitions"
                 + (f" ({result['skipped']} keys done before, per the manifest)"
                    if result["skipped"] else ""))
    return 1 if result["errors"] else 0


def _copy_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("between s3:// addresses: on every copy")
    g.add_argument("--storage-class", metavar="CLASS",
                   help="the copies' storage class (STANDARD_IA, GLACIER_IR, ...)")
    g.add_argument("--metadata-directive", choices=("COPY", "REPLACE"),
                   help="keep the source's metadata (COPY, S3's default) or not (REPLACE)")
    g.add_argument("--sse", choices=("AES256", "aws:kms"),
                   help="the copies encrypted with S3's keys or with KMS")
    g.add_argument("--sse-kms-key-id", metavar="ID", help="with --sse aws:kms: the KMS key")
    g.add_argument("--sse-c-key", metavar="FILE",
                   help="SSE-C: the copies encrypted with the 32-byte key in FILE "
                        "(fileb://FILE as the AWS CLI writes it)")
    g.add_argument("--sse-c-copy-source-key", metavar="FILE",
                   help="SSE-C: the key in FILE that reads the sources")


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="between s3:// addresses (cp -r, sync) or under one (rm -r): run on "
                        "a Dask cluster (the dask extra): a scheduler's address such as "
                        "tcp://host:8786, or local:N for N local worker processes")
    p.add_argument("--manifest", metavar="FILE",
                   help="with --scheduler: record finished partitions in FILE (JSON); a "
                        "rerun with it skips them")


# -- the parser -------------------------------------------------------------------------------
_ADDRESSES = """\
addresses:
  s3://bucket/key     an object; s3://bucket/prefix/ a "directory" (keys share the prefix)
  PATH                a local file or directory; '-' is stdout for cp (s3 -> -)
"""
_CREDENTIALS = """\
credentials and settings (first found wins):
  --profile / --region / --endpoint-url, then AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  AWS_SESSION_TOKEN, AWS_REGION (AWS_DEFAULT_REGION), AWS_ENDPOINT_URL (_S3), then the
  profile (AWS_PROFILE, else 'default') in ~/.aws/credentials and ~/.aws/config
  (AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move them). See docs/credentials.md.

exit status: 0 done, 1 an S3 or transfer error, 2 a usage error, 130 interrupted.
"""

_COMMANDS: Dict[str, Tuple[str, str, str]] = {
    # name: (one-line help, description, examples)
    "ls": ("list objects and prefixes",
           "List the objects under an s3:// prefix. Without --recursive, keys are grouped at\n"
           "the next '/' and shown as 'PRE name/' lines, as the AWS CLI does; names are\n"
           "relative to the prefix's last '/'. Times are local.",
           "  knoxpy ls s3://photos/\n  knoxpy ls -h --recursive --summarize s3://photos/2024/"),
    "put": ("upload a file or a directory",
            "Upload a local file to a key (a destination ending in '/' keeps the file's\n"
            "name), or with --recursive every file under a directory, under the prefix.",
            "  knoxpy put report.pdf s3://docs/2024/\n  knoxpy put -r ./site s3://www/"),
    "get": ("download an object or a prefix",
            "Download an object to a file (a directory keeps the key's name), or with\n"
            "--recursive every key under a prefix into a directory. Files appear only when\n"
            "complete and checked (size, and MD5 for single-part ETags). Keys that would\n"
            "land outside the directory (../x, /x) are refused.",
            "  knoxpy get s3://docs/2024/report.pdf .\n  knoxpy get -r s3://www/ ./site"),
    "cp": ("copy local <-> S3, or S3 -> S3",
           "Copy a file or object: local to s3 (upload), s3 to local (download), s3 to s3\n"
           "(server-side copy, no bytes through this machine), s3 to '-' (stdout).\n"
           "--recursive copies a whole directory or prefix.",
           "  knoxpy cp a.txt s3://b/a.txt\n  knoxpy cp -r s3://b/2024/ s3://archive/2024/\n"
           "  knoxpy cp s3://b/a.txt - | wc -c"),
    "mv": ("move: copy, then remove the source",
           "As cp, then remove each source once it has safely arrived (local files are\n"
           "deleted after their upload, keys after their download or copy).",
           "  knoxpy mv s3://b/inbox/a.txt s3://b/done/\n  knoxpy mv -r ./outgoing s3://b/in/"),
    "rm": ("delete an object, or a prefix with --recursive",
           "Delete one key, or with --recursive every key under the prefix (batches of\n"
           "1000, in parallel). S3 answers success for a key that does not exist.",
           "  knoxpy rm s3://b/a.txt\n  knoxpy rm --recursive --dryrun s3://b/tmp/"),
    "cat": ("write an object to stdout",
            "Stream an object's bytes to standard output.",
            "  knoxpy cat s3://b/config.json | python -m json.tool"),
    "presign": ("print a presigned URL",
                "Print a URL that grants --method on the key, without credentials, for\n"
                "--expires seconds (Signature V4: at most 604800, 7 days). Nothing is sent.",
                "  knoxpy presign s3://b/a.txt --expires 600\n"
                "  knoxpy presign --method PUT --content-type text/plain s3://b/upload.txt\n"
                "  curl -T upload.txt -H 'Content-Type: text/plain' \"$URL\""),
    "stat": ("show an object's size, type, ETag, date and metadata",
             "HEAD the object and show what S3 says about it; --json for scripts.",
             "  knoxpy stat s3://b/a.txt\n  knoxpy stat --json s3://b/a.txt | jq .Size"),
    "sync": ("make a prefix match a directory, or a directory match a prefix",
             "Copy what is new or changed from the source side (a local directory or an\n"
             "s3:// prefix) to the other. Files differ when their sizes differ or, for the\n"
             "same size, when the file's MD5 differs from a single-part ETag; for multipart\n"
             "ETags (not an MD5) the newer side wins (mtime vs LastModified). --delete also\n"
             "removes what the source side no longer has (refused when the source lists\n"
             "nothing, unless --force); --dryrun shows what would be done.",
             "  knoxpy sync ./site s3://www/ --delete\n"
             "  knoxpy sync s3://backup/db/ ./db --dryrun"),
    "trace": ("turn a HAR trace (--trace FILE.har) into a page",
              "Write the self-contained HTML page of a HAR file that --trace wrote: the\n"
              "waterfall of every request, grouped by the knoxpy call that made it; a click\n"
              "on a row shows its signing steps and headers. No credentials needed.",
              "  knoxpy --trace run.har put big.iso s3://backup/\n"
              "  knoxpy trace run.har -o run.html"),
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def _globals_parser(defaults: bool) -> argparse.ArgumentParser:
    """The global options, accepted before or after the command (like the AWS CLI's)."""
    d: Callable[[Any], Any] = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument("--endpoint-url", metavar="URL", default=d(None),
                   help="an S3-compatible service, e.g. http://127.0.0.1:9000 (MinIO, moto);"
                        " IP and localhost endpoints use path-style URLs")
    g.add_argument("--ca-bundle", metavar="FILE", default=d(None),
                   help="the CA certificates to trust over HTTPS (a PEM file or a directory);"
                        " default from AWS_CA_BUNDLE, the profile's ca_bundle, SSL_CERT_FILE,"
                        " else the system's")
    g.add_argument("--profile", metavar="NAME", default=d(None),
                   help="the profile in ~/.aws/credentials and ~/.aws/config")
    g.add_argument("--region", metavar="REGION", default=d(None),
                   help="the bucket's region (e.g. eu-west-1); default from AWS_REGION or"
                        " the profile, else us-east-1")
    g.add_argument("-q", "--quiet", action="store_true", default=d(False),
                   help="print only errors: no result lines, no progress bars")
    g.add_argument("--debug", action="store_true", default=d(False),
                   help="tracebacks with errors, and knoxpy's DEBUG logging on stderr")
    g.add_argument("--explain", action="store_true", default=d(False),
                   help="teaching mode: print each HTTP request, its canonical request,"
                        " string to sign, signing key steps and signature, and the"
                        " response, on stderr (secrets masked)")
    g.add_argument("--trace", metavar="FILE", default=d(None),
                   help="record every request (timings, headers, signing steps; secrets"
                        " masked) into FILE: HAR 1.2, or the waterfall page for .html")
    g.add_argument("-j", "--jobs", type=int, metavar="N", default=d(DEFAULT_JOBS),
                   help=f"files transferred at once (default {DEFAULT_JOBS})")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, parents=[_globals_parser(True)],
        description="S3 from the command line, with knoxpy (the Python port of knox).",
        epilog=_ADDRESSES + "\n" + _CREDENTIALS + "\nexamples:\n"
        "  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...\n"
        "  knoxpy ls s3://my-bucket/\n"
        "  knoxpy --endpoint-url http://127.0.0.1:9000 put -r ./photos s3://my-bucket/photos/\n"
        "  knoxpy --explain stat s3://my-bucket/photos/a.jpg\n\n"
        "'knoxpy COMMAND --help' tells more about each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _globals_parser(False)
    cmds = {}
    for name, (summary, description, examples) in _COMMANDS.items():
        cmds[name] = sub.add_parser(
            name, help=summary, description=description, formatter_class=_Formatter,
            epilog="examples:\n" + examples + "\n\n" + _CREDENTIALS, parents=[common],
            add_help=name != "ls",  # ls -h is --human-readable, as in ls(1) and du(1)
        )
    ls = cmds["ls"]
    ls.add_argument("--help", action="help", help="show this help message and exit")
    ls.add_argument("path", metavar="s3://bucket[/prefix]")
    ls.add_argument("-r", "--recursive", action="store_true",
                    help="every key under the prefix, with full key names")
    ls.add_argument("-h", "--human-readable", action="store_true",
                    help="sizes in KiB, MiB, GiB...")
    ls.add_argument("--summarize", action="store_true", help="end with the count and total size")
    ls.add_argument("--versions", action="store_true",
                    help="every version and delete marker, with its version id")
    ls.set_defaults(func=cmd_ls)
    for name, func in (("put", cmd_put), ("get", cmd_get), ("cp", cmd_cp), ("mv", cmd_mv)):
        p = cmds[name]
        p.add_argument("src", metavar="SOURCE")
        p.add_argument("dst", metavar="DEST", nargs="?" if name == "get" else None,
                       default="." if name == "get" else None)
        p.add_argument("-r", "--recursive", action="store_true",
                       help="a whole directory or prefix")
        p.add_argument("--dryrun", action="store_true", help="show what would be done, do nothing")
        if name in ("put", "cp"):
            p.add_argument("--no-overwrite", action="store_true",
                           help="uploads: never replace an existing key (If-None-Match: *)")
        if name == "cp":
            _copy_arguments(p)
            _cluster_arguments(p)
        p.set_defaults(func=func)
    rm = cmds["rm"]
    rm.add_argument("path", metavar="s3://bucket/key")
    rm.add_argument("-r", "--recursive", action="store_true", help="every key under the prefix")
    rm.add_argument("--dryrun", action="store_true", help="show what would be deleted")
    rm.add_argument("--version-id", metavar="ID", help="delete that version of the key")
    _cluster_arguments(rm)
    rm.set_defaults(func=cmd_rm)
    cat = cmds["cat"]
    cat.add_argument("path", metavar="s3://bucket/key")
    cat.set_defaults(func=cmd_cat)
    presign = cmds["presign"]
    presign.add_argument("path", metavar="s3://bucket/key")
    presign.add_argument("--expires", type=int, default=3600, metavar="SECONDS",
                         help="how long the URL works (default 3600; at most 604800)")
    presign.add_argument("--method", default="GET", type=str.upper,
                         choices=["GET", "PUT", "HEAD", "DELETE"],
                         help="the HTTP method the URL allows (default GET)")
    presign.add_argument("--content-type", metavar="TYPE",
                         help="for PUT: the Content-Type the uploader must send")
    presign.set_defaults(func=cmd_presign)
    stat = cmds["stat"]
    stat.add_argument("path", metavar="s3://bucket/key")
    stat.add_argument("--json", action="store_true", help="print JSON")
    stat.set_defaults(func=cmd_stat)
    sync = cmds["sync"]
    sync.add_argument("src", metavar="SOURCE", help="a local directory or s3://bucket/prefix/")
    sync.add_argument("dst", metavar="DEST", help="the other one")
    sync.add_argument("--delete", action="store_true",
                      help="also delete what the source side does not have")
    sync.add_argument("--force", action="store_true",
                      help="with --delete: go on even when the source lists nothing")
    sync.add_argument("--dryrun", action="store_true", help="show what would be done, do nothing")
    _cluster_arguments(sync)
    sync.set_defaults(func=cmd_sync)
    page = cmds["trace"]
    page.add_argument("har", metavar="FILE.har")
    page.add_argument("-o", "--output", metavar="PAGE.html",
                      help="where to write the page (default: FILE.html beside it)")
    return parser


def cmd_trace(args: argparse.Namespace) -> int:
    """``knoxpy trace FILE.har -o PAGE.html``: the page of a HAR (needs no credentials)."""
    from . import trace

    output = args.output or os.path.splitext(args.har)[0] + ".html"
    try:
        count = trace.har_to_page(args.har, output)
    except ValueError as err:
        raise CLIError(str(err)) from err
    if not args.quiet:
        print(f"{output}: {count} requests (open it in a browser)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (``python -m knoxpy`` exits with it)."""
    args = build_parser().parse_args(argv)
    if args.jobs < 1:
        build_parser().error("--jobs must be at least 1")
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    out = Output(args.quiet, args.debug)
    ctx: Optional[Context] = None
    try:
        if args.command == "trace":
            return cmd_trace(args)
        ctx = Context(args, out)
        status: int = args.func(ctx, args)
        return status
    except KeyboardInterrupt as exc:
        _cancel.interrupted(exc)  # what runs stops; the exit hook waits for its cleanup
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, KnoxError, OSError) as err:
        if args.debug:
            traceback.print_exc()
        text = str(err) if isinstance(err, (CLIError, KnoxError)) else _reason(err)
        print(f"{PROG}: error: {text}", file=sys.stderr)
        return 1
    finally:
        if ctx is not None and ctx.trace is not None:
            try:
                print(f"{PROG}: trace written to {ctx.trace.save()}", file=sys.stderr)
            except OSError as err:
                print(f"{PROG}: error: could not write the trace: {_reason(err)}",
                      file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
