"""A streamed body's 'progress': posted at most every PROGRESS_INTERVAL, the last count always.

Each post from the worker that sends wakes the loop's thread; a 512 MiB putFile posted 2,048
of them (one per 256 KiB frame). Against moto.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

import pytest

from knoxpy import _streams
from knoxpy._chunked import CHUNK


def _put_file(client: Any, path: Path, key: str) -> List[Dict[str, int]]:
    events: List[Dict[str, int]] = []
    res = client.putFile(str(path), key).on("progress", events.append).wait(60)
    assert res.statusCode == 200
    res.resume()
    return events


def test_a_putfile_posts_its_first_count_and_its_last(client: Any, tmp_path: Path,
                                                       monkeypatch: Any) -> None:
    """With an interval longer than the upload, two events: the first frame, and the end."""
    size = 5 * CHUNK + 1234
    path = tmp_path / "body"
    path.write_bytes(os.urandom(size))
    monkeypatch.setattr(_streams, "PROGRESS_INTERVAL", 3600.0)
    events = _put_file(client, path, "/progress/rare")
    assert events == [{"written": CHUNK, "total": size, "percent": 100 * CHUNK // size},
                      {"written": size, "total": size, "percent": 100}]


@pytest.mark.parametrize("interval", [0.0, _streams.PROGRESS_INTERVAL])
def test_progress_counts_rise_to_the_total(client: Any, tmp_path: Path, monkeypatch: Any,
                                           interval: float) -> None:
    """With no interval, one event a frame (as before); with the default, at most that."""
    size = 8 * CHUNK + 99
    path = tmp_path / "body"
    path.write_bytes(os.urandom(size))
    monkeypatch.setattr(_streams, "PROGRESS_INTERVAL", interval)
    events = _put_file(client, path, "/progress/every")
    written = [e["written"] for e in events]
    assert written == sorted(set(written)) and written[-1] == size
    assert all(e["total"] == size for e in events)
    if interval == 0.0:
        assert written == [min(size, CHUNK * (i + 1)) for i in range(9)]
    else:
        assert 1 <= len(events) <= 9
