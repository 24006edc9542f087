"""A Griffe extension for `make docs`: knoxpy's docstrings, rendered as Markdown.

knoxpy's docstrings are written for `help()` and doctest: `>>>` runs, reST literal
blocks introduced by `::`, and the odd :class:`Name` role. mkdocstrings renders a
docstring as Markdown, where `>>>` starts nested block quotes and `[...]` looks like a
link. This rewrites the text only for the rendered page (the source is untouched):

- a run of doctest lines (`>>>`, `...` and the output under them) becomes a
  ```pycon fence, without `# doctest:` directives;
- an indented block after a line ending in `::` becomes a ```text fence (the `::`
  becomes `:`, or goes when it stands alone);
- :class:`X`, :func:`X`, :meth:`X`... become `X`.
"""
from __future__ import annotations

import re
from typing import Any, Iterator, List

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`~?([^`]+)`")
_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def markdown(text: str) -> str:
    """The docstring ``text`` with doctest runs and literal blocks fenced."""
    lines = text.splitlines()
    out: List[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(">>>"):
            pad = " " * _indent(line)
            out.append(pad + "```pycon")
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) >= len(pad):
                out.append(_DIRECTIVE.sub("", lines[i]))
                i += 1
            out.append(pad + "```")
            continue
        if stripped.endswith("::") and i + 1 < len(lines) and not lines[i + 1].strip():
            base = _indent(line)
            head = line.rstrip()[:-1]  # 'Text::' -> 'Text:'
            if head.strip() != ":":
                out.append(_ROLE.sub(r"`\1`", head))
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block: List[str] = []
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            if block:
                cut = min(_indent(b) for b in block if b.strip())
                pad = " " * base
                out += ["", pad + "```text", *(pad + b[cut:] for b in block), pad + "```", ""]
                i = j
                continue
        out.append(_ROLE.sub(r"`\1`", line))
        i += 1
    return "\n".join(out)


def _walk(obj: Any) -> Iterator[Any]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring of a loaded package with :func:`markdown`."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = markdown(obj.docstring.value)
