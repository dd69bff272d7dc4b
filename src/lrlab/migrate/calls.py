"""The fix of one call with Keras 2 arguments, as edits of source spans.

A fix never regenerates the call: it renames a keyword (``lr`` -> ``learning_rate``),
wraps a value (``0.1`` -> ``lrlab.keras.legacy_decay(0.1, 0.002)``) or deletes an
argument with its comma, so the comments and layout of the call survive, as in
ruff's fixes. Positions come from :mod:`ast` (UTF-8 byte columns, converted to
characters by :class:`SourceMap`).

>>> import ast
>>> source = "SGD(lr=0.1, momentum=0.8, decay=0.002)"
>>> fix = fix_call(ast.parse(source).body[0].value, SourceMap(source), {})
>>> apply_edits(source, fix.edits)
'SGD(learning_rate=lrlab.keras.legacy_decay(0.1, 0.002), momentum=0.8)'
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterable

__all__ = ["KERAS3_DEFAULT_LR", "CallFix", "Edit", "SourceMap", "apply_edits", "fix_call"]

#: Keras 3's default ``learning_rate`` of each optimizer (equal to tf.keras 2's; standalone
#: Keras <= 2.3 had Adagrad 0.01, Adadelta 1.0, Adamax and Nadam 0.002).
KERAS3_DEFAULT_LR: dict[str, float] = {
    "SGD": 0.01,
    "Adam": 0.001,
    "AdamW": 0.001,
    "RMSprop": 0.001,
    "Adagrad": 0.001,
    "Adadelta": 0.001,
    "Adamax": 0.001,
    "Nadam": 0.001,
    "Ftrl": 0.001,
    "Lion": 0.001,
    "Lamb": 0.001,
    "Adafactor": 0.001,
}

NOT_KERAS = {"torch", "optax", "jax", "flax", "mxnet", "paddle", "optim"}
_RENAMES = {
    "optimizer": {"lr": "learning_rate"},
    "Dense": {"init": "kernel_initializer"},
    "any": {"nb_epoch": "epochs"},
}
_WHY = {
    "lr": "`lr=` raises on Keras 3: renamed `learning_rate=`",
    "init": "`init=` raises on Keras 3: renamed `kernel_initializer=`",
    "nb_epoch": "`nb_epoch=` raises on Keras 3: renamed `epochs=`",
}
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass(frozen=True, order=True)
class Edit:
    """Replace ``source[begin:end]`` (character offsets) by ``text``."""

    begin: int
    end: int
    text: str


@dataclasses.dataclass(frozen=True)
class CallFix:
    """What is wrong with one call and the edits that fix it.

    Attributes:
        call: the called name as written (``keras.optimizers.SGD``).
        args: the legacy arguments found, in source order (``("lr", "decay")``).
        message: what Keras 3 does with them and what replaces them, or why the call
            must be fixed by hand.
        edits: disjoint edits of the source; None when it cannot be fixed safely.
    """

    call: str
    args: tuple[str, ...]
    message: str
    edits: tuple[Edit, ...] | None

    @property
    def uses_lrlab(self) -> bool:
        """The fix calls ``lrlab.keras.legacy_decay`` (the module needs the import)."""
        return any("lrlab.keras.legacy_decay(" in edit.text for edit in self.edits or ())


class SourceMap:
    """Character offsets of :mod:`ast` positions (1-based lines, UTF-8 byte columns).

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as Python's tokenizer counts them.

    >>> where = SourceMap("a = 1\\r\\nb = 'é'; c")
    >>> where.offset(2, 10), where.source[where.offset(2, 10)]  # 'é' is 2 bytes
    (16, 'c')
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.line_starts = [0] + [m.end() for m in _NEWLINE.finditer(source)]

    def line_bounds(self, lineno: int) -> tuple[int, int]:
        """``(start, end)`` of line ``lineno``; ``end`` is past its newline."""
        starts = self.line_starts
        return starts[lineno - 1], starts[lineno] if lineno < len(starts) else len(self.source)

    def offset(self, lineno: int, byte_col: int) -> int:
        start, end = self.line_bounds(lineno)
        line = self.source[start:end].encode()
        return start + len(line[:byte_col].decode(errors="replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        """``(begin, end)`` character offsets of a node."""
        return (
            self.offset(node.lineno, node.col_offset),
            self.offset(node.end_lineno, node.end_col_offset),
        )


def apply_edits(source: str, edits: Iterable[Edit]) -> str:
    """``source`` with disjoint edits applied.

    >>> apply_edits("abcdef", [Edit(1, 2, "X"), Edit(4, 4, "+")])
    'aXcd+ef'
    """
    out, pos = [], 0
    for edit in sorted(edits):
        out.append(source[pos : edit.begin])
        out.append(edit.text)
        pos = edit.end
    out.append(source[pos:])
    return "".join(out)


# --------------------------------------------------------------------------- one call
def dotted_name(node: ast.expr) -> str | None:
    """``a.b.c`` for an attribute chain on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_zero(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
        and node.value == 0
    )


class _CannotFix(Exception):
    """The call's layout or arguments make an automatic fix unsafe (the reason)."""


class _Call:
    """One call's arguments as spans, and the edits that change them."""

    def __init__(self, call: ast.Call, where: SourceMap) -> None:
        self.where = where
        self.source = where.source
        nodes = sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))
        self.items = [(node, *where.span(node)) for node in nodes]
        self.edits: list[Edit] = []
        self.deleted: set[int] = set()

    def value_text(self, node: ast.AST) -> tuple[int, int, str]:
        """Span and text of an argument's value; a keyword's value keeps its parentheses."""
        begin, end = self.where.span(node)
        if isinstance(node, ast.keyword):
            begin = self.source.index("=", begin) + 1
            begin += len(self.source[begin:end]) - len(self.source[begin:end].lstrip())
        return begin, end, self.source[begin:end]

    def rename(self, keyword: ast.keyword, new: str) -> None:
        begin, _ = self.where.span(keyword)
        self.edits.append(Edit(begin, begin + len(keyword.arg or ""), new))

    def replace(self, begin: int, end: int, text: str) -> None:
        self.edits.append(Edit(begin, end, text))

    def delete(self, node: ast.AST) -> None:
        """Delete an argument and one comma; comments stay (or the fix is refused)."""
        index = next(i for i, item in enumerate(self.items) if item[0] is node)
        self.deleted.add(index)
        _, begin, end = self.items[index]
        kept = [(i, item) for i, item in enumerate(self.items) if i not in self.deleted]
        kept_before = [item for i, item in kept if i < index]
        kept_after = [item for i, item in kept if i > index]
        src = self.source
        line_start = src.rfind("\n", 0, begin) + 1
        line_end = _NEWLINE.search(src, end)
        line_end_at = line_end.start() if line_end else len(src)
        tail = re.fullmatch(r"[ \t]*(,?)[ \t]*(#.*)?", src[end:line_end_at])
        alone = not src[line_start:begin].strip() and tail is not None
        if alone and (tail.group(1) or not kept_after):
            if tail.group(2):  # keep the comment of the deleted argument's line
                self.edits.append(Edit(begin, end + tail.start(2), ""))
            else:
                self.edits.append(Edit(line_start, line_end.end() if line_end else line_end_at, ""))
        elif kept_after and "#" not in src[end : kept_after[0][1]]:
            self.edits.append(Edit(begin, kept_after[0][1], ""))
        elif (trailing := re.match(r"[ \t]*,[ \t]*", src[end:])) is not None:
            self.edits.append(Edit(begin, end + trailing.end(), ""))  # a comment follows
        elif kept_after:
            raise _CannotFix("a comment sits between the argument and its comma")
        elif kept_before:
            comma = src.find(",", kept_before[-1][2])
            if "#" in src[comma:begin]:  # keep the comment: drop the comma and the argument
                indent = len(src[:begin]) - len(src[:begin].rstrip(" \t"))
                self.edits += [Edit(comma, comma + 1, ""), Edit(begin - indent, end, "")]
            else:
                self.edits.append(Edit(comma, end, ""))
        else:
            self.edits.append(Edit(begin, end, ""))

    def merged_edits(self) -> tuple[Edit, ...]:
        """The edits in order, overlapping deletions merged into one."""
        out: list[Edit] = []
        for edit in sorted(self.edits):
            if out and edit.begin < out[-1].end:
                if edit.text or out[-1].text:
                    raise _CannotFix("two changes overlap")
                out[-1] = Edit(out[-1].begin, max(out[-1].end, edit.end), "")
            else:
                out.append(edit)
        return tuple(out)


