"""The figure of ``lrlab find-lr``: smoothed loss against lr, the suggestion marked.

The range test itself runs in :func:`lrlab.experiments.find_lr.run_range_test`.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from lrlab.experiments.find_lr import RangeTestRun

__all__ = ["range_test_figure"]


def range_test_figure(run: RangeTestRun) -> Figure:
    """Smoothed loss against lr (log x), both suggestions as lines, the chosen one as a dot."""
    import matplotlib
    import numpy as np

    from lrlab.reporting.figures import RC, legend_label

    test = run.test
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(8, 4.8), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(test.lrs, test.losses, color="0.75", lw=0.8, label="loss of each batch")
        test.plot(ax=ax)
        chosen = test.suggestion
        if chosen is not None and len(test.lrs):
            i = int(np.argmin(np.abs(np.log(test.lrs) - np.log(chosen))))
            (dot,) = ax.plot(
                test.lrs[i],
                test.smoothed[i],
                "o",
                color="tab:red",
                ms=8,
                zorder=5,
                label=f"suggested lr {chosen:.3g}",
            )
            dot.set_gid("suggestion")
        finite = test.smoothed[np.isfinite(test.smoothed)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            pad = 0.08 * (high - low or 1.0)
            ax.set_ylim(low - pad, high + pad)
        opt = run.optimizer.get("type", "?")
        ax.set_title(
            legend_label(
                f"LR range test: {run.title}, config {run.config} ({opt}, seed {run.seed}, "
                f"batch {run.batch_size})",
                90,
            )
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", framealpha=0.85)
    return fig
