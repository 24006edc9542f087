"""`make demo` (examples/demo.py) runs to the end, quickly, and tells what it says it does."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from conftest import ROOT

DEMO = ROOT / "examples" / "demo.py"


def test_the_demo_tells_the_whole_story_in_under_a_minute() -> None:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([sys.executable, str(DEMO)], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    took = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, out
    assert took < 60, f"the demo took {took:.0f}s"
    for shown in (
        "saved to http://localhost:",  # knox's README story
        "piped; identical to the source: True",
        "200: {\"foo\": \"bar\"}",  # the signed URL, fetched
        "total unknown",  # the upload of a stream of unknown length...
        "part 4: 5,242,880 bytes",  # ... in parts
        "-4\"",  # a multipart ETag
        "MD5 matches what was sent: True",  # the verified download
        "300 keys: many/key-0000.txt ... many/key-0299.txt",  # listAll across pages
        "{'copied': 300, 'errors': []}",
        "backup/: {'deleted': 300, 'errors': []}",
        "PRE many/",  # the CLI's ls
        "20.0 MiB random.bin",
        "4. The signing key",  # --explain
        "StorageClass:  STANDARD",  # stat's own output after the explanation
        "then pd.read_parquet: 3 rows, the same frame: True",  # pandas through knox://
        "300 copied in 3 partitions by ",  # copyAll on a LocalCluster
        ", errors: []",
        "keys left in the bucket: 0",
        "/knoxpy-demo/trace.html in a browser",  # the trace, written
        "demo finished",
    ):
        assert shown in out, f"{shown!r} not in the demo's output:\n{out}"
    for secret in ("demo-secret", "<secret-here>"):
        assert secret not in out
