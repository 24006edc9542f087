"""Every ``>>>`` example in knoxpy's docstrings runs, and shows what it says.

Examples that need a live bucket say ``# doctest: +SKIP``; the rest are run here.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import knoxpy

MODULES = sorted(
    m.name for m in pkgutil.iter_modules(knoxpy.__path__, "knoxpy.") if m.name != "knoxpy.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (above)"
