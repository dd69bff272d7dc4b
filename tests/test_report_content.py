"""The report's figures and HTML, built from a store written through the store's own API.

The store holds a known experiment: a sweep of four schedules (a constant one, one named
like an injection, one in epochs, one with a plateau) at two peak lrs over three seeds, with one
diverged and one failed trial. The figures are checked for what they draw (labels, number
of lines, the values of the lines), the page for its sections, its escaping and for
loading nothing from the network. The browser test is in test_report_browser.py.
"""

from __future__ import annotations

import base64
import html.parser
import io
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from lrlab.experiments.store import Store
from lrlab.experiments.trial import OptimizerSettings, Trial, TrialResult
from lrlab.reporting.data import load_report_data
from lrlab.reporting.figures import (
    curves_figure,
    experiment_figures,
    final_figure,
    lr_figure,
    sweep_figure,
)
from lrlab.reporting.html import SECTIONS, render_report, write_report
from lrlab.spec import parse

EVIL = "<script>alert(1)</script>"
EPOCHS, SPE, SEEDS = 5, 4, (0, 1, 2)
SCHEDULES = {  # label: (spec at peak 0.1, unit, plateau)
    "constant": ("constant(0.1)", "step", None),
    EVIL: ("cosine(0.1, decay_steps=20)", "step", None),
    "step$ _x": ("step_decay(0.1, drop=0.5, every=2)", "epoch", None),
    "plateau": ("constant(0.1)", "step", "plateau(factor=0.5, patience=1)"),
}
PLATEAU_FROM = 3  # the made-up plateau controller halves the lr from this epoch on
LRS = (0.01, 0.1)
DIVERGED = (f"{EVIL} / lr=0.1", 2)  # config, seed
FAILED = ("constant / lr=0.01", 1)
CONFIG_TEXT = f'[experiment]\nname = "sweep {EVIL}"\n[schedules]\nevil = "{EVIL}"\n'


def _spec(base: str, lr: float) -> str:
    return base if lr == 0.1 else str(parse(f"scale({lr / 0.1:.15g}, {base})"))


def _quality(config_index: int, seed: int, epoch: int) -> float:
    """A made-up learning curve: each config and seed converges to its own level."""
    return 0.6 + 0.3 * (1 - math.exp(-epoch / 2)) - 0.02 * config_index + 0.01 * seed


def _trial(label, sched, spec, unit, plateau, lr, seed) -> Trial:
    return Trial(
        key=f"{label}|seed={seed}",
        config=label,
        schedule_label=sched,
        schedule=parse(spec),
        plateau=parse(plateau) if plateau else None,
        monitor="val_loss",
        optimizer_label="sgd",
        optimizer=OptimizerSettings.from_dict({"type": "sgd"}),
        lr=lr,
        seed=seed,
        split_seed=seed,
        init_seed=seed,
        order_seed=seed,
        unit=unit,
    )


