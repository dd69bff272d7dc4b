"""The ``lrlab`` command line: argument handling and calls, nothing else.

Every user error (a bad spec, config, file or flag) ends in one message on stderr and
exit code 2, without a traceback. SIGINT (Ctrl-C) and SIGTERM are handled from the first
line of :func:`main` (:class:`lrlab.experiments.stopping.StopRequest`): a run stops after
storing what finished, prints the resume line, and ``lrlab`` exits with 130 or 143.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from lrlab.cli_process import (
    LrlabProcess,
    before_exit,
    before_jax,
    collect_less_often,
    interrupted,
    process_of,
)
from lrlab.cli_schedules import SCHEDULE_COMMANDS
from lrlab.errors import LrlabError

EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lrlab")
def cli() -> None:
    """lrlab: choose a learning-rate schedule with evidence."""


# --------------------------------------------------------------------------- schedules
for _schedule_command in SCHEDULE_COMMANDS:  # list, curve, check, plot
    cli.add_command(_schedule_command)


@cli.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/demo"),
    show_default=True,
)
@click.pass_context
def demo(ctx: click.Context, output: Path) -> None:
    """The main job on offline data (see README)."""
    before_jax(process_of(ctx))
    from lrlab.demo import run_demo

    run_demo(output)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--text",
    "as_text",
    is_flag=True,
    default=None,
    help="Scan every file as prose with code inside (the default for non-.py files).",
)
@click.option("--diff", "show_diff", is_flag=True, help="Print the fixes as a unified diff.")
@click.option("--write", is_flag=True, help="Apply the fixes to the files, in place.")
def migrate(files: tuple[Path, ...], as_text: bool | None, show_diff: bool, write: bool) -> int:
    """Report (or, with --diff/--write, fix) Keras 2 arguments Keras 3 rejects or ignores.

    Without a flag: FILE:LINE:COL: message and the replacement for each call. --diff:
    a unified diff on stdout, nothing changed. --write: the files rewritten in place
    (atomically; comments and layout outside the fixed spans kept). Exit 1 when a legacy
    call is left in the files on disk (reported, in the diff, or to fix by hand after
    --write), 0 when none, 2 when a file cannot be read or parsed (nothing written).
    """
    if show_diff and write:
        raise LrlabError("--diff and --write: choose one (--diff shows, --write applies)")
    from lrlab.migrate import migrate_files

    migrations = migrate_files(files, text=as_text)
    if not (show_diff or write):
        findings = [finding for m in migrations for finding in m.findings]
        for finding in findings:
            click.echo(finding.format())
        if findings:
            click.echo(f"lrlab migrate: {len(findings)} call(s) to change", err=True)
        return 1 if findings else 0
    by_hand = [f for m in migrations for f in (m.by_hand if show_diff else m.remaining)]
    fixed = sum(len(m.findings) - len(m.by_hand) for m in migrations)
    for migration in migrations:
        if show_diff:
            click.echo(migration.diff(), nl=False)
        elif migration.write():
            click.echo(f"lrlab migrate: fixed {migration.path}", err=True)
    for finding in by_hand:  # stdout stays a pure diff with --diff
        click.echo(finding.format(), err=show_diff)
    changed = sum(m.changed for m in migrations)
    done = "to fix" if show_diff else "fixed"
    click.echo(
        f"lrlab migrate: {fixed} call(s) {done} in {changed} file(s), "
        f"{len(by_hand)} left to fix by hand",
        err=True,
    )
    still_legacy = by_hand or (show_diff and changed)
    return 1 if still_legacy else 0


# --------------------------------------------------------------------------- experiments
def _table_options(command):
    """``--wide`` and ``--columns``: which columns of the results table are printed."""
    command = click.option(
        "--columns",
        default=None,
        metavar="NAMES",
        help="The results table's columns, comma-separated (e.g. config,mean,anytime,verdict).",
    )(command)
    return click.option("--wide", is_flag=True, help="Every column of the results table.")(command)


@cli.command()
@click.argument("experiment", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Experiment folder (default: runs/<file name>).",
)
@click.option(
    "--new",
    is_flag=True,
    help="Start over when the folder's stored trials differ from the file's (its store is "
    "kept, renamed).",
)
@click.option("--engine", default=None, help="auto, keras, ... (default: the file's engine).")
@click.option(
    "--memory",
    default=None,
    envvar="LRLAB_MEMORY",
    help="Population engine: memory for one chunk of trials, e.g. 512MB (default 1GB; "
    "also LRLAB_MEMORY).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option(
    "--seeds",
    type=click.IntRange(min=1, max=10_000),
    default=None,
    help="Grow the experiment to this many seeds (recorded in its store; stored trials "
    "are reused).",
)
@click.option("--yes", is_flag=True, help="Run a plan of more than 200,000 trials.")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Train trials as Ray tasks: alone, on a local Ray started for the run; with "
    "ADDRESS (auto, HOST:6379, ray://HOST:10001), on that cluster. Needs lrlab[ray].",
)
@click.option("--ray-cpus", type=click.IntRange(min=1), default=None, help="CPUs of a local Ray.")
@click.option("--task-cpus", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--task-gpus", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Reruns of a Ray task whose worker died.",
)
@_table_options
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse to run (exit 2) when a schedule's horizon does not fit the run (lrlab check).",
)
@click.pass_context
def run(
    ctx: click.Context,
    experiment: Path,
    out: Path | None,
    new: bool,
    engine: str | None,
    memory: str | None,
    quiet: bool,
    seeds: int | None = None,
    yes: bool = False,
    ray_address: str | None = None,
    ray_cpus: int | None = None,
    task_cpus: float = 1.0,
    task_gpus: float = 0.0,
    max_retries: int = 3,
    wide: bool = False,
    columns: str | None = None,
    strict: bool = False,
) -> None:
    """Run or resume EXPERIMENT (a TOML file); every trial goes to DIR/store.sqlite.

    Finished trials are skipped on a rerun; Ctrl-C (or SIGTERM) stops after storing what
    finished.
    """
    from lrlab.experiments.stopping import say_if_stopped

    process = process_of(ctx)
    stop = process.stop
    chosen = _columns(columns)
    with say_if_stopped():
        before_jax(process if ray_address is None else process.not_owned())
        from lrlab.experiments.memory import parse_memory
        from lrlab.experiments.runner import run_experiment, run_on_ray

        stop.check()  # a signal whose exception an import swallowed

    options = {"memory": parse_memory(memory) if memory is not None else None}
    if ray_address is not None:  # trials as Ray tasks (lrlab.experiments.engines.ray)
        summary = run_on_ray(
            experiment,
            address=None if ray_address == "local" else ray_address,
            out=out,
            new=new,
            engine=engine,
            quiet=quiet,
            num_cpus=ray_cpus,
            task_cpus=task_cpus,
            task_gpus=task_gpus,
            max_retries=max_retries,
            engine_options=options,
            seeds=seeds,
            yes=yes,
            strict=strict,
            stop=stop,
        )
    else:
        summary = run_experiment(
            experiment,
            out=out,
            new=new,
            engine=engine,
            quiet=quiet,
            engine_options=options,
            seeds=seeds,
            yes=yes,
            strict=strict,
            stop=stop,
        )
    done = summary.total - summary.counts.get("failed", 0)  # a stop while printing the table
    with say_if_stopped(
        f"stopped: {done} of {summary.total} trials are stored in {summary.out}; "
        "run the same command to resume"
    ):
        from lrlab.reporting.tables import print_results  # after the run: a refusal comes first

        table = _looked_at(summary.out)
        print_results(table, columns=chosen, wide=wide)
        _print_grow_command(table, summary.out, experiment)
        stop.check()  # a stop whose exception a finalizer or an import swallowed


def _print_grow_command(table, directory: Path, experiment: Path | None = None) -> None:
    """When the verdict (the two best, or a config against the baseline) is not yet clear
    and more seeds would tell: the command that grows the experiment to that many."""
    from lrlab.experiments.growth import grow_command

    wanted = [row.seeds_needed or 0 for row in table if row.better is None]
    top = getattr(table.comparison, "best_vs_runner_up", None)
    if top is not None and top.winner is None:
        wanted.append(top.seeds_needed or 0)
    needed = min(max(wanted, default=0), 10_000)
    if needed > max((row.n for row in table), default=0):
        click.echo(f"to add seeds: {grow_command(directory, needed, experiment)}")


def _columns(text: str | None) -> list[str] | None:
    """``--columns`` checked before any work (one line naming the unknown column)."""
    from lrlab.reporting.tables import parse_columns

    try:
        return parse_columns(text) if text is not None else None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--columns") from None


def _looked_at(directory: Path, metric: str | None = None, baseline: str | None = None):
    """The results table, counted as a look (:meth:`Store.record_look`) once it is built:
    a refused report (an unknown metric) is no look."""
    from lrlab.analysis.results import results_from_store
    from lrlab.experiments.store import Store

    with Store.open_read_only(directory) as store:
        looks = store.record_look(dry_run=True)
    table = results_from_store(directory, metric=metric, baseline=baseline, looks=looks)
    path = Store.file_in(directory)
    if os.access(directory, os.W_OK) and os.access(path, os.W_OK) and not path.is_symlink():
        with Store.open(directory) as store:
            store.record_look()
    # a store on read-only media (or behind a link) cannot count this look; its verdicts
    # count it anyway (above)
    return table


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"))
def runs(folder: Path) -> None:
    """The experiments under FOLDER (default: runs): trials done, status, best config.

    Read from their stores alone (read-only): status is running while an 'lrlab run'
    holds the folder's lock, complete when every planned trial is stored, else partial.
    """
    from lrlab.analysis.runs import list_runs
    from lrlab.reporting.runs import runs_text

    if not folder.is_dir():
        raise LrlabError(f"{folder}: no such folder; give the folder that holds your runs")
    found = list_runs(folder)
    if not found:
        click.echo(f"no lrlab experiment under {folder} (run 'lrlab run EXPERIMENT.toml')")
        return
    click.echo(runs_text(found))


@cli.command()
@click.argument(
    "directories", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--metric", default=None, help="Compare this stored metric (default: the file's).")
@click.option("--baseline", default=None, help="Compare with this config (default: the file's).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the self-contained HTML report (figures, table, verdict) to this file.",
)
@click.option(
    "--png",
    "png_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the report's figures as PNG files into this folder.",
)
@_table_options
def report(
    directories: tuple[Path, ...],
    metric: str | None,
    baseline: str | None,
    fmt: str,
    html_path: Path | None = None,
    png_dir: Path | None = None,
    wide: bool = False,
    columns: str | None = None,
) -> None:
    """The results table of the experiment in DIRECTORY, best first.

    The table shows the columns that fit 100 terminal columns; --wide shows all of them,
    --columns the ones named. A report (any format) counts as a look at the results (two or more:
    the verdict is the anytime-valid test's).

    With several folders (DIR1 DIR2 ...): one table over their configs (FOLDER/config),
    paired by seed, when they trained on the same data with the same data settings and
    store the metric; else one line saying why they cannot be compared (not a look).
    """
    from lrlab.analysis.runs import refuse_folders_of_experiments

    chosen = _columns(columns)
    directory = directories[0]
    refuse_folders_of_experiments(directories)
    if len(directories) > 1:
        if html_path is not None or png_dir is not None or baseline is not None:
            raise LrlabError("--html, --png and --baseline take one experiment folder")
        from lrlab.analysis.across import results_across

        table = results_across(list(directories), metric=metric)
    else:
        table = _looked_at(directory, metric, baseline)
    if fmt == "table":
        from lrlab.reporting.tables import print_results

        print_results(table, columns=chosen, wide=wide)
        _print_grow_command(table, directory)
    elif fmt == "markdown":
        from lrlab.reporting.tables import results_markdown

        click.echo(results_markdown(table), nl=False)
    elif fmt == "json":
        from lrlab.experiments.export import json_ready

        click.echo(json.dumps(json_ready(table.to_dicts()), indent=2, allow_nan=False))
    if html_path is not None or png_dir is not None:  # lrlab.reporting.html
        import shlex

        from lrlab.reporting.html import write_report

        argv = sys.argv[1:]
        command = shlex.join(["lrlab", *argv]) if argv[:1] == ["report"] else None
        for path in write_report(
            directory,
            html_path=html_path,
            png_dir=png_dir,
            metric=metric,
            baseline=baseline,
            command=command,
            table=table,
        ):
            click.echo(f"wrote {path}", err=True)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: stdout).",
)
@click.option("--epochs", is_flag=True, help="CSV: one row per trial and epoch.")
@click.option(
    "--all", "every", is_flag=True, help="Also the trials of configs removed from the file."
)
def export(directory: Path, fmt: str, output: Path | None, epochs: bool, every: bool) -> None:
    """Every trial of the experiment in DIRECTORY as CSV or JSON."""
    from lrlab.experiments.export import export_trials

    text = export_trials(directory, fmt, epochs=epochs, every=every)
    if output is None:
        click.echo(text, nl=False)
        return
    from lrlab.fileio import write_atomic

    write_atomic(output, text)
    click.echo(f"wrote {output}", err=True)


@cli.command("find-lr")
@click.argument("experiment", type=click.Path(exists=True, path_type=Path))
@click.option("--config", "config_label", default=None, help="Config to test (default: baseline).")
@click.option("--seed", type=int, default=0, show_default=True, help="Split, init and order seed.")
@click.option(
    "--start", type=click.FloatRange(min=0, min_open=True), default=1e-7, show_default=True
)
@click.option("--end", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True)
@click.option("--steps", type=click.IntRange(min=3), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Default: the file's.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG of loss vs lr (default: next to the experiment, <name>-find-lr.png).",
)
@click.option(
    "--write",
    is_flag=True,
    help="Put the suggested lrs into the experiment file's [experiment] lrs (diff shown).",
)
def find_lr_cmd(
    experiment: Path,
    config_label: str | None,
    seed: int,
    start: float,
    end: float,
    steps: int,
    batch_size: int | None,
    output: Path | None,
    write: bool = False,
) -> None:
    """LR range test on the model, data and optimizer of EXPERIMENT (a TOML file or a folder).

    Ramps the lr from --start to --end over --steps updates, plots the loss against the lr
    (log axis) with the suggestion marked, and prints the suggested lr. With --write, the
    suggestions (min / 10 and steepest) become the file's lrs: the diff is printed, then
    the file is rewritten (only that value changes; comments stay).
    """
    from lrlab.experiments.config_edit import set_experiment_lrs
    from lrlab.experiments.find_lr import read_experiment_text, run_range_test
    from lrlab.reporting.figures import save_png
    from lrlab.reporting.find_lr import range_test_figure

    if write:  # refuse before the test runs: a folder, or a file the edit cannot handle
        if experiment.is_dir():
            raise LrlabError("--write needs the experiment's TOML file, not its folder")
        text = read_experiment_text(experiment)
        set_experiment_lrs(text, [1.0], str(experiment))

    run = run_range_test(
        experiment,
        config=config_label,
        seed=seed,
        start=start,
        end=end,
        steps=steps,
        batch_size=batch_size,
    )
    if output is None:  # next to the experiment: beside its file, or inside its folder
        name = experiment.resolve().name.removesuffix(".toml") + "-find-lr.png"
        output = experiment / name if experiment.is_dir() else experiment.with_name(name)
    save_png(range_test_figure(run), output)
    test = run.test
    if test.suggestion is None:
        click.echo("no suggestion: the loss did not fall over the ramp; widen --start/--end")
    else:
        click.echo(f"suggested lr: {test.suggestion:.3g}")
    for name, value in (("steepest", test.steepest), ("min / 10", test.min_over_10)):
        if value is not None:
            click.echo(f"  {name}: {value:.3g}")
    if test.stopped_early:
        click.echo(f"  (stopped after {len(test.lrs)} updates: the loss diverged)")
    click.echo(f"wrote {output}", err=True)
    if write:
        _write_lrs(experiment, text, run.suggested_lrs)


def _write_lrs(experiment: Path, text: str, lrs: list[float]) -> None:
    """The diff of ``lrs = ...`` in the experiment file on stdout, then the file rewritten."""
    from lrlab.experiments.config_edit import format_lrs
    from lrlab.experiments.find_lr import lrs_edit
    from lrlab.fileio import write_atomic

    edited, diff = lrs_edit(experiment, text, lrs)
    click.echo(diff, nl=False)
    if edited != text:
        write_atomic(experiment, edited)
    click.echo(f"wrote lrs = {format_lrs(lrs)} into {experiment}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one message and exit 2, and
    SIGINT/SIGTERM into ``lrlab: interrupted (SIG...)`` and exit 128 + the signal."""
    from lrlab.experiments.stopping import StopRequest

    stop = StopRequest().install()  # first: a signal during the imports below is a stop
    if argv is None:  # lrlab is the process (the console script, python -m lrlab.cli)
        collect_less_often()
    try:
        process = LrlabProcess(stop, owned=argv is None)
        code = cli.main(args=argv, prog_name="lrlab", standalone_mode=False, obj=process)
        stop.check()  # a stop whose exception was swallowed, e.g. by a finalizer
    except (click.exceptions.Abort, KeyboardInterrupt):
        return interrupted(stop)
    except click.ClickException as err:
        hint = ""
        if err.ctx is not None and isinstance(err, click.UsageError):
            hint = f" (see '{err.ctx.command_path} --help')"
        click.echo(f"lrlab: error: {err.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except LrlabError as err:
        click.echo(f"lrlab: error: {err}", err=True)
        return EXIT_USAGE
    finally:
        stop.uninstall()
        if argv is None:
            before_exit()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
