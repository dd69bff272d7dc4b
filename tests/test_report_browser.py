"""The HTML report of a real (tiny) Keras run, opened in headless Chromium.

Once per session: ``lrlab run`` trains a small lr sweep on Ionosphere with the Keras
engine (two schedules, one named ``<script>alert(1)</script>``, two peak lrs, two seeds,
three epochs), then ``lrlab report DIR --html`` writes the page. Chromium (Debian's
package; installed here with apt-get when missing) loads it on a laptop-sized and on a
phone-sized screen: every section is there, every image decoded (``naturalWidth > 0``),
the console has no error, nothing was fetched from the network, the injected name is
text, and the page is no wider than the phone. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import BrowserError, find_chromium, inspect_page
from datafiles import IONOSPHERE_CSV
from lrlab.reporting.html import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
IONOSPHERE = IONOSPHERE_CSV
EVIL = "<script>alert(1)</script>"

EXPERIMENT = """
[experiment]
name = "browser check: {evil}"
seeds = 2
lrs = [0.01, 0.1]
baseline = "constant / lr=0.1"

[data]
dataset = "{dataset}"
validation = 0.3

[model]
spec = "mlp(hidden=[8])"

[training]
epochs = 3
batch_size = 64
metrics = ["accuracy"]

[optimizers]
sgd = {{ type = "sgd", momentum = 0.9 }}

[schedules]
constant = "constant(0.1)"
"{evil}" = {{ spec = "step_decay(0.1, drop=0.5, every=1)", unit = "epoch" }}
"""


def _install_chromium() -> str | None:
    """Debian's chromium via apt-get (root only); the reason it failed otherwise."""
    if not shutil.which("apt-get"):
        return "no apt-get on this system; install Chromium and put it on PATH"
    if os.geteuid() != 0:
        return "apt-get needs root; run: sudo apt-get install -y chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "-o",
               "DPkg::Lock::Timeout=300", "chromium"]  # fmt: skip
    r = subprocess.run(install, capture_output=True, text=True, env=env, timeout=1200)
    if r.returncode != 0:  # stale package lists: update once and retry
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600)
        r = subprocess.run(install, capture_output=True, text=True, env=env, timeout=1200)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"apt-get install chromium failed: {last}"
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        reason = _install_chromium()
        path = find_chromium()
        if path is None:
            pytest.skip(f"headless Chromium unavailable: {reason}")
    return path


def lrlab(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lrlab.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )


@pytest.fixture(scope="session")
def report_page(tmp_path_factory) -> Path:
    """Run the tiny experiment with the Keras engine and write its HTML report."""
    d = tmp_path_factory.mktemp("browser")
    dataset = f"csv:{IONOSPHERE}" if IONOSPHERE.is_file() else "breast_cancer"
    (d / "exp.toml").write_text(EXPERIMENT.format(evil=EVIL, dataset=dataset))
    r = lrlab("run", "exp.toml", "--out", "run", "--engine", "keras", "--quiet", cwd=d)
    assert r.returncode == 0, r.stderr
    r = lrlab("report", "run", "--html", "report.html", "--png", "figures", cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "report.html"


def test_report_opens_clean_in_chromium(chromium, report_page):
    source = report_page.read_text()
    try:
        page = inspect_page(report_page, width=1280, height=900, binary=chromium)
    except BrowserError as err:
        pytest.fail(f"chromium could not open the report: {err}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-desktop.png").write_bytes(page.screenshot)
    assert page.section_ids == list(SECTIONS)  # a sweep: every section
    assert len(page.images) == source.count("<img ") >= 4
    for img in page.images:
        assert img["complete"] and img["naturalWidth"] > 0, img["alt"]
    assert page.errors == [], page.errors
    assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests
    assert page.scripts == 0
    assert f"browser check: {EVIL}" in page.title
    assert f"{EVIL} / lr=0.1" in page.text  # the name shows as text
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and page.height > 2000


def test_report_fits_a_phone(chromium, report_page):
    page = inspect_page(report_page, width=390, height=844, mobile=True, binary=chromium)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-phone.png").write_bytes(page.screenshot)
    assert page.width <= 390  # wide tables and figures scroll inside their boxes
    assert page.errors == [] and all(i["naturalWidth"] > 0 for i in page.images)
    assert page.font_size >= 14
