"""The ``lrlab`` commands about schedules alone: ``list``, ``curve``, ``check`` and ``plot``.

:mod:`lrlab.cli` adds them to the ``lrlab`` group; errors end as its one-line messages.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from lrlab.errors import LrlabError

SCHEDULE_COMMANDS: list[click.Command] = []


def _command(name: str | None = None):
    """``@click.command`` that also lists the command in :data:`SCHEDULE_COMMANDS`."""

    def wrap(fn):
        command = click.command(name)(fn)
        SCHEDULE_COMMANDS.append(command)
        return command

    return wrap


@_command("list")
def list_cmd() -> None:
    """Every schedule with its signature and one line."""
    from lrlab.schedules import REGISTRY
    from lrlab.spec import describe, signature

    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        click.echo(f"{signature(cls)}\n    {describe(cls)}")


@_command()
@click.argument("spec")
@click.option(
    "--steps",
    "-n",
    type=click.IntRange(min=1, max=10_000_000),
    required=True,
    help="Number of steps (0 .. N-1).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def curve(spec: str, steps: int, fmt: str) -> None:
    """The lr of SPEC at steps 0..N-1."""
    from lrlab.spec import parse

    values = parse(spec).curve(steps)
    if fmt == "json":
        click.echo(json.dumps([float(v) for v in values]))
    elif fmt == "csv":
        click.echo("step,lr")
        click.echo("\n".join(f"{i},{float(v)!r}" for i, v in enumerate(values)))
    else:
        from lrlab.reporting.tables import curve_table

        curve_table({spec: values}).print()


@_command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--epochs", type=click.IntRange(min=1), required=True, help="Epochs of the run.")
@click.option(
    "--steps-per-epoch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Updates per epoch.",
)
@click.option(
    "--unit",
    type=click.Choice(["step", "epoch"]),
    default="step",
    show_default=True,
    help="What the schedule counts: updates (step) or epochs.",
)
def check(specs: tuple[str, ...], epochs: int, steps_per_epoch: int, unit: str) -> int:
    """Does each SPEC's horizon fit a run of EPOCHS x STEPS_PER_EPOCH updates?

    Prints each finding; exits 0 when there is none, 1 when there are findings (as a
    linter does), 2 on bad input.
    """
    from lrlab.integrations.horizon import check as check_spec

    results = [
        (spec, check_spec(spec, epochs=epochs, steps_per_epoch=steps_per_epoch, unit=unit))
        for spec in specs
    ]
    run = f"{epochs} epochs x {steps_per_epoch} updates, unit {unit}"
    for spec, findings in results:
        click.echo(f"{spec} ({run}): {'ok' if not findings else ''}".rstrip())
        for finding in findings:
            click.echo(f"  {finding.kind}: {finding.message}")
    return 1 if any(findings for _, findings in results) else 0


@_command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--steps", "-n", type=click.IntRange(min=1, max=10_000_000), required=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="PNG file to write.",
)
@click.option("--log", is_flag=True, help="Logarithmic lr axis.")
@click.option("--title", default=None)
def plot(specs: tuple[str, ...], steps: int, output: Path, log: bool, title: str | None) -> None:
    """Plot the lr curves of one or more SPECS on one labelled figure."""
    from lrlab.reporting.plots import plot_schedules
    from lrlab.spec import parse

    schedules = {spec: parse(spec) for spec in specs}
    try:
        plot_schedules(schedules, steps, output, log=log, title=title)
    except OSError as err:  # unwritable directory, disk full, ...
        raise LrlabError(f"cannot write {output}: {err.strerror or err}") from None
    click.echo(f"wrote {output}")
