"""lrlab.torch: the lr of every update in a real torch loop is the schedule's closed form.

Golden values come from the schedules' own closed forms (float64) and from torch's
``ReduceLROnPlateau``; resume is checked against an uninterrupted run.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lrlab
import lrlab.torch
from datafiles import IONOSPHERE_CSV
from lrlab.controllers.plateau import PlateauController
from lrlab.errors import LrlabError
from lrlab.schedules import REGISTRY, Plateau

N = 40


def make_sgd(lr: float = 1.0, momentum: float = 0.0, seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


def train(model, opt, sched, steps: int, metrics=None, seed: int = 0) -> list[float]:
    """Run ``steps`` SGD updates; return ``param_groups[0]["lr"]`` of each update.

    Each update is checked against ``w - lr * grad`` (SGD without momentum), so the
    recorded lr is the one the optimizer really used.
    """
    gen = torch.Generator().manual_seed(seed)
    used = []
    plain = opt.defaults["momentum"] == 0
    for i in range(steps):
        x = torch.randn(8, 3, generator=gen)
        y = torch.randn(8, 1, generator=gen)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        lr = opt.param_groups[0]["lr"]
        used.append(lr)
        before = [(p.detach().clone(), p.grad.detach().clone()) for p in model.parameters()]
        opt.step()
        if plain:
            for p, (w, g) in zip(model.parameters(), before, strict=True):
                torch.testing.assert_close(p.detach(), w - lr * g)
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics=metrics[i])
    return used


def test_every_registered_schedule_has_a_case(schedule_cases):
    curves = {name for name, cls in REGISTRY.items() if not cls.reactive}
    covered = {lrlab.parse(spec).name for spec in schedule_cases.values()}
    assert covered == curves, "give the new schedule class an EXAMPLE (tests/cases.py)"


def test_every_schedule_is_the_lr_of_every_torch_update(schedule_case):
    model, opt = make_sgd(lr=0.5)
    sched = lrlab.torch.scheduler(opt, schedule_case)
    used = train(model, opt, sched, N)
    expected = lrlab.parse(schedule_case).curve(N)
    np.testing.assert_allclose(used, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(sched.get_last_lr(), [lrlab.parse(schedule_case)(N)], rtol=1e-6)


def test_closed_form_does_not_drift_over_many_steps():
    """lrlab's lr stays on the formula at every step; torch's chained form drifts off it.

    After 20,000 steps of ``CosineAnnealingLR(T_max=10)`` torch is ~6e-13 off its own
    formula; a chained implementation in lrlab would fail the 1e-13 bound the same way.
    The reference reduces ``t`` modulo the period with integers (exact).
    """
    steps, t_max = 20_000, 10
    _, opt = make_sgd(lr=0.1)
    sched = lrlab.torch.scheduler(opt, f"cosine_annealing(0.1, t_max={t_max})")
    _, ref_opt = make_sgd(lr=0.1)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=t_max)
    opt.step()
    ref_opt.step()
    ours = theirs = 0.0
    for t in range(1, steps + 1):
        sched.step()
        ref.step()
        formula = 0.05 * (1 + math.cos(math.pi * (t % (2 * t_max)) / t_max))
        ours = max(ours, abs(opt.param_groups[0]["lr"] - formula))
        theirs = max(theirs, abs(ref_opt.param_groups[0]["lr"] - formula))
    assert ours <= 1e-13
    assert theirs > 1e-13  # the bound above does tell closed from chained


def test_construction_sets_step_zero_and_warns_like_torch_on_wrong_order():
    _, opt = make_sgd(lr=123.0)
    sched = lrlab.torch.scheduler(opt, "warmup(4, constant(0.1), start=0.02)")
    assert opt.param_groups[0]["lr"] == 0.02
    assert sched.last_epoch == 0
    with pytest.warns(UserWarning, match="before `optimizer.step"):
        sched.step()  # before any optimizer.step(): torch's own warning
    assert opt.param_groups[0]["lr"] == pytest.approx(0.04)


def test_param_groups_keep_their_ratio_to_the_optimizer_lr():
    torch.manual_seed(0)
    body, head = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(
        [{"params": body.parameters(), "lr": 1e-4}, {"params": head.parameters()}], lr=1e-3
    )
    spec = "cosine(0.1, decay_steps=10)"
    sched = lrlab.torch.scheduler(opt, spec)
    s = lrlab.parse(spec)
    for t in range(12):
        body_lr, head_lr = (g["lr"] for g in opt.param_groups)
        assert head_lr == pytest.approx(s(t), rel=1e-12, abs=1e-15)
        assert body_lr == pytest.approx(s(t) / 10, rel=1e-12, abs=1e-15)
        opt.step()
        sched.step()
    assert sched.ratios == pytest.approx([0.1, 1.0])


def test_one_spec_per_param_group():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 7.0}], lr=1.0)
    specs = ["linear(0.1, 0.0, steps=4)", "step_decay(0.2, drop=0.5, every=2)"]
    sched = lrlab.torch.scheduler(opt, specs)
    seen = []
    for _ in range(5):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    expected = np.stack([lrlab.parse(s).curve(5) for s in specs], axis=1)
    np.testing.assert_allclose(seen, expected, rtol=1e-12, atol=1e-15)


def test_tensor_lr_is_filled_in_place():
    w = torch.nn.Parameter(torch.zeros(2))
    lr = torch.tensor(0.5)
    opt = torch.optim.Adam([w], lr=lr)
    sched = lrlab.torch.scheduler(opt, "exponential(0.1, decay_steps=1, decay_rate=0.5)")
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr  # the same tensor, filled in place
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(0.05)
    assert float(sched.get_last_lr()[0]) == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("spec", "plateau", "match"),
    [
        ("cosin(0.1, decay_steps=10)", None, "unknown schedule 'cosin'"),
        ("constant(0.1)", "cosine(0.1, decay_steps=3)", "plateau must be a plateau"),
        ("plateau(patience=2)", "plateau(patience=3)", "plateau= is given too"),
        (["constant(0.1)"] * 3, None, "3 specs for 1 param groups"),
        (["plateau()"], None, "param group 0 plateau.*has no curve"),
    ],
)
def test_bad_arguments_raise_one_line_lrlab_errors(spec, plateau, match):
    _, opt = make_sgd()
    with pytest.raises(LrlabError, match=match):
        lrlab.torch.scheduler(opt, spec, plateau=plateau)


def test_step_with_metrics_needs_a_plateau_and_a_number():
    _, opt = make_sgd()
    sched = lrlab.torch.scheduler(opt, "constant(0.1)")
    with pytest.raises(LrlabError, match="no plateau"):
        sched.step(metrics=1.0)
    sched = lrlab.torch.scheduler(opt, "constant(0.1)", plateau="plateau()")
    with pytest.raises(LrlabError, match="one number"):
        sched.step(metrics=torch.ones(3))


def test_zero_optimizer_lr_cannot_relate_distinct_group_lrs():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=0.0)
    with pytest.raises(LrlabError, match="one spec per param group"):
        lrlab.torch.scheduler(opt, "constant(0.1)")


# --------------------------------------------------------------------------- plateau
# lrlab (Keras) counts patience p and cooldown c where torch counts p - 1 and c - 1
# (torch reduces when num_bad_epochs > patience, and its cooldown ignores c evaluations
# where Keras' ignores c - 1); torch's eps (skip a reduction smaller than 1e-8) is 0 here.
METRIC = st.sampled_from([1.0, 0.96, 0.9, 0.8, 1.1, math.nan])


@given(
    metrics=st.lists(METRIC, min_size=1, max_size=30),
    patience=st.integers(1, 4),
    cooldown=st.integers(1, 3),
    factor=st.sampled_from([0.5, 0.1]),
    min_delta=st.sampled_from([0.0, 0.05]),
    min_lr=st.sampled_from([0.0, 0.003]),
    mode=st.sampled_from(["min", "max"]),
)
def test_bare_plateau_is_torch_reduce_lr_on_plateau(
    metrics, patience, cooldown, factor, min_delta, min_lr, mode
):
    plateau = Plateau(factor, patience, min_delta, cooldown, min_lr, mode)
    _, opt = make_sgd(lr=0.1)
    sched = lrlab.torch.scheduler(opt, plateau)
    _, ref_opt = make_sgd(lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(
        ref_opt,
        mode=mode,
        factor=factor,
        patience=patience - 1,
        threshold=min_delta,
        threshold_mode="abs",
        cooldown=cooldown - 1,
        min_lr=min_lr,
        eps=0.0,
    )
    ours, theirs = [], []
    for m in metrics:
        opt.step()
        sched.step(m)
        ours.append(opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step(m)
        theirs.append(ref_opt.param_groups[0]["lr"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


SCRIPT = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]


@pytest.mark.parametrize(
    ("plateau", "metrics", "scales"),
    [
        # patience 2: the 2nd non-improving evaluation reduces (>=, Keras), then counts anew
        ("plateau(factor=0.5, patience=2)", SCRIPT, [1, 1, 1, .5, .5, .25, .25, .125, .125, .0625, .0625, .03125]),  # noqa: E501
        # cooldown 3 (Keras): 2 evaluations after a reduction are ignored
        ("plateau(factor=0.5, patience=2, cooldown=3)", SCRIPT, [1, 1, 1, .5, .5, .5, .5, .25, .25, .25, .25, .125]),  # noqa: E501
        # min_lr 0.02 on lr 0.1: the scale stops at 0.2 (the last reduction is clipped)
        ("plateau(factor=0.5, patience=1, min_lr=0.02)", SCRIPT, [1, 1, .5, .25, .2, .2, .2, .2, .2, .2, .2, .2]),  # noqa: E501
        # mode max: rising accuracy never reduces, a flat one does
        ("plateau(factor=0.1, patience=2, mode='max')", [0.5, 0.6, 0.7, 0.7, 0.7, 0.8, 0.8, 0.8], [1, 1, 1, 1, .1, .1, .1, .01]),  # noqa: E501
        # min_delta 0.05: an improvement of 0.04 is not one
        ("plateau(factor=0.5, patience=2, min_delta=0.05)", [1.0, 0.96, 0.97, 0.9, 0.8], [1, 1, .5, .5, .5]),  # noqa: E501
    ],
)  # fmt: skip
def test_scripted_plateau_on_a_schedule(plateau, metrics, scales):
    """lr = schedule(t) * scale; the metric given with step t applies from update t + 1."""
    spec = "constant(0.1)"
    _, opt = make_sgd()
    sched = lrlab.torch.scheduler(opt, spec, plateau=plateau)
    used = []
    for m in metrics:
        opt.step()
        sched.step(metrics=m)
        used.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(used, 0.1 * np.array(scales), rtol=1e-12)


def test_plateau_times_a_decaying_schedule_replays_the_controller():
    spec, plateau = (
        "cosine(0.1, decay_steps=30, alpha=0.2)",
        "plateau(factor=0.5, patience=2, min_lr=0.03)",
    )
    metrics = [1.0, 0.9, 0.8, 0.85, 0.85, 0.7, 0.75, 0.75, 0.75, 0.75] * 3
    model, opt = make_sgd()
    sched = lrlab.torch.scheduler(opt, spec, plateau=plateau)
    used = train(model, opt, sched, len(metrics), metrics=metrics)
    s, controller = lrlab.parse(spec), PlateauController(lrlab.parse(plateau))
    state, expected = controller.initial(), []
    for t, m in enumerate(metrics):
        expected.append(s(t) * state.scale)
        state = controller.update(state, m, s(t + 1))
    np.testing.assert_allclose(used, expected, rtol=1e-12)
    assert sched.plateau_state == state and state.reductions > 0


def test_observe_feeds_a_metric_without_advancing_the_step():
    _, opt = make_sgd()
    sched = lrlab.torch.scheduler(opt, "linear(0.1, 0.0, steps=10)", plateau="plateau(patience=1)")
    for _ in range(3):
        opt.step()
        sched.step()
    sched.observe(1.0)
    sched.observe(2.0)  # not an improvement: patience 1 reduces by 0.1 now
    assert sched.last_epoch == 3
    assert opt.param_groups[0]["lr"] == pytest.approx(0.07 * 0.1)


# --------------------------------------------------------------------------- resume
def roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("scheduler_first", [True, False])
@pytest.mark.parametrize(
    ("spec", "plateau"),
    [
        ("warmup(5, cosine(0.1, decay_steps=35))", None),
        ("one_cycle(0.1, total_steps=40)", "plateau(factor=0.5, patience=2, cooldown=2)"),
    ],
)
def test_resume_mid_run_equals_an_uninterrupted_run(spec, plateau, scheduler_first):
    k = 17
    metrics = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8] * 5

    model, opt = make_sgd(momentum=0.9)
    sched = lrlab.torch.scheduler(opt, spec, plateau=plateau)
    whole = train(model, opt, sched, N, metrics=metrics if plateau else None)

    model, opt = make_sgd(momentum=0.9)
    sched = lrlab.torch.scheduler(opt, spec, plateau=plateau)
    first = train(model, opt, sched, k, metrics=metrics[:k] if plateau else None)
    saved = roundtrip(
        {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
    )

    model, opt = make_sgd(momentum=0.9, seed=1)  # other weights, all overwritten by the load
    model.load_state_dict(saved["model"])
    if scheduler_first:  # torch's documented order
        sched = lrlab.torch.scheduler(opt, spec, plateau=plateau)
        opt.load_state_dict(saved["opt"])
    else:  # the order torch's own schedulers get wrong; the closed form does not care
        opt.load_state_dict(saved["opt"])
        sched = lrlab.torch.scheduler(opt, spec, plateau=plateau)
    sched.load_state_dict(saved["sched"])
    rest = train(model, opt, sched, N - k, metrics=metrics[k:] if plateau else None, seed=k)

    # the batches after the resume differ (seed k); the lrs do not depend on them
    assert first == whole[:k]
    assert rest == whole[k:]
    if plateau:
        assert sched.plateau_state.reductions > 0


def test_resume_reproduces_the_weights_of_an_uninterrupted_run():
    spec, plateau = "cosine(0.1, decay_steps=30)", "plateau(factor=0.5, patience=1)"
    metrics = [1.0, 1.0, 0.9, 0.9, 0.9, 0.8] * 4
    gen = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 3, generator=gen), torch.randn(8, 1, generator=gen)) for _ in metrics]

    def run(model, opt, sched, batches, ms):
        for (x, y), m in zip(batches, ms, strict=True):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            sched.step(metrics=m)

    model, opt = make_sgd(momentum=0.9)
    run(model, opt, lrlab.torch.scheduler(opt, spec, plateau=plateau), data, metrics)
    whole = [p.detach().clone() for p in model.parameters()]

    k = 11
    model, opt = make_sgd(momentum=0.9)
    sched = lrlab.torch.scheduler(opt, spec, plateau=plateau)
    run(model, opt, sched, data[:k], metrics[:k])
    saved = roundtrip({"m": model.state_dict(), "o": opt.state_dict(), "s": sched.state_dict()})
    model, opt = make_sgd(momentum=0.9, seed=5)
    model.load_state_dict(saved["m"])
    sched = lrlab.torch.scheduler(opt, spec, plateau=plateau)
    opt.load_state_dict(saved["o"])
    sched.load_state_dict(saved["s"])
    run(model, opt, sched, data[k:], metrics[k:])
    for p, w in zip(model.parameters(), whole, strict=True):
        torch.testing.assert_close(p.detach(), w, rtol=0, atol=0)


def test_loading_state_of_another_spec_is_refused():
    _, opt = make_sgd()
    state = lrlab.torch.scheduler(opt, "constant(0.1)").state_dict()
    with pytest.raises(LrlabError, match="saved with specs"):
        lrlab.torch.scheduler(opt, "constant(0.2)").load_state_dict(state)
    with pytest.raises(LrlabError, match="saved with plateau"):
        lrlab.torch.scheduler(opt, "constant(0.1)", plateau="plateau()").load_state_dict(state)


# --------------------------------------------------------------------------- example
def test_torch_example_runs_resumes_and_trains_with_the_schedule():
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = IONOSPHERE_CSV
    main = runpy.run_path(str(root / "examples" / "torch_ionosphere.py"))["main"]
    lrs = main(["--epochs", "4", "--data", f"csv:{data}"])
    # 235 training rows in batches of 28: 9 updates per epoch; no plateau in 4 epochs
    spec = "warmup(3, cosine(0.1, decay_steps=33, alpha=0.1))"
    np.testing.assert_allclose(lrs, lrlab.parse(spec).curve(36), rtol=1e-12)
