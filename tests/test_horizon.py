"""Horizons and the horizon check: every schedule declares one, the declarations match the
curves, matched runs raise nothing, each planted mistake is exactly one finding."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrlab
from cases import SCHEDULE_CASES
from lrlab.schedules import REGISTRY, Schedule
from lrlab.schedules.check import KINDS, check_schedule

PARSED = {case: lrlab.parse(spec) for case, spec in SCHEDULE_CASES.items()}
WITH_HORIZON = {c: s for c, s in PARSED.items() if s.horizon is not None and s.horizon.steps > 0}
ENDING = {c: s for c, s in WITH_HORIZON.items() if s.horizon.ends}
CYCLING = {c: s for c, s in WITH_HORIZON.items() if not s.horizon.ends}


def kinds(schedule, epochs, steps_per_epoch=1, unit="step") -> list[str]:
    return [f.kind for f in check_schedule(schedule, epochs, steps_per_epoch, unit)]


# --------------------------------------------------------------------------- declarations
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_class_declares_its_horizon(name):
    """A class answers with its own ``horizon`` (a Horizon, or None on purpose), never the
    base's default for classes that declare nothing."""
    assert REGISTRY[name].horizon is not Schedule.horizon, f"{name} declares no horizon"


def test_the_examples_cover_ending_cycling_and_endless_schedules():
    assert {"cosine", "one_cycle", "wsd", "piecewise", "multistep", "sequence", "warmup"} <= set(
        ENDING
    )
    assert {"cosine_annealing", "cyclic", "cosine_restarts"} <= set(CYCLING)
    endless = {c for c, s in PARSED.items() if s.horizon is None}
    assert {"exponential", "time_decay", "step_decay", "inverse_sqrt"} <= endless


#: their last step, n - 1, reaches the end (torch's one_cycle, a range test, a table of n
#: values): their horizon is the run of n steps they are written for
END_AT_LAST_UPDATE = {"one_cycle", "one_cycle-three_phase", "lr_range", "table"}


@pytest.mark.parametrize("case", sorted(ENDING))
def test_an_ending_horizon_is_where_the_constant_tail_starts(case):
    schedule = ENDING[case]
    end = int(schedule.horizon.steps)
    curve = schedule.curve(end + 200)
    assert np.all(curve[end:] == curve[end]), "the lr still moves after the horizon"
    first_constant = end - 1 if case in END_AT_LAST_UPDATE else end
    assert curve[first_constant - 1] != curve[end], "the lr is constant before the horizon"
    assert curve[first_constant] == curve[end]


@pytest.mark.parametrize("case", sorted(CYCLING))
def test_a_cycling_horizon_restarts_where_the_lr_turns_back_up(case):
    schedule = CYCLING[case]
    horizon = schedule.horizon
    curve = schedule.curve(int(horizon.steps + horizon.period * 8) + 2)
    restart, length = float(horizon.steps), horizon.period
    for _ in range(3):
        r = math.ceil(restart)
        assert curve[r + 1] > curve[r] or curve[r] > curve[r - 1], f"no restart at {r}"
        restart, length = restart + length, length * horizon.growth


def test_combinators_derive_their_horizon_from_their_children():
    inner = lrlab.parse("cosine(0.1, decay_steps=30)")
    assert lrlab.parse(f"warmup(8, {inner})").horizon.steps == 38
    assert lrlab.parse(f"scale(0.5, {inner})").horizon == inner.horizon
    seq = lrlab.parse(f"sequence([linear(0.0, 0.1, steps=10), {inner}], boundaries=[10])")
    assert seq.horizon.steps == 40
    assert lrlab.parse("warmup(8, exponential(0.1, decay_steps=5, decay_rate=0.5))").horizon is None
    periodic = lrlab.parse("warmup(5, cosine_annealing(0.1, t_max=10))").horizon
    assert (periodic.steps, periodic.period) == (15, 20.0)


# --------------------------------------------------------------------------- matched runs
def _divisor(n: int) -> int:
    return next(d for d in range(2, n + 1) if n % d == 0)


