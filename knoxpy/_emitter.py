"""The emitter every knoxpy object is: pyee's, with Node's chaining, owned by a loop.

An :class:`Operation` is an emitter that ends in one result or one error. It can
be waited on (``.wait()`` runs the owning loop until it settles) and awaited
(inside asyncio). Settling always happens on the owning loop's thread.
"""
from __future__ import annotations

import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generator,
    Generic,
    Optional,
    Sequence,
    TypeVar,
    overload,
)

from pyee import EventEmitter

from . import _cancel
from ._js import fit
from ._loop import AsyncioLoop, Loop, get_loop
from .errors import Cancelled

if TYPE_CHECKING:
    import asyncio

__all__ = ["Emitter", "OnFirstUse", "Operation"]

T = TypeVar("T")
Handler = Callable[..., Any]


class OnFirstUse(Generic[T]):
    """An attribute made by ``make(obj)`` when it is first read, a plain one from then on
    (a non-data descriptor: the object's own value, once set, is found first). For what
    most requests and responses never use, made per object at a cost all the same.

    >>> class Box:
    ...     size = OnFirstUse(lambda box: print("made") or 3)
    >>> box = Box()
    >>> box.size
    made
    3
    >>> box.size
    3
    """

    def __init__(self, make: Callable[[Any], T]) -> None:
        self._make = make
        self._name = ""

    def __set_name__(self, owner: Any, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: Any = None) -> OnFirstUse[T]: ...
    @overload
    def __get__(self, obj: object, owner: Any = None) -> T: ...

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        # setdefault is atomic: two threads that come first at once get the same value
        return obj.__dict__.setdefault(self._name, self._make(obj))


class Emitter(EventEmitter):
    """A pyee ``EventEmitter`` whose ``on``/``once`` return the emitter, as Node's do.

    ``on(event)`` without a function stays pyee's decorator. A listener is called with as
    many of the event's arguments as it accepts, as in JS (``on('end', lambda: ...)``).
    """

    # pyee's lock, taken only to add or remove a listener: most objects never do
    _lock = OnFirstUse(lambda _: threading.Lock())

    def __init__(self, loop: Optional[Loop] = None) -> None:
        # pyee's __init__ is its listeners' dict and its lock, which comes on first use
        self._events = {}
        self._loop = loop if loop is not None else get_loop()

    def _add_event_handler(self, event: str, k: Handler, v: Handler) -> None:
        super()._add_event_handler(event, k, v)
        if event == "data":
            self._data_listener_added()

    def _data_listener_added(self) -> None:
        """A ``'data'`` listener came (``on`` or ``once``): a readable starts flowing, as
        Node's does. (A hook, not a ``'new_listener'`` listener: one less per object.)"""

    @overload  # type: ignore[override]
    def on(self, event: str) -> Callable[[Handler], Handler]: ...
    @overload
    def on(self, event: str, f: Handler) -> Any: ...

    def on(self, event: str, f: Optional[Handler] = None) -> Any:
        if f is None:
            return super().on(event)
        self._add_event_handler(event, f, fit(f))
        return self

    addListener = on

    def once(self, event: str, f: Optional[Handler] = None) -> Any:
        if f is None:
            return super().once(event)
        fitted = fit(f)

        def once(*args: Any, **kwargs: Any) -> Any:
            handlers = self._events.get(event)
            if not handlers or f not in handlers:  # removed since emit() copied the list
                return None
            self._remove_listener(event, f)  # by its key, the caller's own function
            return fitted(*args, **kwargs)

        self._add_event_handler(event, f, once)
        return self

    def removeListener(self, event: str, f: Handler) -> Any:
        self.remove_listener(event, f)
        return self

    off = removeListener

    def removeAllListeners(self, event: Optional[str] = None) -> Any:
        self.remove_all_listeners(event)
        return self

    def listenerCount(self, event: str) -> int:
        return len(self.listeners(event))

    def emit(self, event: str, *args: Any, **kwargs: Any) -> bool:
        """pyee's ``emit``, lighter: only the owning loop's thread emits, so the listeners
        are called from a copy of their list without pyee's lock; an event nobody listens
        for costs one lookup, and an ``'error'`` nobody listens for raises (pyee's rule)."""
        handlers = self._events.get(event)
        if not handlers:
            if event == "error":
                return super().emit(event, *args, **kwargs)
            return False
        for f in list(handlers.values()):
            f(*args, **kwargs)
        return True

    def _post(self, event: str, *args: Any) -> None:
        """Emit ``event`` later, on the owning loop (never inline: CONTRACT §2.1). A dict
        payload (``'retry'``, ``'part'``...) is made a :class:`~knoxpy._js.Record` where it
        is built, so that ``info.delay`` reads as in JS."""
        self._loop.call_soon(self.emit, event, *args)


