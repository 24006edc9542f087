"""Node's event loop, in Python: the one place that decides when callbacks run.

Every knoxpy object belongs to the loop of the thread that created it. I/O runs
on background worker threads, or, for small requests, on the owning thread
itself while it waits with nothing to deliver: it sends each and awaits all
their answers with one ``poll()``, as Node's one thread does (``Loop._poll``).
What the I/O learns (a response, a chunk, an error) is *posted* to the owning
loop as a callback, and callbacks run only when the owning thread runs its
loop: in ``knoxpy.run()``, in an object's ``.wait()``, or, for the main thread,
when the script ends (an ``atexit`` hook drains the loop, as Node does before
its process exits). Inside a running asyncio loop, posting goes through
``call_soon_threadsafe`` instead.

That one rule gives the guarantees of CONTRACT §2:

1. no callback runs before the call that caused it returns: callbacks are only
   ever posted, never called inline;
2. a listener attached right after a call returns misses nothing: nothing is
   delivered until the caller yields to the loop;
3. callbacks run one at a time on one thread: only the owning thread runs them;
4. I/O is concurrent: workers run while user code runs, and small requests the
   owning thread took are handed to workers when it stops waiting;
5. a script does not exit with work pending: the exit hook drains the loop;
6. an ``'error'`` nobody listens for raises out of ``run()``/``.wait()`` (pyee
   raises it from ``emit``), or is printed at exit with exit status 1.

``ref()``/``unref()`` count operations that will post again (a request in
flight, a body flowing); the loop is idle when that count is zero and its
queue is empty. See docs/execution-model.md for the picture of the threads.
"""
from __future__ import annotations

import atexit
import collections
import heapq
import itertools
import logging
import os
import select
import socket
import sys
import threading
import time
import traceback
import types
import weakref
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Protocol, Tuple

from . import _cancel

if TYPE_CHECKING:
    import asyncio

__all__ = ["Claim", "Loop", "call_later", "get_loop", "run", "spawn", "spawn_claim"]

log = logging.getLogger("knoxpy")

Callback = Callable[..., Any]
# fn, args, the loop that may steal it, when it was queued
Task = Tuple[Callback, Tuple[Any, ...], Optional["Loop"], float]
# Seconds the main thread sleeps at most before looking again: a SIGINT the kernel gives
# another thread wakes no lock the main thread waits on, and Python runs its handler
# (raising KeyboardInterrupt) only in the main thread, once it wakes. (A poll for stolen
# answers is not cut short: those are small requests, over within their read timeout.)
MAIN_WAKE = 0.25
# 'progress' of a body sent or received is posted at most this often (and at its end): each
# post from a worker wakes the loop's thread, ~50-70 us of GIL-held time on this VM (a futex
# wake), a fifth of a 512 MiB HTTPS download's Python time with a post per MiB, and 2,048
# posts for a 512 MiB putFile (one per 256 KiB frame).
PROGRESS_INTERVAL = 0.02
_POLL = getattr(select, "poll", None)  # missing (Windows): a worker reads a stolen task's answer


class Settling(Protocol):
    """What ``Loop.run`` may run until: an operation (knoxpy._emitter), done once settled."""

    _done: bool


def _drive(gen: types.GeneratorType, item: Any = None) -> None:  # type: ignore[type-arg]
    """Run a task's generator to its end on this (worker) thread.

    A task yields where it would wait: an exchange whose answer is next (here its
    ``finish()`` simply blocks) or a number of seconds to sleep before going on.
    """
    while True:
        if isinstance(item, (int, float)):
            time.sleep(item)
        item = next(gen, None)  # a task never yields None: its end (no StopIteration made)
        if item is None:
            return


