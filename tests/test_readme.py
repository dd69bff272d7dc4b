"""The README stays true: what it shows as output is what the code prints.

Convention: put ``<!-- readme-test -->`` on the line directly above a block, and the block
runs here (``tests/readme_blocks.py`` has the rules):

- a ```` ```python ```` block followed directly by a plain ```` ``` ```` block: its stdout;
- a ```` ```python ```` block with ``>>>`` prompts: a doctest;
- a ```` ```python ```` block with ``print(...)  # -> TEXT`` lines: those TEXTs, in order;
- a console block of ``$ COMMAND`` lines, each followed by what it prints.

Randomness is seeded in the snippets themselves (``keras.utils.set_random_seed``,
``np.random.default_rng(0)``), so the README shows exactly what a reader gets. Blocks of
one chapter run in order in one fresh folder. Nothing is skipped silently: a block that
shows output and carries no marker must belong to a chapter of ``NOT_RUN`` below, with
the reason; the migrate chapter runs in ``tests/test_migrate_fix.py``.
"""

from __future__ import annotations

import pytest

from readme_blocks import check_section, readme_blocks

#: Chapters (## headings) or sections (### headings) whose output blocks are not run here,
#: and why. Removing an entry makes its blocks need a marker.
NOT_RUN = {
    "How fast is a closed-form curve?": "a benchmark: timings differ on every run",
    "`lrlab.keras.Scheduler`: plateau on top of any schedule, epochs, a record of every lr": (
        "the bench/keras_scheduler.py timings (the Scheduler snippet itself is run)"
    ),
    "optax": "the optax_ionosphere.py example run (a full training)",
    "PyTorch": "the torch_ionosphere.py example run (the snippets themselves are run)",
    "The seed 002 claim, re-measured": "30 seeds x 4 configs of Keras training (minutes)",
    "Do I still need a schedule? Schedule-free vs cosine and one-cycle": (
        "scripts/schedule_free.py: 20 seeds x 12 configs x 2 datasets of training (minutes)"
    ),
    "The Keras engine: compiled once": "a benchmark (bench/compile_cache.py): timings",
}
ELSEWHERE = {  # sections whose console blocks another test replays (tests/readme_console.py)
    "Migrating Keras 2 code: `lrlab migrate`": "tests/test_migrate_fix.py",
    "Does the horizon fit the run? `lrlab check`": "tests/test_horizon_check_cli.py",
    "Statistics": "tests/test_verdict_table.py",
    "Your own schedule: a Python function": "tests/test_function_schedules.py",
    "Transfer learning: the lr of a new head on a frozen base (seed 004)": "tests/test_transfer.py",
}
BLOCKS = readme_blocks()
CHAPTERS = sorted(
    {b.chapter for b in BLOCKS if b.marked and b.chapter not in ELSEWHERE},
    key=lambda c: min(b.line for b in BLOCKS if b.chapter == c),
)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_readme_chapter_prints_what_it_shows(chapter, tmp_path):
    assert check_section(chapter, tmp_path) >= 1


def test_no_output_block_is_left_unchecked_silently():
    unchecked = [
        f"README.md:{b.line} ({b.section})"
        for b in BLOCKS
        if b.kind
        and not b.marked
        and not ({b.section, b.chapter} & (set(NOT_RUN) | set(ELSEWHERE)))
    ]
    assert unchecked == [], "mark these <!-- readme-test --> or list them in NOT_RUN"


def test_markers_are_on_blocks_that_show_output():
    assert [b.line for b in BLOCKS if b.marked and not b.kind] == []
    assert sum(b.marked for b in BLOCKS) >= 10
