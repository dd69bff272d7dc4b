"""The spec language: parsing, canonical form, errors with a caret, limits, fuzzing, and
numeric edge cases in every schedule's arguments."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import EXAMPLES, VARIANTS
from lrlab import parse
from lrlab.errors import LrlabError, ScheduleError, SpecError
from lrlab.schedules import (
    REGISTRY,
    Constant,
    Cosine,
    Cyclic,
    OneCycle,
    Piecewise,
    Plateau,
    Schedule,
    Sequence,
    StepDecay,
    Warmup,
    from_dict,
)
from lrlab.spec import MAX_DEPTH, MAX_SPEC_LENGTH, format_spec, signature


# --------------------------------------------------------------------------- parsing
def test_positional_and_keyword_arguments_build_the_same_value():
    a = parse("cosine(0.1, 95, 0.1)")
    b = parse("cosine(lr=0.1, decay_steps=95, alpha=0.1)")
    c = parse("cosine(0.1, alpha=0.1, decay_steps=95)")
    assert a == b == c == Cosine(0.1, decay_steps=95, alpha=0.1)


@pytest.mark.parametrize(
    "text, value",
    [
        ("1e-3", 1e-3),
        ("1E-3", 1e-3),
        ("2.5e+2", 250.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("+0.25", 0.25),
        ("3", 3.0),
        ("0", 0.0),
        ("1e-400", 0.0),
    ],
)
def test_numbers(text, value):
    assert parse(f"constant({text})").lr == value


def test_ints_coerce_to_integer_fields_and_whole_floats_are_accepted():
    s = parse("cosine(0.1, decay_steps=1e3)")
    assert s.decay_steps == 1000 and isinstance(s.decay_steps, int)
    with pytest.raises(SpecError, match="'decay_steps' must be an integer, got 10.5"):
        parse("cosine(0.1, decay_steps=10.5)")


def test_booleans_none_and_quoted_strings():
    assert parse("exponential(0.1, 10, 0.5, staircase=true)").staircase is True
    assert parse("exponential(0.1, 10, 0.5, staircase=FALSE)").staircase is False
    assert parse("cosine(0.1, 10, warmup_target=none)").warmup_target is None
    assert parse("one_cycle(1.0, 100, anneal='linear')").anneal == "linear"
    assert parse('one_cycle(1.0, 100, anneal="linear")').anneal == "linear"
    with pytest.raises(SpecError, match="'staircase' must be true or false"):
        parse("exponential(0.1, 10, 0.5, staircase=1)")


def test_lists_and_nesting():
    s = parse(
        " sequence( [ warmup(5, constant(0.1)), scale(0.5, cosine(0.1, 50)) ],"
        " boundaries = [ 10, ] , ) "
    )
    assert isinstance(s, Sequence) and s.boundaries == (10,)
    assert s.schedules[0] == Warmup(5, Constant(0.1))
    assert parse("piecewise([1, 2], [0.1, 0.01, 0.001])") == Piecewise((1, 2), (0.1, 0.01, 0.001))


def test_a_schedule_without_arguments_needs_no_parentheses():
    assert parse("plateau") == parse("plateau()") == Plateau()


def test_parse_passes_a_schedule_through():
    s = Constant(0.1)
    assert parse(s) is s


def test_canonical_form_leaves_out_defaults_and_names_later_arguments():
    s = parse("cosine(lr=0.1, decay_steps=95, alpha=0.0, warmup_steps=0)")
    assert str(s) == "cosine(0.1, decay_steps=95)"
    assert str(Cyclic(0.0, 1.0, step_size_up=4)) == "cyclic(0.0, 1.0, step_size_up=4)"
    assert format_spec(Plateau(factor=0.5)) == "plateau(factor=0.5)"


def test_signature_lists_defaults():
    assert signature(StepDecay) == "step_decay(lr, drop, every, offset=0)"


def test_from_dict_rejects_bad_dicts_with_one_line():
    for bad, match in [
        ({"lr": 0.1}, "needs a 'name'"),
        ({"name": "cosin", "lr": 0.1}, "unknown schedule 'cosin'"),
        ({"name": "constant", "rate": 0.1}, "constant has no argument 'rate'; valid: lr"),
        ({"name": "cosine", "lr": 0.1}, "decay_steps"),
        ({"name": "constant", "lr": "x"}, "'lr' must be a number"),
        ({"name": "scale", "factor": 1.0, "schedule": [1]}, "'schedule' must be a schedule"),
        ([1, 2], "needs a 'name'"),
    ]:
        with pytest.raises(ScheduleError, match=match) as info:
            from_dict(bad)
        assert "\n" not in str(info.value)


def test_from_dict_refuses_deep_nesting():
    data: dict = {"name": "constant", "lr": 0.1}
    for _ in range(MAX_DEPTH + 5):
        data = {"name": "scale", "factor": 1.0, "schedule": data}
    with pytest.raises(ScheduleError, match="deeper than"):
        from_dict(data)


# --------------------------------------------------------------------------- errors
def caret_column(err: SpecError) -> int:
    """The 0-based column of the caret line, relative to the echoed spec."""
    lines = str(err).splitlines()
    assert len(lines) == 3, lines
    assert lines[1].startswith("  ") and lines[2].startswith("  ")
    return lines[2].index("^") - 2


@pytest.mark.parametrize(
    "spec, column, message",
    [
        ("cosin(0.1, 10)", 0, "unknown schedule 'cosin'; did you mean cosine"),
        ("warmup(5, cosin(0.1, 10))", 10, "did you mean cosine"),
        ("cosine(0.1, decay_step=10)", 12, "no argument 'decay_step'; did you mean decay_steps?"),
        ("cosine(0.1, 10, alpha=2)", 16, "'alpha' must be in [0, 1], got 2.0"),
        ("cosine(0.1, -10)", 12, "'decay_steps' must be > 0, got -10"),
        ("cosine(0.1)", 0, "missing argument 'decay_steps'; signature: cosine(lr, decay_steps"),
        ("constant(0.1, 2)", 14, "takes at most 1 argument"),
        ("constant(lr=0.1, lr=0.2)", 17, "argument 'lr' given twice"),
        ("cosine(decay_steps=4, 0.1)", 22, "positional argument after a keyword"),
        ("constant(0.1", 12, "expected ',' or ')', found the end of the spec"),
        ("constant(0.1))", 13, "unexpected ')' after the schedule"),
        ("constant(0.1 0.2)", 13, "expected ',' or ')'"),
        ("constant($)", 9, "unexpected character '$'"),
        ("constant('abc)", 9, "strings need matching quotes"),
        ("constant(nan)", 9, "nan is not allowed; numbers must be finite"),
        ("constant(inf)", 9, "numbers must be finite"),
        ("constant(1e999)", 9, "'lr' must be finite"),
        ("0.1", 0, "a spec starts with a schedule name"),
        ("constant(,)", 9, "expected a value"),
        ("multistep(0.1, [5, 3], 0.1)", 15, "'milestones' must be increasing"),
        ("constant(123456789012345678901)", 9, "is too large"),
        ("warmup(5, plateau())", 10, "must not be reactive"),
    ],
)
def test_errors_show_the_spec_with_a_caret_at_the_fault(spec, column, message):
    with pytest.raises(SpecError) as info:
        parse(spec)
    err = info.value
    assert message in str(err).splitlines()[0]
    assert str(err).splitlines()[0].startswith(f"bad spec at column {column + 1}:")
    assert str(err).splitlines()[1] == "  " + spec
    assert caret_column(err) == column


def test_the_caret_stays_aligned_in_long_and_multiline_specs():
    long = "sequence([" + ", ".join(["constant(0.1)"] * 40) + "], boundaries=[1, 2, oops])"
    with pytest.raises(SpecError) as info:
        parse(long)
    shown, caret = str(info.value).splitlines()[1:]
    assert len(shown) < 100
    assert shown[caret.index("^") : caret.index("^") + 4] == "oops"
    with pytest.raises(SpecError) as info:
        parse("warmup(5,\n\tcosin(0.1, 10))")
    shown, caret = str(info.value).splitlines()[1:]
    assert shown[caret.index("^") :].startswith("cosin(")


def test_empty_and_non_string_specs():
    with pytest.raises(SpecError, match="empty spec"):
        parse("   ")
    with pytest.raises(SpecError, match="a spec must be a string, got int"):
        parse(3)  # type: ignore[arg-type]


def test_errors_are_lrlab_errors():
    assert issubclass(SpecError, LrlabError) and issubclass(ScheduleError, LrlabError)


# --------------------------------------------------------------------------- limits
def test_huge_specs_are_refused_quickly():
    for spec in [
        "constant(" + "1" * MAX_SPEC_LENGTH + ")",
        "x" * 10_000_000,
    ]:
        start = time.perf_counter()
        with pytest.raises(SpecError, match=f"the limit is {MAX_SPEC_LENGTH}"):
            parse(spec)
        assert time.perf_counter() - start < 0.5  # a guard against scanning, not a benchmark


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "scale(1, " * n + "constant(1)" + ")" * n,
        lambda n: "constant(" + "[" * n + "]" * n + ")",
        lambda n: "[" * n,
        lambda n: "piecewise(" + "[" * n,
    ],
)
def test_deep_nesting_is_refused(make):
    spec = make(1200)[:MAX_SPEC_LENGTH]
    with pytest.raises(SpecError):
        parse(spec)
    ok = "scale(1, " * (MAX_DEPTH - 1) + "constant(1)" + ")" * (MAX_DEPTH - 1)
    assert parse(ok).peak == 1.0


# --------------------------------------------------------------------------- fuzzing
SPEC_ALPHABET = st.sampled_from(list("(),=[]'\" .-+e0123456789_abcdefghijklmnopqrstuvwxyz\n\t$"))
names = st.sampled_from(sorted(REGISTRY)) | st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1)
edge_numbers = st.sampled_from(
    ["0", "-1", "1e400", "-1e400", "1e-400", "2e9", "9007199254740993", "0.5", "1", "3", "100"]
)


@st.composite
def spec_like(draw, depth=0):
    """Grammar-shaped but mostly invalid specs: real names and fields, odd values."""
    name = draw(names)
    cls = REGISTRY.get(name)
    fields = [f.name for f in dataclasses.fields(cls)] if cls else ["x"]
    args = []
    for _ in range(draw(st.integers(0, 5))):
        value = draw(
            edge_numbers
            | st.floats(allow_nan=False, allow_infinity=False).map(repr)
            | st.sampled_from(["true", "false", "none", "'cos'", "'linear'", "'x'", "inf"])
            | st.lists(edge_numbers, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")
            | (spec_like(depth + 1) if depth < 2 else st.just("constant(0.1)"))
        )
        if draw(st.booleans()):
            value = f"{draw(st.sampled_from(fields + ['bogus']))}={value}"
        args.append(value)
    return f"{name}({', '.join(args)})"


def _parse_or_lrlab_error(spec: str) -> Schedule | None:
    try:
        s = parse(spec)
    except LrlabError as err:
        assert str(err).strip()
        return None
    assert isinstance(s, Schedule)
    assert parse(str(s)) == s
    if not s.reactive:
        values = s(np.array([0.0, 1.0, 10.0, 1e3, 1e9]))
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
    return s


@settings(max_examples=1000)
@given(st.text(SPEC_ALPHABET, max_size=80))
def test_random_strings_raise_only_lrlab_errors(spec):
    _parse_or_lrlab_error(spec)


@settings(max_examples=1000)
@given(spec_like())
def test_grammar_shaped_specs_parse_or_raise_only_lrlab_errors(spec):
    _parse_or_lrlab_error(spec)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_arbitrary_unicode_raises_only_lrlab_errors(spec):
    _parse_or_lrlab_error(spec)


# --------------------------------------------------------------------------- numeric edges
# A valid instance of every schedule (its EXAMPLE, the shared variants, and a few more whose
# arguments take other code paths); numeric edge values replace one argument at a time.
EDGE_CASES: dict[str, str] = {
    **EXAMPLES,
    **VARIANTS,
    "polynomial-cycle": "polynomial(0.1, decay_steps=100, end_lr=0.001, power=2.0, cycle=true)",
    "inverse_sqrt-timescale": "inverse_sqrt(0.1, warmup_steps=10, timescale=20)",
    "warmup-start": "warmup(10, constant(0.1), start=0.01)",
    "cosine_restarts-alpha": "cosine_restarts(0.1, 10, t_mul=1.5, m_mul=0.9, alpha=0.1)",
}

EDGE_VALUES = [0, -1, -1e-300, float("nan"), float("inf"), float("-inf"), 1e300, 2**60, 2**53]


def test_every_registered_schedule_has_an_example_of_its_own():
    for name, cls in REGISTRY.items():
        assert "EXAMPLE" in vars(cls), f"give {cls.__name__} an EXAMPLE spec"
        example = parse(cls.EXAMPLE)
        assert type(example) is cls and example.name == name
        assert parse(str(example)) == example
    assert set(EXAMPLES) == set(REGISTRY)


def _keyword_arguments(case: str) -> dict:
    s = parse(EDGE_CASES[case])
    return {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}


def _numeric_fields(case: str) -> list[str]:
    cls = type(parse(EDGE_CASES[case]))
    skip = {"bool", "choice", "schedule", "schedules"}
    return [name for name, field in cls.field_types().items() if field.kind not in skip]


CASES = [(c, f, v) for c in sorted(EDGE_CASES) for f in _numeric_fields(c) for v in EDGE_VALUES]


@pytest.mark.parametrize("name, field, value", CASES, ids=[f"{n}-{f}-{v}" for n, f, v in CASES])
def test_numeric_edge_values_give_a_clear_error_or_finite_values(name, field, value):
    kwargs = _keyword_arguments(name)
    cls = type(parse(EDGE_CASES[name]))
    if cls.field_types()[field].kind in ("ints", "floats"):
        kwargs[field] = [*kwargs[field][:-1], value]  # the edge value as the last entry
    else:
        kwargs[field] = value
    try:
        s = cls(**kwargs)
    except ScheduleError as err:
        message = str(err)
        assert f"'{field}'" in message, message  # names the argument at fault
        assert "\n" not in message
        assert getattr(err, "argument", None) == field
        return
    # accepted: a documented, finite schedule
    assert not (isinstance(value, float) and not math.isfinite(value))
    assert parse(str(s)) == s and from_dict(s.to_dict()) == s
    if s.reactive:
        return
    steps = np.concatenate([np.arange(200.0), [1e6, 1e9, 2.0**53]])
    values = s(steps)
    assert np.all(np.isfinite(values)) and np.all(values >= 0), (s, values)
    assert np.all(values <= s.peak * (1 + 1e-12))


def test_the_documented_finite_values_at_the_edges():
    # zero is a legal lr/decay/alpha and gives the obvious curve
    assert Constant(0.0)(10**9) == 0.0
    assert Cosine(0.1, 100, alpha=1.0)(50) == pytest.approx(0.1)
    # huge integer horizons: the schedule has barely started
    assert Cosine(0.1, 2**53)(10**9) == pytest.approx(0.1)
    assert OneCycle(0.1, 2**53)(0) == pytest.approx(0.1 / 25)
    # lr_range over a huge span stays finite at both ends
    from lrlab.schedules import LrRange

    r = LrRange(1e-300, 1e300, steps=10)
    assert r(0) == pytest.approx(1e-300) and r(9) == pytest.approx(1e300)


@pytest.mark.parametrize("bad", [-1, -1e-9, float("nan"), float("inf")])
def test_bad_steps_are_a_clear_error(bad):
    s = parse("cosine(0.1, 100)")
    for step in (bad, np.array([0.0, bad])):
        with pytest.raises(ScheduleError, match=r"steps must be finite and >= 0, got"):
            s(step)


@pytest.mark.parametrize("bad", [10**400, [0, 10**400]])
def test_steps_beyond_float_range_are_a_clear_error(bad):
    with pytest.raises(ScheduleError, match=r"steps must be finite and >= 0, got"):
        parse("constant(0.1)")(bad)


@pytest.mark.parametrize("bad", ["5", None, {"t": 1}])
def test_steps_that_are_not_numbers_are_a_clear_error(bad):
    with pytest.raises(ScheduleError, match="steps must be a number or an array of numbers"):
        parse("constant(0.1)")(bad)


def test_python_sequences_of_steps_evaluate_like_numpy():
    s = parse("linear(0.0, 1.0, steps=4)")
    np.testing.assert_array_equal(s([0, 2, 4]), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(s(range(3)), s(np.arange(3.0)))


@pytest.mark.parametrize("bad", [-3, 2.5, True, "10"])
def test_curve_needs_a_whole_number_of_steps(bad):
    with pytest.raises(ScheduleError, match="number of steps must be an integer >= 0"):
        parse("constant(0.1)").curve(bad)
    assert parse("constant(0.1)").curve(0).shape == (0,)