def fix_call(call: ast.Call, where: SourceMap, imports: dict[str, str]) -> CallFix | None:
    """The fix for one call, or None when it has no legacy argument.

    Args:
        call: the call node, parsed from ``where.source``.
        where: the source it was parsed from.
        imports: local name -> dotted origin (to leave ``torch.optim.SGD`` alone).
    """
    name = dotted_name(call.func)
    if name is None:
        return None
    parts = name.split(".")
    resolved = imports.get(parts[0], parts[0]).split(".")[0]
    kind = "any"
    if parts[-1] in KERAS3_DEFAULT_LR and resolved not in NOT_KERAS:
        kind = "optimizer"
    elif parts[-1] == "Dense":
        kind = "Dense"
    renames = {**_RENAMES["any"], **_RENAMES.get(kind, {})}
    keywords = {k.arg: k for k in call.keywords if k.arg is not None}
    decay = keywords.get("decay") if kind == "optimizer" else None
    integers = _integer_floats(call, keywords, decay, parts[-1]) if kind == "optimizer" else []
    found = tuple(k.arg for k in call.keywords if k.arg in renames or k is decay or k in integers)
    if isinstance(call.args[0] if call.args else None, ast.Constant) and call.args[0] in integers:
        found = ("learning_rate", *found)
    if not found:
        return None
    short = parts[-1]
    edit = _Call(call, where)
    why = []
    try:
        for old in found:
            if old not in renames:
                continue
            new = renames[old]
            why.append(_WHY[old])
            edit.rename(keywords[old], new)
            if new in keywords:  # Keras 2 used lr= / nb_epoch= when both were given
                edit.delete(keywords[new])
                why.append(f"`{new}=` removed: Keras 2 used `{old}=` when both were given")
        for node in integers:
            begin, end, text = edit.value_text(node)
            edit.replace(begin, end, repr(float(text)))
            arg = node.arg if isinstance(node, ast.keyword) else "learning_rate"
            why.append(
                f"`{arg}={text}` raises on Keras 3, which wants a float: written `{float(text)!r}`"
            )
        if decay is not None:
            why.append(_fix_decay(edit, call, keywords, decay, short))
        edits = edit.merged_edits()
    except _CannotFix as reason:
        why.append(f"cannot fix it safely: {reason} (fix by hand)")
        message = f"{short}: " + "; ".join(why)
        return CallFix(name, found, message, None)
    return CallFix(name, found, f"{short}: " + "; ".join(why), edits)