def build_store(directory, *, sweep: bool = True, planned_extra: int = 0) -> list[str]:
    """Write the known experiment into ``directory``; return the config labels."""
    configs = []
    for sched, (base, unit, plateau) in SCHEDULES.items():
        for lr in LRS if sweep else (0.1,):
            label = f"{sched} / lr={lr:g}" if sweep else sched
            configs.append((label, sched, _spec(base, lr), unit, plateau, lr if sweep else None))
    labels = [c[0] for c in configs]
    with Store.open(directory, create=True) as store:
        store.initialize(
            {
                "config_hash": "0" * 64,
                "config_text": CONFIG_TEXT,
                "config_source": "exp.toml",
                "title": f"sweep {EVIL}",
                "metric": "val_accuracy",
                "baseline": labels[0],
                "labels": labels,
                "planned": len(labels) * len(SEEDS) + planned_extra,
                "dataset": {"name": "toy", "rows": 100, "task": "binary", "classes": ["a", "b"]},
                "steps_per_epoch": SPE,
                "canonical": {"training": {"epochs": EPOCHS}},
                "command": "/venv/bin/lrlab run exp.toml --out runs/x",
                "versions": {"python": "3.11", "keras": "3.15.1"},
            }
        )
        for seed in SEEDS:
            for i, (label, sched, spec, unit, plateau, lr) in enumerate(configs):
                t = _trial(label, sched, spec, unit, plateau, lr, seed)
                if (label, seed) == FAILED:
                    store.add(TrialResult(t, "failed", message="ValueError: <b>boom</b>"))
                    continue
                curve = parse(spec).curve(EPOCHS * SPE)
                rows = []
                for e in range(1, EPOCHS + 1):
                    q = _quality(i, seed, e)
                    step = e - 1 if unit == "epoch" else e * SPE - 1
                    lr_used = parse(spec).curve(EPOCHS)[step] if unit == "epoch" else curve[step]
                    if plateau and e >= PLATEAU_FROM:
                        lr_used *= 0.5
                    rows.append(
                        {
                            "epoch": e,
                            "lr": float(lr_used),
                            "loss": 1 - q,
                            "val_loss": 1.05 - q,
                            "accuracy": q + 0.03,
                            "val_accuracy": q,
                        }
                    )
                status, diverged_epoch = "ok", None
                if (label, seed) == DIVERGED:
                    rows = rows[:3]
                    rows[-1]["loss"] = rows[-1]["val_loss"] = math.nan
                    status, diverged_epoch = "diverged", 3
                final = {k: v for k, v in rows[-1].items() if k not in ("epoch", "lr")}
                final["train_val_gap"] = final["accuracy"] - final["val_accuracy"]
                store.add(
                    TrialResult(
                        t,
                        status,
                        rows,
                        final if status == "ok" else {},
                        diverged_epoch,
                        started=1.7e9 + seed,
                        seconds=2.0,
                        engine="keras",
                    ),
                    {"python": "3.11", "keras": "3.15.1"},
                )
    return labels


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    build_store(d)
    return d


@pytest.fixture(scope="module")
def data(store_dir):
    return load_report_data(store_dir)


@pytest.fixture(scope="module")
def page(data):
    return render_report(data)


def lines(ax, prefix):
    return {
        ln.get_gid().split(":", 1)[1]: ln
        for ln in ax.get_lines()
        if ln.get_gid() and ln.get_gid().startswith(prefix + ":")
    }


# --------------------------------------------------------------------------- data
def test_data_reads_the_store(data):
    assert data.is_sweep and data.metric == "val_accuracy"
    assert len(data.labels) == 8 and data.epoch_keys == [
        "loss",
        "val_loss",
        "accuracy",
        "val_accuracy",
    ]
    assert [c.label for c in data.curves] == [
        "constant / lr=0.01",
        "constant / lr=0.1",
        f"{EVIL} / lr=0.01",
        f"{EVIL} / lr=0.1",
        "step$ _x / lr=0.01",
        "step$ _x / lr=0.1",
        "plateau / lr=0.01",
        "plateau / lr=0.1",
    ]
    assert data.curves[-1].plateau == "plateau(factor=0.5, patience=1)"
    assert data.final_values("val_accuracy", DIVERGED[0]).keys() == {0, 1}
    assert data.final_values("val_accuracy", FAILED[0]).keys() == {0, 2}


# --------------------------------------------------------------------------- figures
def test_lr_figure_draws_every_schedule_as_trained(data):
    fig = lr_figure(data)
    ax = fig.axes[0]
    curves = lines(ax, "curve")
    assert set(curves) == {c.label for c in data.curves}
    assert ax.get_xlabel() == "optimizer update (step)"
    assert ax.get_yscale() == "log"  # 0.0005 .. 0.1 spans more than 50x
    assert ax.get_ylabel() == "learning rate (log)"
    np.testing.assert_allclose(curves["constant / lr=0.01"].get_ydata(), 0.01)
    step = curves["step$ _x / lr=0.1"].get_ydata()  # in epochs: constant within an epoch
    np.testing.assert_allclose(step[:SPE], 0.1)
    np.testing.assert_allclose(step[2 * SPE : 4 * SPE], 0.05)
    cosine = curves[f"{EVIL} / lr=0.1"].get_ydata()
    np.testing.assert_allclose(cosine, parse("cosine(0.1, decay_steps=20)").curve(20))
    # the recorded lr sits on the curve at each epoch's last update
    dots = lines(ax, "recorded")[f"{EVIL} / lr=0.1"]
    np.testing.assert_array_equal(dots.get_xdata(), np.arange(1, EPOCHS + 1) * SPE - 1)
    np.testing.assert_allclose(dots.get_ydata(), cosine[dots.get_xdata()], rtol=1e-6)
    # a plateau config: the schedule's line, and the lower lr the controller recorded
    flat = curves["plateau / lr=0.1"].get_ydata()
    np.testing.assert_allclose(flat, 0.1)
    recorded = lines(ax, "recorded")["plateau / lr=0.1"].get_ydata()
    np.testing.assert_allclose(recorded, [0.1] * (PLATEAU_FROM - 1) + [0.05] * 3)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"{EVIL} / lr=0.1" in texts and "step\\$ _x / lr=0.1" in texts
    assert "plateau / lr=0.1 (+ plateau)" in texts
    assert len(texts) == len(data.curves) + 1


