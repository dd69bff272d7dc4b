"""One self-contained HTML page per experiment, built from its store alone.

``lrlab report DIR --html report.html`` writes it; ``--png OUTDIR`` writes the figures
alone. The page holds, in this order:

- the title, what was compared and the verdict in plain language (when the results
  table carries the comparison of :mod:`lrlab.analysis.comparisons`);
- **results**: the results table best first with the baseline comparison, the final
  metric per config (every seed a dot, the interval), the rank diagram, every config's
  sentence against the baseline (folded), trials that diverged or failed with their
  messages (folded);
- **sweep** (an lr sweep only): the metric against the lr, with the train/validation gap;
- **schedules**: the lr-vs-step curve of every schedule, and their specs; the horizon
  findings stored by ``lrlab run`` (a schedule that ends early, never finishes, restarts
  late or counts the wrong unit);
- **curves**: training and validation loss and metrics per epoch, mean and band over seeds;
- **reproduce**: the command that reruns the experiment, the experiment file as written,
  library versions, dates and the store it was built from.

The page needs no network and runs no script: figures are PNGs embedded as ``data:``
URIs, the CSS is inline, and a Content-Security-Policy (``default-src 'none'``) tells
the browser to load nothing else. Every string that comes from the user (experiment
title, config and schedule names, specs, the experiment file, error messages) goes
through :func:`html.escape`, so a schedule named ``<script>alert(1)</script>`` is text.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import shlex
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

from lrlab.analysis.results import ResultTable
from lrlab.fileio import write_atomic
from lrlab.reporting.data import ReportData, load_report_data
from lrlab.reporting.figures import FigureSpec, experiment_figures, figure_png
from lrlab.reporting.tables import results_cells, results_footnote

__all__ = ["SECTIONS", "render_report", "write_report"]

#: Section ids in page order (``sweep`` only for lr sweeps).
SECTIONS = ("results", "sweep", "schedules", "curves", "reproduce")
TITLES = {
    "results": "Results",
    "sweep": "Learning-rate sweep",
    "schedules": "Learning-rate schedules",
    "curves": "Training curves",
    "reproduce": "Reproduce",
}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
        --accent: #0969da; --warn: #9a6700; --bad: #cf222e; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff;
       font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
             Arial, sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 18px; }
header { padding-top: 18px; }
h1 { font-size: 1.65rem; line-height: 1.25; margin: .4rem 0 .3rem; overflow-wrap: anywhere; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
p, li { overflow-wrap: anywhere; }
.sub { color: var(--muted); margin: 0 0 .8rem; }
.verdict { margin: .8rem 0; padding: .7rem .9rem; border-left: 4px solid var(--accent);
           background: #ddf4ff55; border-radius: 0 6px 6px 0; }
.note { margin: .8rem 0; padding: .6rem .9rem; border-left: 4px solid var(--warn);
        background: #fff8c5; border-radius: 0 6px 6px 0; }
nav { display: flex; flex-wrap: wrap; gap: .4rem; margin: .6rem 0 0; }
nav a { padding: .2rem .7rem; border: 1px solid var(--line); border-radius: 999px;
        color: var(--accent); text-decoration: none; font-size: .9rem; }
figure { margin: 1.2rem 0; }
.fig { overflow-x: auto; -webkit-overflow-scrolling: touch; }
figure img { display: block; width: 100%; height: auto;
             border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .35rem; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: .6rem 0;
              border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: .86rem;
        font-variant-numeric: tabular-nums; }
th, td { padding: .4rem .6rem; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
tr:last-child td { border-bottom: none; }
th.text, td.text { text-align: left; white-space: normal; min-width: 9rem;
                   overflow-wrap: anywhere; }
tr.best td { font-weight: 600; }
tr.baseline td { background: var(--soft); }
td .better { color: #1a7f37; font-weight: 600; }
td .worse { color: var(--bad); font-weight: 600; }
.footnote { color: var(--muted); font-size: .85rem; }
ul.sentences { padding-left: 1.2rem; }
ul.sentences li { margin: .3rem 0; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
            font-size: .85rem; }
code { background: var(--soft); padding: .05rem .3rem; border-radius: 4px;
       overflow-wrap: anywhere; }
pre { background: var(--soft); padding: .8rem; border-radius: 6px; overflow-x: auto;
      border: 1px solid var(--line); }
pre code { background: none; padding: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
details { margin: .8rem 0; }
details summary { cursor: pointer; font-weight: 600; }
footer { color: var(--muted); font-size: .85rem; margin-top: 2.5rem; padding-bottom: 2rem; }
@media (max-width: 640px) {
  body { font-size: 15px; }
  header, main, footer { padding: 0 12px; }
  h1 { font-size: 1.35rem; }
  th, td { padding: .35rem .45rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: .4rem; }
}
@media print { nav { display: none; } .fig, .table-wrap { overflow: visible; } }
"""