def _integer_floats(
    call: ast.Call, keywords: dict[str | None, ast.keyword], decay, short: str
) -> list[ast.AST]:
    """Arguments Keras 2 took as an int literal and Keras 3 refuses unless float.

    Keras 3 raises for ``learning_rate=1`` (the optimizer base class wants a float or a
    schedule) and for ``SGD(momentum=0)``. An lr that ``decay=`` wraps in
    ``legacy_decay`` stays as it is (the schedule takes ints).
    """
    lr = keywords.get("lr") or keywords.get("learning_rate")
    if lr is None and call.args and not isinstance(call.args[0], ast.Starred):
        lr = call.args[0]
    candidates = [] if decay is not None and not _is_zero(decay.value) else [lr]
    if short == "SGD":
        candidates.append(keywords.get("momentum"))

    def integer(node: ast.AST | None) -> bool:
        value = node.value if isinstance(node, ast.keyword) else node
        return (
            isinstance(value, ast.Constant)
            and isinstance(value.value, int)
            and not isinstance(value.value, bool)
        )

    return [node for node in candidates if integer(node)]


def _fix_decay(
    edit: _Call, call: ast.Call, keywords: dict[str | None, ast.keyword], decay, short: str
) -> str:
    """Edits for ``decay=``; returns the sentence that explains them."""
    _, _, decay_text = edit.value_text(decay)
    if _is_zero(decay.value):
        edit.delete(decay)
        return f"`decay={decay_text}` is a no-op Keras 3 warns about: removed"
    lr_node = keywords.get("lr") or keywords.get("learning_rate")
    if lr_node is None and call.args and not isinstance(call.args[0], ast.Starred):
        lr_node = call.args[0]
    unknown = any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    )
    if lr_node is None and unknown:
        raise _CannotFix(f"`decay={decay_text}` is given but the lr may come from *args/**kwargs")
    schedule = "lrlab.keras.legacy_decay({}, " + decay_text + ")"
    default = ""
    if lr_node is None:
        default = f" (lr not given: {short}'s default)"
        begin, end = edit.where.span(decay)
        edit.replace(begin, end, "learning_rate=" + schedule.format(KERAS3_DEFAULT_LR[short]))
    else:
        begin, end, lr_text = edit.value_text(lr_node)
        edit.replace(begin, end, schedule.format(lr_text))
        edit.delete(decay)
    return (
        f"`decay={decay_text}` is ignored by Keras 3, which trains without it: "
        f"Keras 2's lr / (1 + decay * iterations) per update is legacy_decay{default}"
    )