def test_curves_figure_means_and_bands_over_seeds(data):
    fig = curves_figure(data)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "training loss",
        "validation loss",
        "training accuracy",
        "validation accuracy",
    ]
    for ax in fig.axes:
        assert len(lines(ax, "mean")) == 8
        assert len(ax.collections) == 8  # one band per config
    assert [ax.get_xlabel() for ax in fig.axes[2:]] == ["epoch", "epoch"]
    val_acc = lines(fig.axes[3], "mean")
    i = 1  # "constant / lr=0.1": every seed ok
    expected = [np.mean([_quality(i, s, e) for s in SEEDS]) for e in range(1, EPOCHS + 1)]
    np.testing.assert_allclose(val_acc["constant / lr=0.1"].get_ydata(), expected)
    # the failed seed 1 is left out of its config's mean
    expected = [np.mean([_quality(0, s, e) for s in (0, 2)]) for e in range(1, EPOCHS + 1)]
    np.testing.assert_allclose(val_acc["constant / lr=0.01"].get_ydata(), expected)
    band = fig.axes[3].collections[1].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(_quality(1, 0, 1)) and band.max() == pytest.approx(
        _quality(1, 2, EPOCHS)
    )


def test_final_figure_shows_every_seed_and_the_interval(data):
    fig = final_figure(data)
    ax = fig.axes[0]
    table = data.table
    assert [t.get_text() for t in ax.get_yticklabels()][0].endswith("(baseline)") is (
        table[0].is_baseline
    )
    assert len(ax.get_yticklabels()) == len(table)
    seeds = {c.get_gid().split(":", 1)[1]: c for c in ax.collections if c.get_gid()}
    for row in table:
        dots = seeds[row.config].get_offsets()
        assert len(dots) == row.n
        assert sorted(dots[:, 0]) == pytest.approx(
            sorted(data.final_values("val_accuracy", row.config).values())
        )
        interval = lines(ax, "interval")[row.config]
        assert tuple(interval.get_xdata()) == pytest.approx((row.ci_low, row.ci_high))
    assert ax.get_xlabel() == "final val_accuracy (higher is better)"
    notes = [t.get_text() for t in ax.texts]
    assert "n=2, 1 diverged" in notes and "n=2, 1 failed" in notes


def test_sweep_figure_metric_and_gap_vs_lr(data):
    fig = sweep_figure(data)
    ax, gap = fig.axes
    assert ax.get_xscale() == gap.get_xscale() == "log"
    assert ax.get_xlabel() == "peak learning rate (log axis)"
    assert ax.get_ylabel() == "final accuracy"
    assert gap.get_ylabel() == "gap: training − validation accuracy"
    val = lines(ax, "val")
    assert set(val) == set(SCHEDULES)
    assert len(lines(ax, "train")) == 4 and len(lines(gap, "gap")) == 4
    np.testing.assert_allclose(val["constant"].get_xdata(), LRS)
    at_01 = np.mean([_quality(1, s, EPOCHS) for s in SEEDS])
    assert val["constant"].get_ydata()[1] == pytest.approx(at_01)
    np.testing.assert_allclose(lines(gap, "gap")["constant"].get_ydata(), 0.03)
    assert "1×" in [t.get_text() for t in ax.texts]  # the diverged trial at lr=0.1


def test_no_sweep_no_sweep_figure(tmp_path):
    build_store(tmp_path, sweep=False)
    data = load_report_data(tmp_path)
    assert not data.is_sweep and sweep_figure(data) is None
    assert [f.name for f in experiment_figures(data)] == ["final", "ranks", "schedules", "curves"]
    page = render_report(data)
    assert 'id="sweep"' not in page and 'href="#sweep"' not in page


