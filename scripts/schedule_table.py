"""Print the README's schedule table (markdown) from the registry.

Every row comes from the schedule class itself: the signature from its fields, the
formula and the library it matches from its ``FORMULA`` and ``REFERENCE``, so the table
cannot drift from the code.

    KERAS_BACKEND=jax .venv/bin/python scripts/schedule_table.py > /tmp/table.md
"""

from __future__ import annotations

from lrlab.schedules import REGISTRY
from lrlab.schedules.serialize import signature


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def schedule_table() -> str:
    """The markdown table: one row per registered schedule, curves first, then reactive."""
    rows = ["| spec | formula (t = step, 0 = first update) | matches |", "| --- | --- | --- |"]
    for name in sorted(REGISTRY, key=lambda n: (REGISTRY[n].reactive, n)):
        cls = REGISTRY[name]
        rows.append(
            f"| `{_cell(signature(cls))}` | {_cell(cls.FORMULA)} | {_cell(cls.REFERENCE)} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(schedule_table())
