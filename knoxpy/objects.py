"""Per-object calls beyond knox: tags, and restores of archived objects.

Each call returns an :class:`~knoxpy._emitter.Operation` at once and runs on a worker, in
knox's style (``fn(err, result)``, ``.wait()``, ``await``), as transfers and bulk do:

    client.getTags(filename, fn)            -> {key: value}
    client.putTags(filename, tags, fn)      -> {key: value} as stored (S3 keeps at most 10)
    client.restore(filename, options, fn)   -> {Key, ongoing, expiry}; 'progress' events

A restore asks S3 to bring back a copy of an archived object (Glacier storage classes)
for ``days``; S3 takes minutes to hours, and says how far it is in ``x-amz-restore`` of a
HEAD. ``restore`` polls that header (every ``poll`` seconds) and emits a ``'progress'``
``{Key, ongoing, expiry}`` each time it changes, until the copy is readable.
"""
from __future__ import annotations

import re
import time
from typing import Any, Dict, Mapping, Optional

from . import _js, _xml, auth
from ._emitter import Operation
from ._sources import key_of
from ._work import Callback, Session, fail_later, key_target, start
from .client import Client
from .errors import S3Error, ValidationError

__all__ = ["get_tags", "put_tags", "restore", "restore_state"]

TIERS = ("Standard", "Bulk", "Expedited")
DEFAULT_POLL = 60.0  # seconds between HEADs while a restore is under way
_ONGOING = re.compile(r'ongoing-request="(true|false)"')
_EXPIRY = re.compile(r'expiry-date="([^"]*)"')


def restore_state(header: Optional[str]) -> Optional[Dict[str, Any]]:
    """What an ``x-amz-restore`` header says: ``{ongoing, expiry}``, None without one.

    >>> restore_state('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')
    {'ongoing': False, 'expiry': 'Fri, 21 Dec 2012 00:00:00 GMT'}
    """
    if not header:
        return None
    ongoing = _ONGOING.search(header)
    expiry = _EXPIRY.search(header)
    return {"ongoing": ongoing is None or ongoing[1] == "true",
            "expiry": expiry[1] if expiry else None}


def _tags_path(filename: str) -> str:
    key = key_of(filename)
    if not key:
        raise ValidationError("tags: filename must name a key")
    return key_target(key) + "?tagging"


def get_tags(client: Client, filename: str, fn: Optional[Callback] = None) -> Operation:
    """``client.getTags(filename, fn)``: the object's tags, ``{key: value}``.

    >>> client.getTags('/report.pdf').wait()            # doctest: +SKIP
    {'team': 'data'}
    """
    op = Operation()
    try:
        path = _tags_path(filename)
    except ValidationError as err:
        return fail_later(op, fn, err)

    def body() -> Dict[str, str]:
        _, xml = Session().send(client, "GET", path)
        return _xml.parse_tagging(xml)

    return start(op, fn, body)


def check_tags(tags: Any) -> Dict[str, str]:
    """``tags`` as S3 takes them: at most 10 string pairs (None values left out, as JS's
    undefined); anything else is a ValidationError naming it."""
    if not isinstance(tags, Mapping):
        raise ValidationError(f"tags must be a dict of strings, not {type(tags).__name__}")
    tags = _js.defined(tags)
    if len(tags) > _xml.MAX_TAGS:
        raise ValidationError(f"S3 keeps at most {_xml.MAX_TAGS} tags per object, "
                              f"not {len(tags)}")
    for k, v in tags.items():
        if not isinstance(k, str) or not k or not isinstance(v, (str, int, float)):
            raise ValidationError(f"tag {k!r}: keys must be non-empty strings and values "
                                  "strings")
    return {k: str(v) for k, v in tags.items()}


def put_tags(client: Client, filename: str, tags: Mapping[str, Any],
             fn: Optional[Callback] = None) -> Operation:
    """``client.putTags(filename, tags, fn)``: replace the object's tags with ``tags``.

    >>> client.putTags('/report.pdf', {'team': 'data'}).wait()    # doctest: +SKIP
    {'team': 'data'}
    """
    op = Operation()
    try:
        path = _tags_path(filename)
        clean = check_tags(tags)
    except ValidationError as err:
        return fail_later(op, fn, err)

    def body() -> Dict[str, str]:
        xml = _xml.build_tagging(clean)
        Session().send(client, "PUT", path, {"Content-Length": len(xml),
                                             "Content-MD5": auth.content_md5(xml)}, xml)
        return clean

    return start(op, fn, body)


def restore(client: Client, filename: str, options: Optional[Mapping[str, Any]] = None,
            fn: Optional[Callback] = None) -> Operation:
    """``client.restore(filename, {days, tier, wait, poll}, fn)``: bring back an archived
    object for ``days`` (default 1) at ``tier`` (``'Standard'``, ``'Bulk'`` or
    ``'Expedited'``).

    With ``wait`` (the default) the operation polls the object's ``x-amz-restore`` every
    ``poll`` seconds (default 60) and ends when the copy is readable; ``wait=False`` ends
    once S3 took the request. Events: ``'progress'`` ``{Key, ongoing, expiry}`` as S3's
    answer changes. Result: ``{Key, ongoing, expiry}``.

    >>> client.restore('/2019/logs.tar', {'days': 2, 'tier': 'Bulk'}).wait()  # doctest: +SKIP
    {'Key': '2019/logs.tar', 'ongoing': False, 'expiry': 'Fri, 21 Dec 2026 00:00:00 GMT'}
    """
    op = Operation()
    opts = _js.defined(options)
    try:
        key = key_of(filename)
        if not key:
            raise ValidationError("restore: filename must name a key")
        days, tier = opts.get("days", 1), opts.get("tier", "Standard")
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValidationError(f"restore: days must be a whole number, 1 or more, not "
                                  f"{days!r}")
        if tier not in TIERS:
            raise ValidationError(f"restore: tier must be one of {', '.join(TIERS)}, not "
                                  f"{tier!r}")
        poll = opts.get("poll", DEFAULT_POLL)
        if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not poll > 0:
            raise ValidationError(f"restore: poll must be a number of seconds, not {poll!r}")
        wait = bool(opts.get("wait", True))
    except ValidationError as err:
        return fail_later(op, fn, err)
    target = key_target(key)

    def body() -> Dict[str, Any]:
        session = Session()
        xml = _xml.build_restore(days, tier)
        try:
            session.send(client, "POST", target + "?restore",
                         {"Content-Length": len(xml), "Content-MD5": auth.content_md5(xml)},
                         xml)
        except S3Error as err:
            if err.code != "RestoreAlreadyInProgress":  # asked before: follow that one
                raise
        shown: Optional[Dict[str, Any]] = None
        while True:
            res, _ = session.send(client, "HEAD", target)
            state = restore_state(res.headers.get("x-amz-restore")) or {
                "ongoing": True, "expiry": None}
            state = {"Key": key, **state}
            if state != shown:
                op._post("progress", _js.Record(state))
                shown = state
            if not wait or not state["ongoing"]:
                return state
            time.sleep(float(poll))

    return start(op, fn, body)