def esc(value: object) -> str:
    """``value`` as HTML text (``& < > " '`` escaped, NUL characters dropped).

    >>> esc("<script>alert('x')</script>")
    '&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;'
    """
    return html.escape(str(value).replace("\x00", ""), quote=True)


# --------------------------------------------------------------------------- pieces
def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])


def _figure(spec: FigureSpec) -> str:
    png = figure_png(spec.figure)
    width, height = _png_size(png)
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="fig-{esc(spec.name)}"><div class="fig">'
        f'<img src="data:image/png;base64,{data}" width="{width}" height="{height}" '
        f'alt="{esc(spec.caption)}"></div>'
        f"<figcaption>{esc(spec.caption)}</figcaption></figure>"
    )


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    text_cols: set[int],
    row_classes: Sequence[str] | None = None,
) -> str:
    """An escaped table in a horizontally scrolling box; ``text_cols`` are left-aligned and
    wrap. The words ``better`` and ``worse`` in a cell are coloured."""

    def cls(i: int) -> str:
        return ' class="text"' if i in text_cols else ""

    def cell(value: str) -> str:
        text = esc(value)
        return f'<span class="{value}">{text}</span>' if value in ("better", "worse") else text

    out = ['<div class="table-wrap"><table><thead><tr>']
    out += [f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for r, row in enumerate(rows):
        klass = row_classes[r] if row_classes else ""
        out.append(f'<tr class="{klass}">' if klass else "<tr>")
        out += [f"<td{cls(i)}>{cell(c)}</td>" for i, c in enumerate(row)]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _facts(items: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items if v not in ("", None))
    return f'<dl class="facts">{body}</dl>'


def _utc(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- sections
def _header(data: ReportData) -> str:
    meta = data.meta
    dataset = meta.get("dataset") or {}
    configs, seeds = len(data.labels), len(data.seeds)
    better = "higher" if data.higher_is_better else "lower"
    sub = (
        f"Compares {configs} config{'s' if configs != 1 else ''} on "
        f"{dataset.get('name', 'the data')} over {seeds} seed{'s' if seeds != 1 else ''}: "
        f"{data.metric} ({better} is better) against the baseline {data.baseline}."
    )
    parts = [
        "<header>",
        '<p class="sub">lrlab experiment report</p>',
        f"<h1>{esc(data.title)}</h1>",
        f'<p class="sub">{esc(sub)}</p>',
    ]
    verdict = getattr(data.table, "verdict", "")
    if verdict:
        parts.append(f'<p class="verdict" id="verdict">{esc(verdict)}</p>')
    planned = int(meta.get("planned") or 0)
    done = sum(t.status in ("ok", "diverged") for t in data.trials)
    if planned and done < planned:
        parts.append(
            f'<p class="note">{done} of {planned} planned trials are finished; rerun the '
            "command under Reproduce to complete the experiment (finished trials are "
            "skipped).</p>"
        )
    links = [s for s in SECTIONS if s != "sweep" or data.is_sweep]
    parts.append(
        "<nav>" + "".join(f'<a href="#{s}">{esc(TITLES[s])}</a>' for s in links) + "</nav>"
    )
    parts.append("</header>")
    return "".join(parts)


def _results(data: ReportData, figures: list[FigureSpec]) -> str:
    table = data.table
    head, body = results_cells(table)
    out = [f'<section id="results"><h2>{TITLES["results"]}</h2>']
    if not table.rows:
        out.append("<p>No trials are stored yet.</p></section>")
        return "".join(out)
    text_cols = {head.index("config")} if "config" in head else {1}
    classes = [
        " ".join(c for c, on in (("best", r.rank == 1), ("baseline", r.is_baseline)) if on)
        for r in table.rows
    ]
    out.append(_table(head, body, text_cols, classes))
    out.append(f'<p class="footnote">{esc(_first_paragraph(results_footnote(table)))}</p>')
    out += [_figure(f) for f in figures if f.section == "results" and f.name == "final"]
    ranks = getattr(getattr(table, "comparison", None), "ranks", None)
    if ranks is not None:
        out.append(f"<p>{esc(ranks.sentence)}</p>")
    out += [_figure(f) for f in figures if f.section == "results" and f.name != "final"]
    sentences = [r.verdict for r in table.rows if getattr(r, "verdict", "")]
    if sentences:
        out.append(
            f'<details id="sentences"><summary>Each config against the baseline '
            f"({esc(data.baseline)}), in words</summary>"
            '<ul class="sentences">' + "".join(f"<li>{esc(s)}</li>" for s in sentences) + "</ul>"
            "</details>"
        )
    out.append(_problems(data))
    out.append("</section>")
    return "".join(out)


def _first_paragraph(text: str) -> str:
    """The footnote's definition of the columns (the verdict lines are shown on their own)."""
    return text.split("\n", 1)[0]


def _problems(data: ReportData) -> str:
    bad = [t for t in data.trials if t.status != "ok"]
    if not bad:
        return ""
    diverged = sum(t.status == "diverged" for t in bad)
    failed = len(bad) - diverged
    rows = [
        (
            t.config,
            str(t.seed),
            t.status,
            str(t.diverged_epoch) if t.diverged_epoch is not None else "",
            t.message or ("loss not finite" if t.status == "diverged" else ""),
        )
        for t in sorted(bad, key=lambda t: (data.labels.index(t.config), t.seed))
    ]
    summary = f"{len(bad)} trial{'s' if len(bad) != 1 else ''} did not finish: "
    summary += f"{diverged} diverged, {failed} failed"
    return (
        f'<details id="problems"><summary>{esc(summary)}</summary>'
        + _table(["config", "seed", "status", "epoch", "message"], rows, {0, 4})
        + '<p class="footnote">Diverged trials stopped at the first epoch with a non-finite '
        "loss; failed trials raised an error. Neither has a final value: the table counts "
        "them and leaves them out of the statistics.</p></details>"
    )


def _section(name: str, intro: str, figures: list[FigureSpec], extra: str = "") -> str:
    body = "".join(_figure(f) for f in figures if f.section == name)
    return f'<section id="{name}"><h2>{TITLES[name]}</h2><p>{esc(intro)}</p>{body}{extra}</section>'


def _schedules(data: ReportData, figures: list[FigureSpec]) -> str:
    rows = [
        (
            c.label,
            c.shown,
            c.unit,
            c.plateau or "",
            ", ".join(c.configs),
        )
        for c in data.curves
    ]
    table = _table(["schedule", "spec (as trained)", "unit", "plateau", "configs"], rows, {0, 1, 4})
    spe = data.steps_per_epoch
    intro = (
        f"{len(data.curves)} distinct learning-rate curves, {data.n_epochs} epochs of {spe} "
        "updates each. A schedule in steps changes the lr at every update; one in epochs "
        "holds it for a whole epoch."
    )
    return _section("schedules", intro, figures, table + _horizon_notes(data))


def _horizon_notes(data: ReportData) -> str:
    """The horizon findings stored at plan time (``meta["horizon"]``), one line each."""
    found = data.meta.get("horizon") or {}
    items = [
        f"<li><b>{esc(label)}</b>: {esc(f['message'])}</li>"
        for label, findings in found.items()
        for f in findings
    ]
    if not items:
        return ""
    return (
        '<div class="note" id="horizon"><p>Horizon check (<code>lrlab check</code>): a '
        "schedule's horizon does not fit the run.</p><ul>" + "".join(items) + "</ul></div>"
    )


def _sweep(data: ReportData, figures: list[FigureSpec]) -> str:
    if not data.is_sweep:
        return ""
    lrs = sorted({t.lr for t in data.trials if t.lr is not None})
    intro = (
        "Each schedule was rescaled to peak at each of the learning rates "
        + ", ".join(f"{lr:g}" for lr in lrs)
        + ". A small train/validation gap with a good validation score marks a good lr."
    )
    return _section("sweep", intro, figures)


def _curves(data: ReportData, figures: list[FigureSpec]) -> str:
    intro = (
        "Per epoch, the training metrics are averaged over the epoch's batches and the "
        "validation metrics measured at its end (Keras' History)."
    )
    return _section("curves", intro, figures)


def _command_line(recorded: str) -> str:
    """The recorded ``sys.argv`` with the program shortened to ``lrlab``."""
    parts = recorded.split(" ", 1)
    if parts and Path(parts[0]).name in ("lrlab", "__main__.py", "cli.py"):
        parts[0] = "lrlab"
    return " ".join(parts)


def _reproduce(data: ReportData, this_command: str | None) -> str:
    meta = data.meta
    source = str(meta.get("config_source") or "")
    folder = shlex.quote(str(data.directory))
    out = [f'<section id="reproduce"><h2>{TITLES["reproduce"]}</h2>']
    if source and source != "lrlab.compare":
        rerun = f"lrlab run {shlex.quote(source)} --out {folder}"
        out.append(
            "<p>Rerun the experiment (finished trials in the folder are skipped; use a new "
            "<code>--out</code> folder to train everything again):</p>"
        )
    else:
        rerun = ""
        out.append(
            "<p>This experiment was run from Python with <code>lrlab.compare(...)</code>; "
            "its arguments are below. Call it again with the same arguments to rerun it.</p>"
        )
    if rerun:
        out.append(f"<pre><code>{esc(rerun)}</code></pre>")
    report = this_command or f"lrlab report {folder} --html report.html"
    out.append(f"<p>Rebuild this page from the store:</p><pre><code>{esc(report)}</code></pre>")
    finished = [t for t in data.trials if t.seconds]
    facts = [
        ("recorded command", _command_line(str(meta.get("command") or ""))),
        ("store", str(_store_file(data))),
        ("config hash", str(meta.get("config_hash") or "")),
        ("store created", str(meta.get("created") or "").replace("+00:00", " UTC")),
    ]
    if data.trials:
        first = min(t.started for t in data.trials)
        last = max(t.started + t.seconds for t in data.trials)
        facts.append(("trials ran", f"{_utc(first)} to {_utc(last)}"))
        compute = sum(t.seconds for t in finished)
        facts.append(("training time", f"{compute / 60:.1f} min over {len(data.trials)} trials"))
        facts.append(("engine", ", ".join(sorted({t.engine for t in data.trials}))))
    dataset = meta.get("dataset") or {}
    if dataset:
        shape = "x".join(str(x) for x in dataset.get("input_shape", []))
        classes = dataset.get("classes") or []
        facts.append(
            (
                "data",
                f"{dataset.get('name')}: {dataset.get('rows')} rows of shape ({shape}), "
                f"{dataset.get('task')}" + (f", {len(classes)} classes" if classes else ""),
            )
        )
    facts.append(("report made", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")))
    out.append(_facts(facts))
    text = str(meta.get("config_text") or "")
    name = Path(source).name if source and source != "lrlab.compare" else "lrlab.compare"
    out.append(f"<h3>The experiment file: {esc(name)}</h3>")
    out.append(f"<pre><code>{esc(text) if text else '(not stored)'}</code></pre>")
    out.append("<h3>Library versions</h3>")
    versions = dict(meta.get("versions") or {})
    out.append(_table(["library", "version"], sorted(versions.items()), {0}))
    others = {tuple(sorted(t.versions.items())) for t in data.trials if t.versions}
    others.discard(tuple(sorted(versions.items())))
    if others:
        out.append(
            f'<p class="note">{len(others)} other set(s) of library versions ran some '
            "trials (a resumed run on another machine or after an upgrade); each trial's "
            "versions are in <code>lrlab export</code>.</p>"
        )
    out.append("</section>")
    return "".join(out)


def _store_file(data: ReportData) -> Path:
    from lrlab.experiments.store import Store

    return Store.file_in(data.directory)


# --------------------------------------------------------------------------- page
def render_report(
    data: ReportData,
    figures: list[FigureSpec] | None = None,
    *,
    command: str | None = None,
) -> str:
    """The report page of ``data`` as one HTML string (see the module docstring).

    ``figures`` defaults to :func:`~lrlab.reporting.figures.experiment_figures`;
    ``command`` is the ``lrlab report`` command line shown under Reproduce.
    """
    from importlib import metadata

    if figures is None:
        figures = experiment_figures(data)
    try:
        version = metadata.version("lrlab")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        version = "?"
    body = [
        _header(data),
        "<main>",
        _results(data, figures),
        _sweep(data, figures),
        _schedules(data, figures),
        _curves(data, figures),
        _reproduce(data, command),
        "</main>",
        f"<footer>Made by lrlab {esc(version)} from {esc(_store_file(data))}. This page is "
        "self-contained: it loads nothing from the network and runs no script.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="generator" content="lrlab {esc(version)}">'
        f"<title>{esc(data.title)} · lrlab report</title>"
        f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(
    directory: str | Path,
    *,
    html_path: str | Path | None = None,
    png_dir: str | Path | None = None,
    metric: str | None = None,
    baseline: str | None = None,
    command: str | None = None,
    table: ResultTable | None = None,
) -> list[Path]:
    """Write the HTML report and/or the figures as PNGs; return the files written.

    Both come from one read of the store and one drawing of each figure. Files are
    written to a temporary name and renamed, so a failure leaves nothing half-written.

    Raises:
        lrlab.errors.LrlabError: no store in ``directory``, or an unknown metric/baseline.
    """
    from lrlab.reporting.figures import save_png

    data = load_report_data(directory, metric=metric, baseline=baseline, table=table)
    figures = experiment_figures(data)
    written: list[Path] = []
    if png_dir is not None:
        written += [save_png(f.figure, Path(png_dir) / f"{f.name}.png") for f in figures]
    if html_path is not None:
        page = render_report(data, figures, command=command)
        written.append(write_atomic(html_path, page))
    return written
