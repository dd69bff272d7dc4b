"""The spec language: ``"warmup(5, cosine(0.1, decay_steps=95))"`` <-> schedule values.

Grammar (a safe recursive-descent parser; nothing is ever evaluated as Python)::

    spec  := call
    call  := NAME [ "(" [ arg ("," arg)* [","] ] ")" ]
    arg   := NAME "=" value | value
    value := NUMBER | true | false | none | STRING | "[" [value ("," value)* [","]] "]" | call

Errors raise :class:`~lrlab.errors.SpecError` whose message names the fault, shows
the spec with a caret under it, and hints at the fix (closest names, valid arguments).

>>> s = parse("warmup(5, cosine(0.1, decay_steps=95))")
>>> str(s)
'warmup(5, cosine(0.1, decay_steps=95))'
>>> round(s(5), 6), round(s(100), 6)
(0.1, 0.0)
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any

from lrlab.errors import LrlabError, ScheduleError, SpecError
from lrlab.schedules import REGISTRY, Schedule
from lrlab.schedules.serialize import MAX_DEPTH, describe, format_spec, signature
from lrlab.schedules.serialize import from_dict as schedule_from_dict

# format_spec, schedule_from_dict, signature and describe live in lrlab.schedules.serialize
# (the schedules write their own text); they are re-exported here for existing callers.
__all__ = [
    "parse",
    "format_spec",
    "schedule_from_dict",
    "signature",
    "describe",
    "MAX_SPEC_LENGTH",
    "MAX_STORED_SPEC_LENGTH",
    "MAX_DEPTH",
]

MAX_SPEC_LENGTH = 4096
#: the limit for specs read from an experiment file or a store: long enough for a
#: ``table(...)`` of ``MAX_TABLE_LENGTH`` values (a tabulated function)
MAX_STORED_SPEC_LENGTH = 4_000_000

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"[^"\n]*"|'[^'\n]*')
  | (?P<punct>[(),=\[\]])
    """,
    re.VERBOSE | re.ASCII,  # \d is 0-9 only: a spec reads the same to everyone
)


@dataclasses.dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


_WINDOW = 72  # characters of a long spec shown around the fault


