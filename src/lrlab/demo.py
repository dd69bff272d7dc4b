"""``make demo``: the seed tutorials' schedules compared on real data over 10 seeds.

Offline (scikit-learn's breast cancer data), through the same runner and store as
``lrlab run``: an MLP 30 -> Dense(34, relu) -> Dense(1, sigmoid) trained with SGD
(momentum 0.8) for 50 epochs under each schedule of :data:`lrlab.tutorials.SEED_SCHEDULES`
(written per epoch, as the tutorials do). Writes to the output folder:

- ``store.sqlite``: every trial (rerunning the demo resumes; nothing is retrained);
- ``results.md``: the results table (mean +- std, 95% interval, paired comparison with
  the constant lr, ranking) and ``trials.csv``: every trial;
- ``seed_schedules.png``: the lr curves, ``val_accuracy.png``: validation accuracy per
  epoch (mean over seeds with a +-1 std band) for every schedule;
- ``report.html``: the self-contained report (:mod:`lrlab.reporting.html`).
"""

from __future__ import annotations

from pathlib import Path

from lrlab.errors import LrlabError
from lrlab.tutorials import SEED_SCHEDULES

EPOCHS = 50
SEEDS = 10


def demo_config() -> dict:
    """The demo experiment, as the dict an experiment file would parse to."""
    return {
        "experiment": {
            "name": "lrlab demo: the seed tutorials' schedules on breast cancer",
            "seeds": SEEDS,
            "metric": "val_accuracy",
            "baseline": "constant",
        },
        "data": {"dataset": "breast_cancer", "validation": 0.33},
        "model": {"spec": 'mlp(hidden=[34], activation="relu")'},
        "training": {
            "epochs": EPOCHS,
            "batch_size": 28,
            "schedule_unit": "epoch",
            "metrics": ["accuracy"],
        },
        "optimizers": {"sgd": {"type": "sgd", "momentum": 0.8}},
        "schedules": dict(SEED_SCHEDULES),
    }


def run_demo(output: Path) -> None:
    from lrlab.analysis.results import results_from_store
    from lrlab.experiments.config import config_from_dict
    from lrlab.experiments.export import export_trials
    from lrlab.experiments.plan import build_plan
    from lrlab.experiments.runner import run_plan
    from lrlab.experiments.store import Store
    from lrlab.fileio import write_atomic
    from lrlab.reporting.plots import plot_schedules
    from lrlab.reporting.tables import curve_table, print_results, results_markdown
    from lrlab.spec import parse

    output = Path(output)
    if output.exists() and not output.is_dir():  # before anything trains or is drawn
        raise LrlabError(f"{output} is not a folder; give a folder to --output")
    curves = {label: parse(spec).curve(EPOCHS) for label, spec in SEED_SCHEDULES.items()}
    curve_table(
        curves, rows=range(0, EPOCHS, 5), title="Seed tutorial schedules (lr per epoch)"
    ).print()
    written = [
        plot_schedules(
            {f"{label}: {spec}": parse(spec) for label, spec in SEED_SCHEDULES.items()},
            EPOCHS,
            output / "seed_schedules.png",
            title="Seed tutorial schedules",
            xlabel="epoch",
        )
    ]

    config = config_from_dict(demo_config(), source="lrlab demo")
    plan = build_plan(config)
    new = False
    if Store.exists_in(output):
        with Store.open(output) as store:
            new = store.meta().get("config_hash") != plan.hash  # the demo changed: start over
    run_plan(plan, out=output, new=new)

    table = results_from_store(output)
    print_results(table)
    written += [
        write_atomic(output / "results.md", f"# {table.title}\n\n{results_markdown(table)}"),
        write_atomic(output / "trials.csv", export_trials(output, "csv")),
    ]
    written.append(plot_metric_curves(output, "val_accuracy", output / "val_accuracy.png"))
    from lrlab.reporting.html import write_report

    written += write_report(output, html_path=output / "report.html", command="lrlab demo")
    best = table.best
    print(
        f"highest mean: {best.config} ({table.metric} {best.mean:.4f} ± {best.std:.4f}, "
        f"n={best.n}); vs {table.baseline}: Δ {best.diff:+.4f}, "
        f"p (Wilcoxon) {best.p_wilcoxon:.3g}"
        if not best.is_baseline
        else f"highest mean: the baseline {best.config} ({table.metric} {best.mean:.4f})"
    )
    for path in written:
        print(f"wrote {path}")


def plot_metric_curves(directory: Path, metric: str, output: Path) -> Path:
    """Mean ``metric`` per epoch over seeds, with a +-1 std band, one line per config."""
    import numpy as np
    from matplotlib.figure import Figure

    from lrlab.experiments.store import Store
    from lrlab.reporting.figures import save_png

    with Store.open_read_only(directory) as store:
        labels = store.meta().get("labels", [])
        trials = store.trials("ok")
        epochs = store.epochs()
    fig = Figure(figsize=(10, 5), dpi=110)
    ax = fig.add_subplot()
    for label in labels:
        rows = [epochs[t.key] for t in trials if t.config == label and t.key in epochs]
        if not rows:
            continue
        n = min(len(r) for r in rows)
        values = np.array([[e.get(metric, np.nan) for e in r[:n]] for r in rows])
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        x = np.arange(1, n + 1)
        (line,) = ax.plot(x, mean, label=f"{label} (n={len(rows)})", linewidth=1.4)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.12)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch: mean over seeds, band ±1 std")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return save_png(fig, output, dpi=fig.dpi)
