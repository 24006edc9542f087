"""Ctrl-C stops knoxpy's work: every running operation is cancelled at once.

A KeyboardInterrupt raised in a blocking wait (``Operation.wait``, the CLI's), or an
interpreter exiting because of one (:func:`ended_by_interrupt`), calls
:func:`cancel_all`. Without it, the workers would go on (they are other threads, which
Ctrl-C does not reach) and the exit hook, draining the loop, would complete an upload
the user meant to stop.

:func:`cancel_all`, in this order:

1. bumps the *generation*: a request of work begun before it (knoxpy._streams records
   :func:`since` when a request is made: its operation's generation) fails with
   :class:`~knoxpy.errors.Cancelled` instead of being sent, retried or read on; one of
   work begun after it, or :func:`shielded` (an abort, a cleanup), runs as usual;
2. sets every registered stop event (knoxpy._work's ``fan_out``): workers take no more
   parts, ranges or batches, and the operation fails with ``Cancelled``;
3. calls the cut hooks: knoxpy._transport shuts down the sockets of the connections in
   use, so a request blocked in a send or a read returns at once, whatever its timeout.

Each operation then cleans up as on any failure: a multipart upload is aborted, a
partial file removed, and the operation settles with ``Cancelled``. Nothing here knows
sockets or urllib3; it is a registry, safe to call from any thread.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from typing import Any, Callable, List, Optional, TypeVar

__all__ = ["cancel_all", "cancelled_since", "ended_by_interrupt", "generation", "interrupted",
           "on_cancel", "scope", "shielded", "since", "watch", "within"]

T = TypeVar("T")

_lock = threading.Lock()
_generation = 0
_stops: weakref.WeakSet[threading.Event] = weakref.WeakSet()
_cut_hooks: List[Callable[[], None]] = []


class _ThisThread(threading.local):
    """What this thread works for: a class-level default, so that reading it on a thread
    that never set it finds the class's value (``getattr`` with a default would make and
    swallow an AttributeError each time: a third of a request's construction)."""

    since: Optional[int] = None  # the generation of the operation run on this thread


_local = _ThisThread()


def generation() -> int:
    """The current generation: record it when work begins, ask :func:`cancelled_since`."""
    return _generation


def cancelled_since(recorded: int) -> bool:
    """Whether everything was cancelled after ``recorded`` was taken."""
    return _generation != recorded


def since() -> int:
    """The generation that work begun now on this thread belongs to: that of the
    operation this thread works for (:func:`scope`), else the current one. A request
    made by an upload's driver after a Ctrl-C is thus cancelled, not sent."""
    recorded = _local.since
    return _generation if recorded is None else recorded


class scope:
    """Work done on this thread meanwhile belongs to the operation begun at ``recorded``.

    A class rather than a generator, cheap to enter (:func:`within` is cheaper still).
    """

    __slots__ = ("_recorded", "_before")

    def __init__(self, recorded: int) -> None:
        self._recorded = recorded
        self._before: Optional[int] = None

    def __enter__(self) -> None:
        self._before = _local.since
        _local.since = self._recorded

    def __exit__(self, *exc: object) -> None:
        _local.since = self._before


def within(recorded: int, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` as work of the operation begun at ``recorded``: :class:`scope` in one
    call, for every request's send (a ``with`` block is three, and two method objects)."""
    before = _local.since
    _local.since = recorded
    try:
        return fn(*args)
    finally:
        _local.since = before


def shielded() -> contextlib.AbstractContextManager[None]:
    """Cleanup after a cancel (an abort): not cancelled by the cancel that caused it."""
    return scope(_generation)


class watch:
    """``with watch(stop):`` sets ``stop`` if everything is cancelled meanwhile.

    ``.cancelled`` tells afterwards whether that is why it was set.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._since = since()

    @property
    def cancelled(self) -> bool:
        return cancelled_since(self._since)

    def __enter__(self) -> watch:
        with _lock:
            _stops.add(self.stop)
            if cancelled_since(self._since):  # cancelled before it was registered
                self.stop.set()
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _stops.discard(self.stop)


def on_cancel(hook: Callable[[], None]) -> None:
    """Call ``hook()`` (from any thread) whenever everything is cancelled."""
    _cut_hooks.append(hook)


def cancel_all() -> None:
    """Cancel every running operation (see the module docstring)."""
    global _generation
    with _lock:
        _generation += 1
        stops = list(_stops)
    for stop in stops:
        stop.set()
    for hook in list(_cut_hooks):
        hook()


def interrupted(exc: BaseException) -> None:
    """A KeyboardInterrupt came: cancel everything, once for it (seen again further up,
    or at exit, it must not cut the cleanup the first cancel began: the aborts)."""
    if not getattr(exc, "knoxpy_cancelled", False):
        cancel_all()
        exc.knoxpy_cancelled = True  # type: ignore[attr-defined]


def ended_by_interrupt() -> Optional[BaseException]:
    """At exit: the KeyboardInterrupt the script ends on, if one nobody caught (one caught,
    after which the script went on, cancelled what ran then, and only that)."""
    last = getattr(sys, "last_value", None)
    return last if isinstance(last, KeyboardInterrupt) else None