@pytest.mark.parametrize("case", sorted(WITH_HORIZON))
def test_no_finding_on_a_run_as_long_as_the_horizon_in_either_unit(case):
    schedule = WITH_HORIZON[case]
    n = math.ceil(schedule.horizon.steps)
    spe = _divisor(n)
    assert kinds(schedule, n // spe, spe, unit="step") == []
    assert kinds(schedule, n, 7, unit="epoch") == []
    assert kinds(schedule, n) == []


def test_no_finding_for_schedules_without_a_horizon_or_constant_ones():
    for spec in (
        "exponential(0.1, decay_steps=7, decay_rate=0.5)",
        "constant(0.1)",
        "time_decay(0.1, decay=0.05)",
    ):
        schedule = lrlab.parse(spec)
        for epochs, spe in ((1, 1), (8, 13), (500, 1), (3, 400)):
            assert kinds(schedule, epochs, spe) == [], spec


def test_a_warmup_that_holds_its_peak_does_not_end_early():
    warm = lrlab.parse("warmup(8, constant(0.1))")
    assert kinds(warm, 500) == []  # flat after the warmup, but at its peak
    assert kinds(warm, 4) == ["never_finishes"]
    assert kinds(warm, 8, 13) == ["unit"]  # 8 warmup updates in an 8-epoch run


# --------------------------------------------------------------------------- planted
def test_the_issues_examples_word_for_word():
    cosine = lrlab.parse("cosine(0.1, decay_steps=40)")
    (early,) = check_schedule(cosine, 520)
    assert (
        early.message
        == "the last 480 of 520 updates train at lr 0.0 (it is constant from update 40)"
    )
    (never,) = check_schedule(lrlab.parse("cosine(0.1, decay_steps=500)"), 40)
    assert never.message.startswith("the run ends at 8% of the decay (40 of 500 updates)")
    assert never.message.endswith("the lr is still 99% of its peak")
    (mixup,) = check_schedule(cosine, 40, 13)
    assert mixup.kind == "unit" and mixup.message.endswith('did you mean unit = "epoch"?')
    (mixup,) = check_schedule(lrlab.parse("cosine(0.1, decay_steps=520)"), 40, 13, "epoch")
    assert mixup.kind == "unit" and mixup.message.endswith('did you mean unit = "step"?')


@pytest.mark.parametrize("case", sorted(ENDING))
def test_each_planted_mistake_is_exactly_its_finding(case):
    schedule = ENDING[case]
    end = int(schedule.horizon.steps)
    tail_below_peak = schedule(end) < schedule.peak
    assert kinds(schedule, 3 * end) == (["ends_early"] if tail_below_peak else [])
    assert kinds(schedule, end // 2) == ["never_finishes"]
    assert kinds(schedule, end, 13, unit="step") == ["unit"]
    assert kinds(schedule, 1, end, unit="epoch") == ["unit"]


@pytest.mark.parametrize("case", sorted(CYCLING))
def test_a_restart_late_in_the_run_is_found(case):
    schedule = CYCLING[case]
    horizon = schedule.horizon
    second = math.ceil(horizon.steps + horizon.period)  # the second restart
    assert kinds(schedule, second + 1) == ["late_restart"]
    assert kinds(schedule, second) == []  # a run of whole cycles
    assert kinds(schedule, math.ceil(horizon.steps) // 2) == ["never_finishes"]


# --------------------------------------------------------------------------- any run
RUNS = st.tuples(
    st.sampled_from(sorted(WITH_HORIZON)),
    st.integers(1, 300),
    st.integers(1, 40),
    st.sampled_from(["step", "epoch"]),
)


@given(RUNS)
def test_findings_agree_with_the_curve_on_any_run(run):
    case, epochs, spe, unit = run
    schedule = WITH_HORIZON[case]
    findings = check_schedule(schedule, epochs, spe, unit)
    found = [f.kind for f in findings]
    assert set(found) <= set(KINDS) and len(found) == len(set(found))
    assert "unit" not in found or found == ["unit"]
    assert not {"ends_early", "never_finishes"} <= set(found)
    n = epochs * spe if unit == "step" else epochs
    horizon = schedule.horizon
    curve = schedule.curve(n)
    for f in findings:
        if f.kind == "ends_early":
            flat, total = map(int, re.search(r"last (\d+) of (\d+)", f.message).groups())
            assert total == n and flat > n / 2
            tail = curve[n - flat :]
            assert np.all(tail == tail[0]) and curve[n - flat - 1] != tail[0]
        if f.kind == "never_finishes":
            assert n < 0.95 * horizon.steps
        if f.kind == "late_restart":
            restart = int(re.search(r"restarts at \w+ (\d+)", f.message).group(1))
            assert 0.9 * n <= restart < n
    if "unit" in found:
        return
    # the thresholds of the issue: 95% of the horizon, more than half of the run flat
    assert ("never_finishes" in found) == (n < 0.95 * horizon.steps)
    if horizon.ends:
        end = horizon.steps
        flat_below_peak = n - end > n / 2 and schedule(end) < schedule.peak
        assert ("ends_early" in found) == flat_below_peak
        if 0.95 * horizon.steps <= n <= 2 * horizon.steps:
            assert found == []


@given(st.integers(1, 100), st.integers(2, 50))
def test_the_mixup_is_found_whatever_the_run(epochs, spe):
    cosine = lrlab.parse(f"cosine(0.1, decay_steps={epochs})")
    assert kinds(cosine, epochs, spe) == ["unit"]
    assert kinds(cosine, epochs, spe, unit="epoch") == []


def test_bad_lengths_are_one_line_errors():
    with pytest.raises(lrlab.LrlabError, match="epochs must be an integer >= 1"):
        lrlab.check("cosine(0.1, decay_steps=4)", epochs=0)
    with pytest.raises(lrlab.LrlabError, match="unit must be 'step' or 'epoch'"):
        lrlab.check("cosine(0.1, decay_steps=4)", epochs=4, unit="batch")
    with pytest.raises(lrlab.LrlabError, match="no curve"):
        lrlab.check("plateau()", epochs=4)
