"""The README's code blocks and what they show, and the runner that checks them.

Marker convention (documented in ``tests/test_readme.py``): the line ``<!-- readme-test -->``
directly above a fenced block makes the tests run it:

- a ```` ```python ```` block followed directly by a plain ```` ``` ```` block: the code runs
  as a script (a fresh ``python``) and its stdout must equal the plain block;
- a ```` ```python ```` block with ``>>>`` lines: a doctest (outputs under the prompts);
- a ```` ```python ```` block whose ``print(...)`` lines end in ``# -> TEXT``: the script's
  stdout must be those TEXTs, one line each, in order;
- a console block (```` ``` ````, ```` ```console ````, ```` ```bash ````) of ``$ COMMAND``
  lines, each followed by its output: every command runs in ``bash`` (stderr folded into
  stdout, as a terminal shows it) and must print exactly that. ``$ cat FILE`` of a file
  that does not exist yet creates it with the text shown (the README shows a file, then
  works on it).

``<!-- readme-test: continues -->`` instead marks a python block that goes on from the
python block before it (it uses its names): the chain of such blocks runs once, as one
script, and its output must be what the blocks show, in order.

Blocks of one section run in order in one folder (a later block may read what an earlier
one wrote), with ``lrlab`` on the PATH, ``../shared`` the shared data and seeds, and
``KERAS_BACKEND=jax``.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

from datafiles import SHARED_DATA
from readme_console import console_env, replay

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = SHARED_DATA.parent  # ../shared: data/ and seeds/
MARKER = "<!-- readme-test -->"
CONTINUES = "<!-- readme-test: continues -->"
ARROW = re.compile(r"^\s*print\(.*#\s*->\s?(.*)$")


@dataclasses.dataclass(frozen=True)
class Block:
    """A fenced block of the README: where it is, its language and text, and the plain
    block right after it (a python block's shown output), if any."""

    line: int  # 1-based line of the opening fence
    section: str  # the heading above it (## or ###)
    chapter: str  # the ## heading above it
    lang: str
    text: str
    marked: bool
    output: str | None = None
    continues: bool = False

    @property
    def kind(self) -> str:
        """python-output, doctest, arrows, console or "" (shows no output)."""
        if self.lang == "python":
            if ">>>" in self.text:
                return "doctest"
            if any(ARROW.match(line) for line in self.text.splitlines()):
                return "arrows"
            return "python-output" if self.output is not None else ""
        if self.lang in ("", "console", "bash") and re.search(r"^\$ ", self.text, re.M):
            steps = console_steps(self.text)
            return "console" if any(out for _, out in steps) else ""
        return ""


def readme_blocks(path: Path = README) -> list[Block]:
    """Every fenced block of the README, with its section and marker (module docstring)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    raw: list[dict] = []
    section = chapter = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            start, body = i, []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            above = lines[start - 1].strip() if start > 0 else ""
            raw.append(
                dict(
                    line=start + 1,
                    end=i,
                    section=section,
                    chapter=chapter,
                    lang=fence.group(1),
                    text="".join(body),
                    marked=above in (MARKER, CONTINUES),
                    continues=above == CONTINUES,
                )
            )
        elif line.startswith(("## ", "### ")):
            section = line.strip("# \n")
            chapter = section if line.startswith("## ") else chapter
        i += 1
    blocks = []
    skip = set()
    for n, b in enumerate(raw):
        if n in skip:
            continue
        nxt = raw[n + 1] if n + 1 < len(raw) else None
        output = None
        if b["lang"] == "python" and nxt and nxt["lang"] == "" and nxt["line"] == b["end"] + 2:
            output, _ = nxt["text"], skip.add(n + 1)
        blocks.append(Block(**{k: v for k, v in b.items() if k != "end"}, output=output))
    return blocks


def console_steps(text: str) -> list[tuple[str, str]]:
    """``$ COMMAND`` lines of a console block with the output shown under each."""
    steps = re.split(r"^\$ ", text, flags=re.MULTILINE)[1:]
    return [(step.split("\n", 1) + [""])[:2] for step in steps]  # type: ignore[misc]


def workspace(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A folder to run README blocks in (``../shared`` beside it) and their environment
    (:func:`readme_console.console_env`: this tree's ``lrlab`` first on the PATH)."""
    env = {**console_env(tmp), "LRLAB_CACHE": str(tmp / "cache")}
    (tmp / "shared").symlink_to(SHARED)
    work = tmp / "work"
    work.mkdir()
    return work, env


def _run(args: list[str], work: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        args,
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    return done.stdout


def _shown(block: Block) -> str:
    """What a python block shows as its output (the block after it, or its ``# ->``)."""
    if block.kind == "arrows":
        found = (ARROW.match(line) for line in block.text.splitlines())
        return "".join(m.group(1) + "\n" for m in found if m)
    return block.output or ""


def check_block(
    block: Block, work: Path, env: dict[str, str], before: list[Block] | None = None
) -> None:
    """Run one marked block in ``work`` and assert it prints what the README shows;
    ``before``: the python blocks it continues (run first, in the same script)."""
    where = f"README.md:{block.line} ({block.section})"
    kind = block.kind
    if kind == "console":
        replay([console_steps(block.text)], work, env)
    elif kind == "doctest":
        script = (
            "import doctest, sys\n"
            f"test = doctest.DocTestParser().get_doctest({block.text!r}, {{}}, 'README', "
            f"'README.md', {block.line})\n"
            "runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)\n"
            "runner.run(test)\nsys.exit(1 if runner.failures else 0)\n"
        )
        got = _run([sys.executable, "-c", script], work, env)
        assert got == "", f"{where}:\n{got}"
    elif kind in ("python-output", "arrows"):
        chain = [*(before or []), block]
        code = "\n".join(b.text for b in chain)
        expected = "".join(_shown(b) for b in chain)
        got = _run([sys.executable, "-c", code], work, env)
        assert got == expected, where
    else:
        raise AssertionError(f"{where}: marked {MARKER} but shows no output to compare")


def check_section(chapter_or_section: str, tmp: Path) -> int:
    """Run every marked block under the heading (a ## chapter or a ### section) in order,
    in one folder; returns how many ran."""
    work, env = workspace(tmp)
    blocks = [
        b for b in readme_blocks() if b.marked and chapter_or_section in (b.section, b.chapter)
    ]
    chain: list[Block] = []
    for n, block in enumerate(blocks):
        before = chain if block.continues else []
        chain = [*before, block] if block.lang == "python" else []
        if n + 1 < len(blocks) and blocks[n + 1].continues and chain:
            continue  # a chain runs once, as one script, at its last block
        check_block(block, work, env, before or None)
    return len(blocks)