class Loop:
    """The callback queue of one thread, run by that thread only."""

    def __init__(self) -> None:
        self._queue: Deque[Tuple[Callback, Tuple[Any, ...]]] = collections.deque()
        self._lock = threading.Lock()  # held directly where nobody waits: no Python frames
        self._cond = threading.Condition(self._lock)
        # Operations that will post again (see ref()): counted by the owning thread without
        # the lock in _own_refs, by other threads under the lock in _refs; either may go
        # below zero (a ref taken here, dropped by a worker), the sum is what is pending.
        self._refs = 0
        self._own_refs = 0
        self._sleeping = False  # the owning thread waits on _cond for something to run
        self._polling = False  # the owning thread waits in poll() for answers or a post
        # Stolen tasks waiting for their answer on this thread, by socket: fd -> (exchange,
        # the task's generator). Only the owning thread touches it.
        self._waits: Dict[int, Tuple[Any, Any]] = {}
        self._poller: Any = None
        self._wake: Optional[Tuple[socket.socket, socket.socket]] = None
        self.thread = threading.current_thread()
        self._ident = threading.get_ident()
        self._main = self.thread is threading.main_thread()
        # A loop of a knoxpy-io worker (a Session's) runs all of its own I/O, streams too:
        # its thread has nothing else to do while it waits, and if it handed that I/O to
        # another worker, a pool full of waiting drivers would wait for ever. So does any
        # loop made once no thread can be started (_Pool._refused).
        self.runs_own_io = getattr(_worker, "active", False) or _POOL._refused
        self._own_tasks: List[Task] = []  # spawned by a worker loop, for its thread only

    steals = True  # may run small requests' I/O itself while it waits (not under asyncio)

    # -- posting, from any thread -------------------------------------------------
    def call_soon(self, fn: Callback, *args: Any) -> None:
        """Run ``fn(*args)`` on this loop's thread, after everything already queued."""
        if threading.get_ident() == self._ident and not (self._sleeping or self._polling):
            # Its own thread, running (a callback, a stolen task): nobody to wake, and an
            # append needs no lock (the lock guards the flags; only this thread pops).
            # A signal handler that posts while this thread sleeps or polls wakes it below.
            self._queue.append((fn, args))
            return
        with self._lock:
            self._queue.append((fn, args))
            if self._sleeping:  # only a sleeping loop needs waking (notify is not free)
                self._cond.notify()
            elif self._polling:
                self._wake_up()

    def ref(self) -> None:
        """Count one more operation that will post to this loop (keeps ``run()`` going)."""
        if threading.get_ident() == self._ident:  # only this thread writes _own_refs
            self._own_refs += 1
            return
        with self._lock:
            self._refs += 1

    def unref(self) -> None:
        if threading.get_ident() == self._ident:  # running, so not asleep: nobody to wake
            self._own_refs -= 1
            return
        with self._lock:
            self._refs -= 1
            # _own_refs is still while the owning thread sleeps (which is when it matters)
            if self._refs + self._own_refs <= 0 and self._sleeping:
                self._cond.notify()

    @property
    def pending(self) -> bool:
        return bool(self._queue) or self._refs + self._own_refs > 0

    # -- running, on the owning thread -------------------------------------------
    def run(self, timeout: Optional[float] = None, until: Optional[Settling] = None) -> bool:
        """Run callbacks until the operation ``until`` is done or nothing is pending.

        Returns whether ``until`` was done (True when no ``until`` was given and
        the loop went idle). Raises ``TimeoutError`` after ``timeout`` seconds, and
        whatever a callback raises (an unhandled ``'error'`` among them).
        """
        if threading.get_ident() != self._ident:  # a live thread's ident is its own
            raise RuntimeError(
                "a knoxpy loop runs only on the thread that created its objects; "
                "call .wait()/knoxpy.run() from that thread"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        queue, cond, lock = self._queue, self._cond, self._lock
        try:
            while True:
                if until is not None and until._done:  # read, not called: no frame per turn
                    return True
                if not queue:
                    # Its own small requests first: stealing takes no lock of this loop's
                    # (only this thread runs them), and their answers may fill the queue.
                    if self._refs + self._own_refs > 0 and _POOL.steal_for(self):
                        continue
                    with lock:  # the lock only to wait: posting threads only append
                        if not queue:
                            if self._refs + self._own_refs <= 0:
                                return until is None
                            remaining = (None if deadline is None
                                         else deadline - time.monotonic())
                            if remaining is not None and remaining <= 0:
                                raise TimeoutError(
                                    "knoxpy: operations still pending after timeout")
                            if self._waits:
                                self._poll(remaining)
                                continue  # look again: for a post, an answer, a task
                            if self._main and (remaining is None or remaining > MAIN_WAKE):
                                remaining = MAIN_WAKE  # a Ctrl-C is seen within MAIN_WAKE
                            self._sleeping = True
                            try:
                                cond.wait(remaining)
                            finally:
                                self._sleeping = False
                    continue  # woken: done, a post, a task to steal, or nothing pending
                fn, args = queue.popleft()  # outside the lock: only this thread pops
                fn(*args)
                if deadline is not None and time.monotonic() > deadline:
                    if until is not None and until._done:
                        return True
                    raise TimeoutError("knoxpy: operations still pending after timeout")
        finally:
            if self._waits:  # nobody will poll for them now: workers finish them
                self._hand_off()

    # -- stolen tasks, on the owning thread -----------------------------------------
    def _advance(self, gen: Any) -> None:
        """Run a stolen task on until it waits: for an answer (kept, to poll for) or for
        anything else (handed to a worker)."""
        while True:
            try:
                item = next(gen, None)  # None: its end (a task never yields None)
            except Exception:  # a task must report its own errors; a bug (Ctrl-C passes)
                log.exception("knoxpy: uncaught error in an I/O task")
                return
            if item is None:
                return
            if not isinstance(item, (int, float)):  # an exchange, its answer next
                if _POLL is not None and self._refs + self._own_refs == 1 and not self._waits:
                    # The one operation pending on this loop: nothing else can come (no
                    # other answer, nothing a worker posts), so its read waits here,
                    # bounded by its read timeout, without a poll() first (nor its socket
                    # asked for).
                    continue
                fd = item.fileno()
                if fd is None:  # its answer came with it (through urllib3's urlopen)
                    continue
                if _POLL is not None:
                    break
            # A sleep (before a retry, a connect), or an answer to read without poll()
            if self.runs_own_io:  # this thread would only wait
                _drive(gen, item)
            else:
                _POOL.spawn(_drive, (gen, item), None)
            return
        if self._poller is None:
            self._poller = _POLL()
        self._poller.register(fd, select.POLLIN)
        self._waits[fd] = (item, gen)

    def _poll(self, remaining: Optional[float]) -> None:
        """Wait (lock held on entry and exit) for answers, a post, or a deadline."""
        if self._wake is None:
            self._wake = socket.socketpair()
            for end in self._wake:
                end.setblocking(False)
            self._poller.register(self._wake[0].fileno(), select.POLLIN)
            weakref.finalize(self, _close_all, self._wake)
        now = time.monotonic()
        timeout = remaining
        for exchange, _ in self._waits.values():
            if exchange.deadline is not None:
                left = exchange.deadline - now
                timeout = left if timeout is None else min(timeout, left)
        self._polling = True
        self._lock.release()
        try:
            events = self._poller.poll(None if timeout is None else max(0.0, timeout) * 1000)
        finally:
            self._lock.acquire()
            self._polling = False  # what this thread posts from here on needs no wake-up
        self._lock.release()
        try:
            wake_fd = self._wake[0].fileno()
            ready = {fd for fd, _ in events if fd != wake_fd}
            if len(ready) < len(events):
                _drain(self._wake[0])
            now = time.monotonic()
            for fd, (exchange, _) in self._waits.items():
                if exchange.deadline is not None and exchange.deadline <= now and fd not in ready:
                    exchange.expire()  # finish() raises the timeout
                    ready.add(fd)
            for fd in ready:
                _, gen = self._waits.pop(fd)
                self._poller.unregister(fd)
                self._advance(gen)
        finally:
            self._lock.acquire()

    def _wake_up(self) -> None:
        try:
            self._wake[1].send(b"\0")  # type: ignore[index]
        except (BlockingIOError, OSError):  # full means a wake-up is already on its way
            pass

    def _hand_off(self) -> None:
        waits, self._waits = self._waits, {}
        for fd, (_, gen) in waits.items():
            self._poller.unregister(fd)
            _POOL.spawn(_drive, (gen,), None)


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except (BlockingIOError, OSError):
        pass


def _close_all(socks: Tuple[socket.socket, ...]) -> None:
    for sock in socks:
        sock.close()


class AsyncioLoop(Loop):
    """A loop that delivers on a running asyncio event loop (CONTRACT §2, asyncio)."""

    steals = False  # asyncio runs the callbacks; nobody here waits to steal

    def __init__(self, aio: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.aio = aio

    def call_soon(self, fn: Callback, *args: Any) -> None:
        try:
            self.aio.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the asyncio loop is closed: nobody is left to deliver to
            log.debug("knoxpy: event dropped, asyncio loop closed")

    def run(self, timeout: Optional[float] = None, until: Optional[Settling] = None) -> bool:
        raise RuntimeError(
            "this object delivers its events on a running asyncio loop: "
            "`await` it instead of calling .wait()/knoxpy.run()"
        )


_local = threading.local()
_worker = threading.local()  # .active on knoxpy-io worker threads
_aio_loops: dict[int, AsyncioLoop] = {}
_main_loop: Optional[Loop] = None


def get_loop() -> Loop:
    """The loop that owns objects created now, on this thread."""
    # A running asyncio loop needs asyncio imported: knoxpy does not import it itself
    # (it costs more than the rest of knoxpy's imports), and asks without raising.
    aio_module = sys.modules.get("asyncio")
    aio = aio_module._get_running_loop() if aio_module is not None else None
    if aio is not None:
        found = _aio_loops.get(id(aio))
        if found is None or found.aio is not aio:
            found = _aio_loops[id(aio)] = AsyncioLoop(aio)
        return found
    loop: Optional[Loop] = getattr(_local, "loop", None)
    if loop is None:
        loop = _local.loop = Loop()
        if threading.current_thread() is threading.main_thread():
            global _main_loop
            _main_loop = loop
    return loop


def run(timeout: Optional[float] = None) -> None:
    """Run this thread's loop until nothing is pending (``knoxpy.run()``).

    >>> import knoxpy
    >>> knoxpy.run()  # nothing pending: returns at once
    """
    get_loop().run(timeout)


def _drain_at_exit() -> None:
    """Node does not exit while work is pending: neither does a knoxpy script. One that
    ends on a KeyboardInterrupt cancels its work first: the drain then waits only for
    the cleanup (aborts, partial files removed), never completes what Ctrl-C stopped."""
    interrupt = _cancel.ended_by_interrupt()
    if interrupt is not None:
        _cancel.interrupted(interrupt)
    loop = _main_loop
    if loop is None or not loop.pending:
        return
    if not _POOL.can_start_threads():
        loop.runs_own_io = True  # Python 3.12.0-3.12.1: this thread does all the I/O left
    try:
        loop.run()
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # like Node on an uncaught exception; atexit cannot set the status


atexit.register(_drain_at_exit)


# -- the worker pool: where blocking I/O runs --------------------------------------
class _Pool:
    """Daemon threads that run blocking I/O; grows on demand, shrinks when idle.

    A task spawned *stealable* by a loop (a small request, not a stream) wakes no
    worker: the loop thread that created it usually waits a moment later, and then
    takes every such task of its own and runs them itself (``Loop.run``): each up to
    the point where it waits for its answer, then all their answers at once with
    ``poll()``, as Node's one thread does. Waking a worker would cost two thread
    switches per request, more than the request's own work. A stealable task that no
    loop has taken after ``KICK_SECONDS`` (its caller is busy computing) is handed to
    a worker by the kicker thread, so its I/O still runs in the background.
    """

    IDLE_SECONDS = 30.0
    MAX_THREADS = 512
    KICK_SECONDS = 0.002  # how long a stealable task waits for its loop; the kicker's tick
    KICK_MAX_SECONDS = 0.064  # its slowest tick, reached by doubling while nothing waits
    KICKER_PARK_SECONDS = 2.0  # it sleeps for good after this long with no stealable task

    def __init__(self) -> None:
        self._tasks: Deque[Task] = collections.deque()  # for workers (each has one woken)
        self._stealable_tasks: Deque[Task] = collections.deque()  # for their loops, first
        lock = threading.Lock()
        self._lock = lock
        self._cond = threading.Condition(lock)  # workers wait here
        self._kicker_cond = threading.Condition(lock)  # the kicker parks here
        self._idle = 0
        self._threads = 0
        self._stealable = 0  # stealable tasks spawned so far (the kicker watches it)
        self._kicker: Optional[threading.Thread] = None
        self._kicker_parked = False
        # Python 3.12.0 and 3.12.1 refuse new threads once the interpreter exits, atexit
        # hooks included (gh-113964, mended in 3.12.2): then every task goes to the main
        # loop, which the exit drain has run all of its I/O itself.
        self._refused = False

    def spawn(self, fn: Callback, args: Tuple[Any, ...], stealer: Optional[Loop]) -> None:
        with self._lock:
            if stealer is None and self._refused and _main_loop is not None:
                stealer = _main_loop
            if stealer is not None and stealer.runs_own_io:  # never kicked to another worker
                stealer._own_tasks.append((fn, args, stealer, 0.0))
                return
            if stealer is not None:
                self._stealable_tasks.append((fn, args, stealer, time.monotonic()))
                self._stealable += 1
                if self._kicker is None:
                    self._kicker = threading.Thread(target=self._kick, name="knoxpy-kicker",
                                                    daemon=True)
                    self._kicker.start()
                elif self._kicker_parked:
                    self._kicker_cond.notify()
                return
            self._tasks.append((fn, args, None, 0.0))
            new = self._wake_locked(1)
        self._start_threads(new)

    def _wake_locked(self, needed: int) -> int:
        """Wake idle workers for ``needed`` more queued tasks; return how many to start."""
        # idle workers that no queued task (other than the ``needed`` new ones) claims
        free = self._idle - (len(self._tasks) - needed)
        woken = max(0, min(needed, free))
        if woken:
            self._cond.notify(woken)
        new = min(needed - woken, self.MAX_THREADS - self._threads)
        self._threads += new
        return new

    def _start_threads(self, n: int) -> None:
        for started in range(n):
            try:
                threading.Thread(target=self._work, name="knoxpy-io", daemon=True).start()
            except RuntimeError:  # at exit on 3.12.0-3.12.1: see _refused
                self._refuse_threads(n - started)
                return

    def can_start_threads(self) -> bool:
        """Whether this interpreter still starts threads (False at exit on 3.12.0-3.12.1)."""
        if not self._refused:
            try:
                threading.Thread(target=lambda: None, name="knoxpy-probe", daemon=True).start()
            except RuntimeError:
                self._refuse_threads(0)
        return not self._refused

    def _refuse_threads(self, unstarted: int) -> None:
        """No thread can be started from now on: the queued tasks no idle worker will take
        go to the main loop (whose exit drain runs its own I/O)."""
        with self._lock:
            self._threads -= unstarted
            self._refused = True
            stranded = len(self._tasks) - self._idle
            if _main_loop is not None and stranded > 0:  # the newest, in their order, first
                moved = [self._tasks.pop() for _ in range(stranded)][::-1]
                _main_loop._own_tasks[:0] = [(fn, args, _main_loop, 0.0)
                                             for fn, args, _, _ in moved]

    def _kick(self) -> None:
        """Hand stealable tasks that no loop came to take to workers.

        The tick is short (2 ms) while tasks keep going untaken (a caller computing
        between requests) and doubles up to 64 ms while every task is taken (a caller
        that waits right away): a thread that wakes on every request would cost more
        CPU than the requests themselves. After two seconds without a stealable task
        the kicker parks until the next one.
        """
        tick = self.KICK_SECONDS
        seen, quiet_since = -1, time.monotonic()
        while True:
            time.sleep(tick)
            new = 0
            with self._cond:
                now = time.monotonic()
                waiting = self._stealable_tasks
                overdue = 0
                while waiting and now - waiting[0][3] >= self.KICK_SECONDS:  # oldest first
                    self._tasks.append(waiting.popleft())
                    overdue += 1
                if overdue:
                    new = self._wake_locked(overdue)
                    tick = self.KICK_SECONDS
                else:
                    tick = min(tick * 2, self.KICK_MAX_SECONDS)
                if self._stealable != seen:
                    seen, quiet_since = self._stealable, now
                elif now - quiet_since >= self.KICKER_PARK_SECONDS and not waiting:
                    self._kicker_parked = True
                    while not waiting:
                        self._kicker_cond.wait()
                    self._kicker_parked = False
                    tick, quiet_since = self.KICK_SECONDS, time.monotonic()
            self._start_threads(new)

    def steal_for(self, loop: Loop) -> bool:
        """Start every stealable task of ``loop``'s on its thread (which calls this)."""
        with self._lock:
            if loop._own_tasks:
                mine, loop._own_tasks = loop._own_tasks, []
            else:
                tasks = self._stealable_tasks
                if len(tasks) == 1 and tasks[0][2] is loop:  # the usual: one small request
                    mine = [tasks.pop()]
                else:
                    mine = [task for task in tasks if task[2] is loop]
                    if not mine:
                        return False
                    if len(mine) < len(tasks):
                        rest = [task for task in tasks if task[2] is not loop]
                        tasks.clear()
                        tasks.extend(rest)
                    else:
                        tasks.clear()
        for i, task in enumerate(mine):
            try:
                result = task[0](*task[1])
                if isinstance(result, types.GeneratorType):
                    loop._advance(result)
            except Exception:  # a task must report its own errors; this is a bug
                log.exception("knoxpy: uncaught error in an I/O task")
            except BaseException:  # Ctrl-C: the tasks not started yet go to workers
                for later in mine[i + 1:]:
                    self.spawn(later[0], later[1], None)
                raise
        return True

    def _work(self) -> None:
        _worker.active = True
        cond, tasks = self._cond, self._tasks
        while True:
            with cond:
                idle_until = time.monotonic() + self.IDLE_SECONDS
                while not tasks:
                    remaining = idle_until - time.monotonic()
                    if remaining <= 0:
                        self._threads -= 1
                        return
                    self._idle += 1
                    cond.wait(remaining)
                    self._idle -= 1
                task = tasks.popleft()
            fn, args, result = task[0], task[1], None
            try:
                result = fn(*args)
                if isinstance(result, types.GeneratorType):
                    _drive(result)
            except BaseException:  # a task must report its own errors; this is a bug
                log.exception("knoxpy: uncaught error in an I/O task")
            # An idle worker must not keep its last task alive: through it, a request,
            # its response and the response's socket (found by the soak test).
            del task, fn, args, result

    @property
    def threads(self) -> int:
        return self._threads


_POOL = _Pool()


SpawnHook = Callable[[Callback, Tuple[Any, ...]], Tuple[Callback, Tuple[Any, ...]]]
_spawn_hook: Optional[SpawnHook] = None  # knoxpy.trace's, once a trace records


def set_spawn_hook(hook: Optional[SpawnHook]) -> None:
    """Let ``hook(fn, args)`` rewrap every task spawned (knoxpy.trace carries the knoxpy
    call that spawned work to the worker that runs it)."""
    global _spawn_hook
    _spawn_hook = hook


def threads_refused() -> bool:
    """Whether the interpreter refused a new thread (at exit on Python 3.12.0-3.12.1)."""
    return _POOL._refused


def spawn(fn: Callback, *args: Any, stealable_by: Optional[Loop] = None) -> None:
    """Run ``fn(*args)`` on a worker thread (or by ``stealable_by``'s thread while it waits).

    ``fn`` may return a generator that yields where it would wait (see ``_drive``); a
    loop thread that steals it waits for several such tasks at once.
    """
    if _spawn_hook is not None:
        fn, args = _spawn_hook(fn, args)
    _POOL.spawn(fn, args, stealable_by)


class Claim:
    """A task that a worker runs, or the thread that would wait for it, whichever comes first.

    A thread that waits for a task it spawned would wait for ever when every worker is
    itself waiting (a pool of 512 busy drivers); with a claim it runs the task itself.

    >>> ran = []
    >>> claim = Claim(ran.append, ("here",))
    >>> claim.run_here(), claim.run_here(), ran
    (True, False, ['here'])
    """

    __slots__ = ("_fn", "_args", "_lock", "_taken")

    def __init__(self, fn: Callback, args: Tuple[Any, ...]) -> None:
        self._fn, self._args = fn, args
        self._lock = threading.Lock()
        self._taken = False

    def run_here(self) -> bool:
        """Run the task on this thread unless a worker has started it; say whether it ran."""
        with self._lock:
            taken, self._taken = self._taken, True
        if taken:
            return False
        self._fn(*self._args)
        return True

    def __call__(self) -> None:  # as a worker's task
        self.run_here()


def spawn_claim(fn: Callback, *args: Any) -> Claim:
    """``spawn(fn, *args)``, with a :class:`Claim` the waiting thread may run it by."""
    if _spawn_hook is not None:  # wrapped first: the claim runs in the spawner's context
        fn, args = _spawn_hook(fn, args)  # wherever it runs (knoxpy.trace's call)
    claim = Claim(fn, args)
    _POOL.spawn(claim, (), None)
    return claim


# -- timers that run in the background (not on a loop) ------------------------------
class _Timers:
    """One background thread for every timer; cheap to add and cancel on a hot path.

    Adding wakes the thread only when the new timer is the earliest; cancelled
    timers are dropped lazily, and swept out when they are most of the heap.
    """

    def __init__(self) -> None:
        self._heap: List[List[Any]] = []
        self._cond = threading.Condition(threading.Lock())
        self._seq = itertools.count()
        self._cancelled = 0
        self._thread: Optional[threading.Thread] = None

    def call_later(self, delay: float, fn: Callback) -> Callable[[], None]:
        entry: List[Any] = [time.monotonic() + delay, next(self._seq), fn]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="knoxpy-timers", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()

        def cancel() -> None:
            with self._cond:
                if entry[2] is None:
                    return
                entry[2] = None
                self._cancelled += 1
                if self._cancelled > 1024 and self._cancelled * 2 > len(self._heap):
                    self._heap[:] = [e for e in self._heap if e[2] is not None]
                    heapq.heapify(self._heap)
                    self._cancelled = 0

        return cancel

    def _run(self) -> None:
        heap, cond = self._heap, self._cond
        while True:
            with cond:
                while not heap or heap[0][0] > time.monotonic():
                    cond.wait(None if not heap else heap[0][0] - time.monotonic())
                entry = heapq.heappop(heap)
                fn = entry[2]
                if fn is None:
                    self._cancelled = max(0, self._cancelled - 1)
                    continue
                entry[2] = None
            try:
                fn()
            except Exception:
                log.exception("knoxpy: uncaught error in a timer")
            del entry, fn  # nor the timer thread its last timer's object, while it sleeps


_TIMERS = _Timers()


def call_later(delay: float, fn: Callback) -> Callable[[], None]:
    """Run ``fn()`` in the background after ``delay`` seconds; returns a cancel function."""
    return _TIMERS.call_later(delay, fn)


def _start_afresh_after_fork() -> None:
    """A forked child has none of its parent's threads (workers, kicker, timers), and their
    locks may have been held at the fork: it gets fresh ones, and loops of its own."""
    global _POOL, _TIMERS, _local, _main_loop
    _POOL, _TIMERS = _Pool(), _Timers()
    _local = threading.local()
    _aio_loops.clear()
    _main_loop = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_start_afresh_after_fork)
