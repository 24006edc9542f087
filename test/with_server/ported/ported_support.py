"""What the ported corpus shares: knox itself against the same moto, and a raw view of moto.

Each file in this directory ports one real use of knox from public Node code. The port runs
through knoxpy; where Node and knox@0.9.2 are present (test/knox_node.py), the original's
shape runs through knox against the same moto server, and the two are compared. What moto
stored is read back with boto3, neither of the two.
"""
from __future__ import annotations

import uuid
from typing import Any, Dict, List

from knox_node import KNOX, needs_knox, run_node

import knoxpy

__all__ = ["KNOX", "needs_knox", "run_js", "stored", "stored_head", "stored_keys", "prefix",
           "fresh_bucket", "knoxpy_client"]

KEY, SECRET = "AKIDPORTEDCORPUS", "ported/corpus+secret"

# A knox client on moto, path style, as `client`; the original's code follows it. `finish(x)`
# prints the JSON the test reads. *.localhost is loopback (RFC 6761); Node does not know it.
_PREAMBLE = r"""
const knox = require(process.argv[1]);
const http = require('http');
const cfg = JSON.parse(process.argv[2]);
const agent = new http.Agent({keepAlive: false, lookup: (h, o, cb) =>
  o && o.all ? cb(null, [{address: '127.0.0.1', family: 4}]) : cb(null, '127.0.0.1', 4)});
const client = knox.createClient({key: cfg.key, secret: cfg.secret, bucket: cfg.bucket,
  endpoint: 'localhost', port: cfg.port, style: 'path', agent: agent});
function finish(value) { console.log(JSON.stringify(value)); }
process.on('uncaughtException', e => { console.error(e); process.exit(1); });
"""


def run_js(body: str, port: int, bucket: str, **extra: Any) -> Any:
    """Run ``body`` (the original's code) with ``client`` and ``cfg`` defined; its finish()."""
    cfg = dict(key=KEY, secret=SECRET, bucket=bucket, port=port, **extra)
    return run_node(_PREAMBLE + body, cfg)


def knoxpy_client(port: int, bucket: str, **extra: Any) -> Any:
    """A knoxpy client on the same moto, path style, as the knox one."""
    return knoxpy.createClient(key=KEY, secret=SECRET, bucket=bucket, endpoint="localhost",
                               port=port, style="path", **extra)


def prefix(name: str) -> str:
    """A key prefix of this test's own, since the session's bucket is shared."""
    return f"ported/{name}-{uuid.uuid4().hex[:8]}"


def fresh_bucket(port: int) -> str:
    """A new, empty bucket (for code that lists a whole bucket)."""
    name = "ported-" + uuid.uuid4().hex[:12]
    _s3(port).create_bucket(Bucket=name)
    return name


def _s3(port: int) -> Any:
    """boto3 on the same moto: a third client, to read what was stored."""
    import boto3

    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET)


def stored(port: int, bucket: str, key: str) -> bytes:
    """The bytes moto holds under ``key`` (the test fails when there are none)."""
    return bytes(_s3(port).get_object(Bucket=bucket, Key=key.lstrip("/"))["Body"].read())


def stored_head(port: int, bucket: str, key: str) -> Dict[str, str]:
    """The object's HTTP headers, lower-case names; {} when there is no such object."""
    try:
        head = _s3(port).head_object(Bucket=bucket, Key=key.lstrip("/"))
    except Exception:  # botocore's ClientError for a 404
        return {}
    return dict(head["ResponseMetadata"]["HTTPHeaders"])


def stored_keys(port: int, bucket: str, under: str = "") -> List[str]:
    """The keys moto lists under ``under``, in its order."""
    page = _s3(port).list_objects(Bucket=bucket, Prefix=under, MaxKeys=1000)
    return [c["Key"] for c in page.get("Contents", [])]


def fetch(url: str) -> Any:
    """GET ``url`` as a browser would, ``*.localhost`` being loopback (RFC 6761)."""
    import urllib.parse

    import urllib3

    parts = urllib.parse.urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    with urllib3.HTTPConnectionPool("127.0.0.1", parts.port) as pool:
        return pool.urlopen("GET", target, headers={"Host": parts.netloc}, retries=False)
