"""knoxpy._loop and knoxpy._emitter without sockets: the rules of CONTRACT §2 in miniature."""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, List

import pytest

from knoxpy._emitter import Emitter, Operation
from knoxpy._loop import Loop, call_later, get_loop, spawn


def test_callbacks_run_in_post_order_only_when_the_loop_runs() -> None:
    loop = Loop()
    seen: List[int] = []
    for i in range(5):
        loop.call_soon(seen.append, i)
    assert seen == []
    assert loop.run(timeout=1) is True
    assert seen == [0, 1, 2, 3, 4]


def test_run_waits_for_referenced_work_from_other_threads() -> None:
    loop = Loop()
    seen: List[str] = []
    loop.ref()

    def background() -> None:
        time.sleep(0.2)
        loop.call_soon(seen.append, "from worker")
        loop.unref()

    threading.Thread(target=background).start()
    loop.run(timeout=30)
    assert seen == ["from worker"]


def test_run_times_out_while_work_is_pending() -> None:
    loop = Loop()
    loop.ref()
    with pytest.raises(TimeoutError):
        loop.run(timeout=0.2)
    loop.unref()


def test_a_loop_runs_only_on_its_own_thread() -> None:
    loop = Loop()
    errors: List[BaseException] = []

    def other() -> None:
        try:
            loop.run(timeout=1)
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors and "thread" in str(errors[0])


def test_each_thread_has_its_own_loop() -> None:
    mine = get_loop()
    theirs: List[Loop] = []
    t = threading.Thread(target=lambda: theirs.append(get_loop()))
    t.start()
    t.join()
    assert theirs[0] is not mine and get_loop() is mine


def test_on_and_once_return_the_emitter_and_on_without_fn_is_a_decorator() -> None:
    em = Emitter()
    seen: List[Any] = []
    assert em.on("a", seen.append) is em
    assert em.once("b", seen.append) is em

    @em.on("c")
    def handler(x: Any) -> None:
        seen.append(("c", x))

    em.emit("a", 1)
    em.emit("b", 2)
    em.emit("b", 3)  # once: not delivered again
    em.emit("c", 4)
    assert seen == [1, 2, ("c", 4)]


def test_unhandled_error_raises_from_the_loop() -> None:
    op = Operation()
    op._fail_later(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        op._loop.run(timeout=1)


def test_wait_raises_the_error_once_and_listeners_still_hear_it() -> None:
    op = Operation()
    heard: List[BaseException] = []
    op.on("error", heard.append)
    op._fail_later(KeyError("x"))
    with pytest.raises(KeyError):
        op.wait(1)
    assert len(heard) == 1


def test_wait_returns_the_result() -> None:
    op = Operation()
    op._loop.call_soon(op._resolve, 42)
    assert op.wait(1) == 42
    assert op.wait(1) == 42  # settled: no loop run needed


def test_wait_on_something_that_can_never_finish_says_so() -> None:
    with pytest.raises(RuntimeError, match="never complete"):
        Operation().wait(1)


def test_spawned_work_runs_in_the_background_and_posts_back() -> None:
    loop = get_loop()
    seen: List[Any] = []
    loop.ref()

    def task() -> None:
        seen.append(threading.current_thread().name)
        loop.call_soon(seen.append, "posted")
        loop.unref()

    spawn(task)
    loop.run(timeout=30)
    assert seen[-1] == "posted"


def test_stealable_work_may_run_on_the_waiting_loop_thread() -> None:
    loop = get_loop()
    ran_on: List[int] = []
    for _ in range(20):
        loop.ref()

        def task() -> None:
            ran_on.append(threading.get_ident())
            loop.call_soon(lambda: None)
            loop.unref()

        spawn(task, stealable_by=loop)
        loop.run(timeout=30)
    assert len(ran_on) == 20  # wherever it ran, every task ran exactly once


def test_call_later_runs_in_the_background_and_can_be_cancelled() -> None:
    fired = threading.Event()
    cancelled = threading.Event()
    call_later(0.05, fired.set)
    cancel = call_later(0.05, cancelled.set)
    later = threading.Event()
    call_later(0.06, later.set)
    cancel()
    assert fired.wait(30)
    assert later.wait(30)  # one thread runs the timers in order: the cancelled one was due
    assert not cancelled.is_set()


def test_asyncio_operations_are_awaitable() -> None:
    async def main() -> Any:
        op = Operation()
        op._loop.call_soon(op._resolve, "done")
        return await op

    assert asyncio.run(main()) == "done"


def test_awaiting_an_operation_made_outside_asyncio_is_refused() -> None:
    op = Operation()

    async def main() -> Any:
        return await op

    with pytest.raises(RuntimeError, match="asyncio"):
        asyncio.run(main())


def test_deferred_stealable_work_starts_even_if_the_loop_never_waits() -> None:
    """§2.4: a small request whose caller keeps computing still gets its I/O done."""
    loop = get_loop()
    started = threading.Event()
    loop.ref()

    def task() -> None:
        started.set()
        loop.call_soon(lambda: None)
        loop.unref()

    spawn(task, stealable_by=loop)
    assert started.wait(30), "a deferred task never reached a worker"
    loop.run(timeout=30)


def test_many_deferred_tasks_all_run_concurrently() -> None:
    loop = get_loop()
    barrier = threading.Barrier(6, timeout=30)
    passed: List[int] = []
    all_passed = threading.Event()
    for _ in range(6):
        loop.ref()

        def task() -> None:
            barrier.wait()  # only passes if all six run at once, on workers
            passed.append(1)
            if len(passed) == 6:
                all_passed.set()
            loop.call_soon(lambda: None)
            loop.unref()

        spawn(task, stealable_by=loop)
    # The caller stays busy (nothing steals) until workers have run all six.
    assert all_passed.wait(30), "the deferred tasks did not all run at once on workers"
    loop.run(timeout=30)