class Operation(Emitter):
    """An emitter that settles once, with a result or an error.

    ``wait()`` runs the loop until then; ``await op`` works inside asyncio.
    """

    _done = False
    _result: Any = None
    _error: Optional[BaseException] = None
    _waiters = 0
    _futures: Sequence[asyncio.Future[Any]] = ()  # those that await it (a list once one does)

    @property
    def done(self) -> bool:
        return self._done

    def _resolve(self, result: Any) -> None:
        """Settle with ``result``; call on the owning loop's thread."""
        if self._done:
            return
        self._done, self._result = True, result
        for fut in self._futures:
            if not fut.done():
                fut.set_result(result)

    def _reject(self, error: BaseException, emit: bool = True) -> None:
        """Settle with ``error`` and emit it as ``'error'``; call on the owning loop.

        With no ``'error'`` listener the error is raised (CONTRACT §2.6), unless a
        ``wait()`` or ``await`` is there to raise it instead, or it is :class:`Cancelled`:
        whoever pressed Ctrl-C had the KeyboardInterrupt already.
        """
        if self._done:
            return
        self._done, self._error = True, error
        for fut in self._futures:
            if not fut.done():
                fut.set_exception(error)
        unseen = not (self._waiters or self._futures or isinstance(error, Cancelled))
        if emit and (self.listeners("error") or unseen):
            self.emit("error", error)

    def _fail_later(self, error: BaseException) -> None:
        """Reject on the loop's next turn, from any thread."""
        self._loop.call_soon(self._reject, error)

    def wait(self, timeout: Optional[float] = None) -> Any:
        """Run the loop until this operation settles; return its result or raise its error.

        A KeyboardInterrupt (Ctrl-C) here cancels every running operation
        (knoxpy._cancel: uploads aborted, partial files removed) and is raised on.

        >>> import knoxpy
        >>> client = knoxpy.createClient(key='k', secret='s', bucket='demo')  # doctest: +SKIP
        >>> res = client.get('/hello.txt').end().wait()                      # doctest: +SKIP
        """
        if not self._done:
            self._waiters += 1
            try:
                if not self._loop.run(timeout, until=self):
                    raise RuntimeError(
                        f"{self!r} can never complete: nothing is pending "
                        "(was end() called?)"
                    )
            except KeyboardInterrupt as exc:
                _cancel.interrupted(exc)
                raise
            finally:
                self._waiters -= 1
        if self._error is not None:
            raise self._error
        return self._result

    def __await__(self) -> Generator[Any, None, Any]:
        if not isinstance(self._loop, AsyncioLoop):
            raise RuntimeError(
                "this object was created outside a running asyncio loop; "
                "use .wait(), or create it inside the coroutine that awaits it"
            )
        if not self._done:
            fut: asyncio.Future[Any] = self._loop.aio.create_future()
            self._futures = [*self._futures, fut]
            return (yield from fut.__await__())
        if self._error is not None:
            raise self._error
        return self._result