def _fault(spec: str, pos: int, message: str, hint: str = "") -> SpecError:
    """A :class:`SpecError`: the fault and hint, then the spec with a caret under the fault.

    Line breaks and tabs are shown as spaces so the caret stays aligned; a spec longer
    than ``_WINDOW`` characters is cut to a window around the fault (``...`` marks a cut).
    """
    shown = re.sub(r"\s", " ", spec)
    col = pos
    if len(shown) > _WINDOW:
        lo = max(0, min(pos - _WINDOW // 2, len(shown) - _WINDOW))
        hi = lo + _WINDOW
        head = "..." if lo > 0 else ""
        shown = head + shown[lo:hi] + ("..." if hi < len(shown) else "")
        col = pos - lo + len(head)
    tail = f"; {hint}" if hint else ""
    return SpecError(f"bad spec at column {pos + 1}: {message}{tail}\n  {shown}\n  {' ' * col}^")


def _tokenize(spec: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(spec):
        m = _TOKEN.match(spec, pos)
        if m is None:
            ch = spec[pos]
            hint = (
                "strings need matching quotes"
                if ch in "\"'"
                else "write digits as 0-9"
                if ch.isdigit()
                else "remove it"
            )
            raise _fault(spec, pos, f"unexpected character {ch!r}", hint)
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    toks.append(_Tok("end", "", len(spec)))
    return toks


@dataclasses.dataclass(frozen=True)
class _Call:
    name: str
    pos: int
    args: tuple[tuple[str | None, Any, int], ...]  # (keyword or None, value, position)


class _Parser:
    def __init__(self, spec: str):
        self.spec = spec
        self.toks = _tokenize(spec)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str, what: str) -> _Tok:
        tok = self.peek()
        if tok.text != text:
            found = repr(tok.text) if tok.kind != "end" else "the end of the spec"
            raise _fault(self.spec, tok.pos, f"expected {what}, found {found}")
        return self.take()

    def parse(self) -> _Call:
        tok = self.peek()
        if tok.kind != "name":
            raise _fault(
                self.spec,
                tok.pos,
                "a spec starts with a schedule name",
                "e.g. cosine(0.1, decay_steps=100)",
            )
        call = self.call(depth=1)
        end = self.peek()
        if end.kind != "end":
            raise _fault(
                self.spec, end.pos, f"unexpected {end.text!r} after the schedule", "remove it"
            )
        return call

    def _deeper(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _fault(
                self.spec,
                self.peek().pos,
                f"nested deeper than {MAX_DEPTH} levels",
                "flatten the spec",
            )

    def call(self, depth: int) -> _Call:
        self._deeper(depth)
        name = self.take()
        args: list[tuple[str | None, Any, int]] = []
        if self.peek().text != "(":
            return _Call(name.text, name.pos, ())
        self.take()
        while self.peek().text != ")":
            tok = self.peek()
            keyword = None
            if tok.kind == "name" and self.toks[self.i + 1].text == "=":
                keyword = tok.text
                self.i += 2
            value_pos = self.peek().pos
            args.append((keyword, self.value(depth), tok.pos if keyword else value_pos))
            if self.peek().text == ",":
                self.take()
            elif self.peek().text != ")":
                self.expect(")", "',' or ')'")
        self.take()
        return _Call(name.text, name.pos, tuple(args))

    def value(self, depth: int) -> Any:
        tok = self.peek()
        if tok.kind == "number":
            self.take()
            return _number(self.spec, tok)
        if tok.kind == "string":
            self.take()
            return tok.text[1:-1]
        if tok.kind == "name":
            low = tok.text.lower()
            if low in ("true", "false", "none") and self.toks[self.i + 1].text != "(":
                self.take()
                return {"true": True, "false": False, "none": None}[low]
            if low in ("inf", "infinity", "nan") and self.toks[self.i + 1].text != "(":
                raise _fault(
                    self.spec, tok.pos, f"{tok.text} is not allowed", "numbers must be finite"
                )
            return self.call(depth + 1)
        if tok.text == "[":
            self._deeper(depth + 1)
            self.take()
            items = []
            while self.peek().text != "]":
                items.append(self.value(depth + 1))
                if self.peek().text == ",":
                    self.take()
                elif self.peek().text != "]":
                    self.expect("]", "',' or ']'")
            self.take()
            return items
        found = repr(tok.text) if tok.kind != "end" else "the end of the spec"
        raise _fault(
            self.spec,
            tok.pos,
            f"expected a value, found {found}",
            "values are numbers, true/false, none, 'strings', [lists] or schedules",
        )


def _number(spec: str, tok: _Tok) -> int | float:
    text = tok.text
    if re.fullmatch(r"[+-]?\d+", text):
        if len(text.lstrip("+-")) > 18:
            raise _fault(spec, tok.pos, f"integer {text[:20]}... is too large")
        return int(text)
    return float(text)


def _build(spec: str, call: _Call) -> Schedule:
    cls = REGISTRY.get(call.name)
    if cls is None:
        close = difflib.get_close_matches(call.name, list(REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "run 'lrlab list' for the names"
        raise _fault(spec, call.pos, f"unknown schedule {call.name!r}", hint)
    fields = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    positions: dict[str, int] = {}
    for index, (keyword, value, pos) in enumerate(call.args):
        if keyword is None:
            if kwargs.keys() - set(fields[:index]):
                raise _fault(
                    spec,
                    pos,
                    "a positional argument after a keyword argument",
                    "name this argument too",
                )
            if index >= len(fields):
                raise _fault(
                    spec,
                    pos,
                    f"{call.name} takes at most {len(fields)} argument"
                    + ("s" if len(fields) != 1 else ""),
                    f"signature: {signature(cls)}",
                )
            keyword = fields[index]
        elif keyword not in fields:
            close = difflib.get_close_matches(keyword, fields, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise _fault(
                spec,
                pos,
                f"{call.name} has no argument {keyword!r}",
                f"{hint}valid: {', '.join(fields)}",
            )
        if keyword in kwargs:
            raise _fault(spec, pos, f"argument {keyword!r} given twice")
        kwargs[keyword] = _resolve(spec, value)
        positions[keyword] = pos
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs and f.default is dataclasses.MISSING
    ]
    if missing:
        raise _fault(
            spec,
            call.pos,
            f"{call.name} is missing argument {missing[0]!r}",
            f"signature: {signature(cls)}",
        )
    try:
        return cls(**kwargs)
    except ScheduleError as err:
        # point at the argument the error names (its keyword, or its value if positional)
        pos = positions.get(getattr(err, "argument", None) or "", call.pos)
        raise _fault(spec, pos, str(err), f"signature: {signature(cls)}") from None


def _resolve(spec: str, value: Any) -> Any:
    if isinstance(value, _Call):
        return _build(spec, value)
    if isinstance(value, list):
        return [_resolve(spec, v) for v in value]
    return value


def parse(spec: str | Schedule, max_length: int = MAX_SPEC_LENGTH) -> Schedule:
    """Parse a spec string into a schedule (a schedule passes through unchanged).

    ``max_length``: the longest spec accepted (:data:`MAX_STORED_SPEC_LENGTH` for specs
    from an experiment file or a store, which may hold long tables).

    >>> parse("step_decay(0.1, drop=0.5, every=10, offset=1)")(9)
    0.05
    >>> parse("cosin(0.1, decay_steps=10)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrlab.errors.SpecError: bad spec at column 1: unknown schedule 'cosin'; did you mean cosine...
    """
    if isinstance(spec, Schedule):
        return spec
    if not isinstance(spec, str):
        raise SpecError(f"a spec must be a string, got {type(spec).__name__}")
    if len(spec) > max_length:
        raise SpecError(f"spec is {len(spec)} characters long; the limit is {max_length}")
    if not spec.strip():
        raise SpecError("empty spec; write a schedule such as cosine(0.1, decay_steps=100)")
    return _build(spec, _Parser(spec).parse())


def parse_call(text: str) -> tuple[str, list[Any], dict[str, Any]]:
    """Parse ``name(arg, key=value, ...)`` with the spec grammar, building nothing.

    For specs that are not schedules (e.g. model specs such as ``mlp(hidden=[34])``).
    Values are numbers, true/false/none, strings and lists; a nested call comes back as
    a ``(name, args, kwargs)`` tuple. Errors are :class:`SpecError` with a caret.

    >>> parse_call('mlp(hidden=[34, 16], activation="relu")')
    ('mlp', [], {'hidden': [34, 16], 'activation': 'relu'})
    """
    if not isinstance(text, str):
        raise SpecError(f"a spec must be a string, got {type(text).__name__}")
    if len(text) > MAX_SPEC_LENGTH:
        raise SpecError(f"spec is {len(text)} characters long; the limit is {MAX_SPEC_LENGTH}")
    return _unpack_call(text, _Parser(text).parse())


def _unpack_call(text: str, call: _Call) -> tuple[str, list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for keyword, value, pos in call.args:
        value = _unpack_value(text, value)
        if keyword is None:
            if kwargs:
                raise _fault(
                    text, pos, "a positional argument after a keyword argument", "name it too"
                )
            args.append(value)
        elif keyword in kwargs:
            raise _fault(text, pos, f"argument {keyword!r} given twice")
        else:
            kwargs[keyword] = value
    return call.name, args, kwargs


def _unpack_value(text: str, value: Any) -> Any:
    if isinstance(value, _Call):
        return _unpack_call(text, value)
    if isinstance(value, list):
        return [_unpack_value(text, v) for v in value]
    return value


__all__ += ["LrlabError", "parse_call"]