# --------------------------------------------------------------------------- the page
class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_page_sections_figures_and_escaping(page, data):
    parser = _Tags()
    parser.feed(page)
    tags = parser.tags
    sections = [a["id"] for t, a in tags if t == "section"]
    assert sections == list(SECTIONS)
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    images = [a for t, a in tags if t == "img"]
    figures = experiment_figures(data)
    # no rank diagram: the failed and diverged seeds leave one seed with every config
    assert [f.name for f in figures] == ["final", "sweep", "schedules", "curves"]
    assert len(images) == len(figures)
    for img in images:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        from PIL import Image

        assert Image.open(io.BytesIO(png)).size == (int(img["width"]), int(img["height"]))
    # nothing user-supplied arrives as markup
    assert "<script" not in page and "<b>boom" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "ValueError: &lt;b&gt;boom&lt;/b&gt;" in page
    assert "<title>sweep &lt;script&gt;alert(1)&lt;/script&gt; · lrlab report</title>" in page
    # self-contained: a CSP that loads nothing, no URL to fetch
    assert "default-src 'none'; img-src data:" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    urls = [a.get("src", a.get("href", "")) for _, a in tags]
    assert all(u.startswith(("data:", "#")) or not u for u in urls)
    assert not re.search(r"url\(|@import|https?://", page)


def test_page_holds_table_verdicts_and_reproduction(page, data):
    for row in data.table:
        assert f'<td class="text">{row.config.replace("<", "&lt;").replace(">", "&gt;")}' in page
    verdict = getattr(data.table, "verdict", "")
    if verdict:  # the honest comparison is attached to the table
        assert 'id="verdict"' in page
    assert "2 trials did not finish: 1 diverged, 1 failed" in page
    assert "lrlab run exp.toml --out " in page  # the command that reruns it
    assert "lrlab run exp.toml --out runs/x" in page  # the recorded one, program shortened
    assert "name = &quot;sweep &lt;script&gt;" in page  # the experiment file, escaped
    assert '<td class="text">keras</td><td>3.15.1</td>' in page
    assert "trials ran" in page and "2023-11-14" in page


def test_incomplete_experiment_says_so(tmp_path):
    build_store(tmp_path, sweep=False, planned_extra=3)
    page = render_report(load_report_data(tmp_path))
    assert "12 of 15 planned trials are finished" in page


def test_rows_are_best_first_and_marked(page, data):
    ranked = data.ranked
    positions = [page.index(html_escape(c) + "</td>") for c in ranked]
    assert positions == sorted(positions)
    assert page.count('<tr class="best') == 1


def html_escape(text: str) -> str:
    import html as _html

    return _html.escape(text, quote=True)


# --------------------------------------------------------------------------- files and CLI
def lrlab(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "lrlab.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_write_report_html_and_pngs(store_dir, tmp_path):
    written = write_report(store_dir, html_path=tmp_path / "r.html", png_dir=tmp_path / "png")
    names = sorted(p.name for p in written)
    assert names == ["curves.png", "final.png", "r.html", "schedules.png", "sweep.png"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_cli_report_html_png(store_dir, tmp_path):
    out = tmp_path / "report.html"
    r = lrlab("report", store_dir, "--html", out, "--png", tmp_path / "figs")
    assert r.returncode == 0, r.stderr
    assert "val_accuracy" in r.stdout  # the table is still printed
    assert f"wrote {out}" in r.stderr
    assert out.read_text().count("<img ") == 4
    assert len(list((tmp_path / "figs").glob("*.png"))) == 4
    assert f"lrlab report {store_dir} --html {out}" in out.read_text()  # how to rebuild it


@pytest.mark.parametrize(
    "args",
    [
        ("report", "{tmp}/nothing-here", "--html", "{tmp}/bad.html"),
        ("report", "{store}", "--metric", "nope", "--html", "{tmp}/bad.html"),
        ("report", "{store}", "--baseline", "nope", "--png", "{tmp}/nopng"),
    ],
)
def test_cli_report_bad_input(args, store_dir, tmp_path, capsys):
    """One line, exit 2, nothing written (main() is the console script's entry point)."""
    from lrlab.cli import main

    code = main([a.format(tmp=tmp_path, store=store_dir) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lrlab: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "bad.html").exists() and not (tmp_path / "nopng").exists()
