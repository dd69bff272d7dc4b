"""Make docs/report.png: a screenshot of a real lrlab report, for the README.

Runs a small but real experiment (Ionosphere, the data of seed tutorial 002: the
tutorials' schedules, each rescaled to three peak learning rates, SGD with momentum,
several seeds), writes its HTML report with ``lrlab report --html``, opens it in headless
Chromium (Debian's ``chromium``) and saves the top of the page (title, verdict, results
table, final-metric figure) as an optimized PNG.

    python scripts/report_screenshot.py                 # -> docs/report.png
    python scripts/report_screenshot.py --seeds 5 --epochs 20 --height 2400

The run folder (default ``runs/report-screenshot``) keeps the store and ``report.html``;
rerunning resumes instead of training again.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENT = """\
# Written by scripts/report_screenshot.py (the experiment behind docs/report.png).
[experiment]
name = "Ionosphere: which schedule, at which peak lr?"
seeds = {seeds}
lrs = [0.01, 0.05, 0.2]
metric = "val_accuracy"
baseline = "constant / lr=0.05"
engine = "{engine}"

[data]
dataset = "ionosphere"
validation = 0.33

[model]
spec = 'mlp(hidden=[34], activation="relu")'

[training]
epochs = {epochs}
batch_size = 28
metrics = ["accuracy"]

[optimizers]
sgd = {{ type = "sgd", momentum = 0.8 }}

[schedules]
constant = "constant(0.1)"
time_decay = "time_decay(0.1, decay=0.002)"
step_decay = {{ spec = "step_decay(0.1, drop=0.5, every=10)", unit = "epoch" }}
warmup_cosine = "warmup(20, cosine(0.1, decay_steps=400))"
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "report-screenshot")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--engine", default="auto", help="auto, keras or population")
    parser.add_argument("--width", type=int, default=1200, help="CSS pixels")
    parser.add_argument("--height", type=int, default=2300, help="CSS pixels kept from the top")
    parser.add_argument("--max-kb", type=int, default=400)
    args = parser.parse_args(argv)

    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser import inspect_page  # tests/browser.py: a test tool, not part of lrlab

    args.out.mkdir(parents=True, exist_ok=True)
    experiment = args.out / "experiment.toml"
    experiment.write_text(
        EXPERIMENT.format(seeds=args.seeds, epochs=args.epochs, engine=args.engine)
    )
    lrlab = [sys.executable, "-m", "lrlab.cli"]
    subprocess.run([*lrlab, "run", str(experiment), "--out", str(args.out)], check=True)
    html = args.out / "report.html"
    subprocess.run([*lrlab, "report", str(args.out), "--html", str(html)], check=True)

    page = inspect_page(html, width=args.width, height=900)
    if page.errors or any(i["naturalWidth"] == 0 for i in page.images):
        raise SystemExit(f"the report did not render cleanly: {page.errors}")
    shot = Image.open(io.BytesIO(page.screenshot)).convert("RGB")
    shot = shot.crop((0, 0, shot.width, min(shot.height, args.height)))
    for colors in (256, 128, 64):  # a palette PNG: the page is flat colours and anti-aliasing
        small = shot.quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=0)
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
        if buf.tell() <= args.max_kb * 1024:
            break
    else:
        raise SystemExit(f"screenshot is {buf.tell() // 1024} KB, over --max-kb {args.max_kb}")
    args.png.parent.mkdir(parents=True, exist_ok=True)
    args.png.write_bytes(buf.getvalue())
    print(
        f"wrote {args.png} ({shot.width}x{shot.height}, {colors} colours, {buf.tell() // 1024} KB)"
    )
    print(f"the full report: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
