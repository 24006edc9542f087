"""The JavaScript leniencies that a literal port of knox code relies on, in one place.

Pure helpers, no I/O:

- :func:`fit`: JS ignores extra arguments, so ``deleteMultiple(keys, function (err) {...})``
  works in Node. A user's callback or listener is called with as many leading arguments as
  it accepts; a ``*args`` callable gets them all.
- :func:`defined`: ``undefined`` means "not given". Its port is ``None``, so an option,
  query parameter or header whose value is ``None`` is dropped, never sent as ``"None"``.
- :class:`Record`: knox code reads ``p.written``, ``data.Contents``, ``file.Key``. The plain
  objects knoxpy hands out are dicts that read both ways.

docs/porting.md has the table of every leniency and its rule.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Mapping, Optional, TypeVar

__all__ = ["Record", "accepted", "defined", "fit", "records"]

F = TypeVar("F", bound=Callable[..., Any])
_VARARGS = inspect.CO_VARARGS

# Decided once per code object: a lambda made in a loop shares its code with its siblings.
_positional: Dict[Any, Optional[int]] = {}


def accepted(fn: Callable[..., Any]) -> Optional[int]:
    """How many positional arguments ``fn`` takes, or ``None`` if it takes any number.

    >>> accepted(lambda err: None), accepted(lambda *a: None), accepted(print)
    (1, None, None)
    """
    func = getattr(fn, "__func__", fn)  # a bound method: its function, less ``self``
    code = getattr(func, "__code__", None)
    if code is None:
        return _from_signature(fn)
    try:
        n = _positional[code]
    except KeyError:
        n = None if code.co_flags & _VARARGS else code.co_argcount
        _positional[code] = n
    if n is not None and func is not fn:
        n -= 1
    return n


def _from_signature(fn: Callable[..., Any]) -> Optional[int]:
    """Builtins, partials and callable objects: rarer, so asked of ``inspect`` each time."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None  # a builtin that does not say: give it everything, as before
    n = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def fit(fn: F) -> F:
    """``fn``, or a wrapper that passes it only the leading arguments it accepts.

    >>> done = fit(lambda err: print('done', err))
    >>> done(None, {'statusCode': 200})
    done None
    """
    n = accepted(fn)
    if n is None:
        return fn

    def fitted(*args: Any, **kwargs: Any) -> Any:
        return fn(*args[:n], **kwargs)

    fitted.__wrapped__ = fn  # type: ignore[attr-defined]
    return fitted  # type: ignore[return-value]


def defined(mapping: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """A copy of ``mapping`` without the entries whose value is ``None`` (JS ``undefined``).

    >>> defined({'prefix': None, 'max-keys': 2})
    {'max-keys': 2}
    """
    if not mapping:
        return {}
    return {k: v for k, v in mapping.items() if v is not None}


class Record(dict):  # type: ignore[type-arg]
    """A ``dict`` that also reads like a JS object: ``p.written`` is ``p['written']``.

    Still a plain dict to everything else: equal to dicts, JSON-serialisable, picklable.
    A missing name raises ``AttributeError`` (and ``p['missing']`` ``KeyError``).

    >>> p = Record(written=5, total=10)
    >>> p.written, p['total'], p == {'written': 5, 'total': 10}
    (5, 10, True)
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | {k for k in self if isinstance(k, str)})


def records(value: Any) -> Any:
    """``value`` with every plain dict in it (through lists) made a :class:`Record`."""
    if type(value) is dict:
        return Record({k: records(v) for k, v in value.items()})
    if isinstance(value, Record):
        for k, v in value.items():
            if type(v) in (dict, list):
                value[k] = records(v)
        return value
    if type(value) is list:
        return [records(v) for v in value]
    return value
