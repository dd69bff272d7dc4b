"""``make demo``: the seed tutorials' schedules side by side, as a table and a plot."""

from __future__ import annotations

from pathlib import Path

from lrlab.reporting.plots import plot_schedules
from lrlab.reporting.tables import curve_table
from lrlab.seeds import SEED_SCHEDULES
from lrlab.spec import parse

EPOCHS = 50


def run_demo(output: Path) -> None:
    schedules = {f"{label}: {spec}": parse(spec) for label, spec in SEED_SCHEDULES.items()}
    curves = {label: parse(spec).curve(EPOCHS) for label, spec in SEED_SCHEDULES.items()}
    curve_table(
        curves, rows=range(0, EPOCHS, 5), title="Seed tutorial schedules (lr per epoch)"
    ).print()
    path = plot_schedules(
        schedules,
        EPOCHS,
        Path(output) / "seed_schedules.png",
        title="Seed tutorial schedules",
        xlabel="epoch",
    )
    print(f"wrote {path}")
