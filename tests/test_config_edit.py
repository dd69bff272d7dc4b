"""``[experiment] lrs`` set by a text edit (lrlab.experiments.config_edit): comments and
layout kept, only the value changed, anything it cannot edit refused."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrlab.errors import LrlabError
from lrlab.experiments.config_edit import set_experiment_lrs

FILE = """\
# my experiment
[experiment]   # the grid
name = "x"
{lrs}seeds = 3  # paired

[data]
dataset = "digits"  # lrs = [9.0] in a comment is not a key
lrs = "not the experiment's"
"""


@pytest.mark.parametrize(
    "before, after",
    [
        ("lrs = [0.1, 0.2]  # by hand\n", "lrs = [0.03, 0.5]  # by hand\n"),
        ("lrs=[0.1]\n", "lrs=[0.03, 0.5]\n"),
        ("lrs = [\n  0.1,  # low\n  0.2,\n]  # end\n", "lrs = [0.03, 0.5]  # end\n"),
    ],
)
def test_the_value_is_replaced_and_nothing_else(before, after):
    text = FILE.format(lrs=before)
    assert set_experiment_lrs(text, [0.03, 0.5]) == FILE.format(lrs=after)


def test_a_missing_lrs_goes_under_the_header():
    edited = set_experiment_lrs(FILE.format(lrs=""), [0.03])
    assert edited == FILE.format(lrs="").replace(
        "[experiment]   # the grid\n", "[experiment]   # the grid\nlrs = [0.03]\n"
    )
    assert set_experiment_lrs("[experiment]", [1.0]) == "[experiment]\nlrs = [1.0]\n"
    crlf = "[experiment]\r\nseeds = 2\r\n"
    assert set_experiment_lrs(crlf, [1.0]) == "[experiment]\r\nlrs = [1.0]\r\nseeds = 2\r\n"
    assert set_experiment_lrs('[data]\ndataset = "d"\n', [0.5]) == (
        '[experiment]\nlrs = [0.5]\n\n[data]\ndataset = "d"\n'
    )


@pytest.mark.parametrize(
    "text",
    [
        "experiment.lrs = [0.1]\nexperiment.seeds = 2\n",
        "experiment = { seeds = 2 }\n",
    ],
)
def test_files_written_another_way_are_refused_with_the_line_to_add(text):
    with pytest.raises(LrlabError) as err:
        set_experiment_lrs(text, [0.03, 0.5], "exp.toml")
    assert str(err.value) == (
        "cannot set lrs in exp.toml by a text edit (written another way?); add it by hand "
        "under [experiment]: lrs = [0.03, 0.5]"
    )


lr = st.floats(1e-8, 1e3, allow_nan=False, allow_infinity=False)


@given(
    st.lists(lr, min_size=1, max_size=4, unique=True),
    st.sampled_from(["", "lrs = [1.0]\n", "lrs = [\n 1.0, # a\n 2.0\n]\n", "lrs = []  # c\n"]),
    st.sampled_from(["", "  # comment"]),
)
def test_any_lrs_round_trip_and_the_rest_parses_the_same(lrs, before, comment):
    text = FILE.format(lrs=before).replace("seeds = 3  # paired", f"seeds = 3{comment}")
    edited = set_experiment_lrs(text, lrs)
    parsed, original = tomllib.loads(edited), tomllib.loads(text)
    assert parsed["experiment"].pop("lrs") == lrs
    original["experiment"].pop("lrs", None)
    assert parsed == original
    assert set_experiment_lrs(edited, lrs) == edited  # idempotent
    kept = [
        ln for ln in text.splitlines() if not ln.lstrip().startswith(("lrs", "0.", "1.", "2.", "]"))
    ]
    assert all(line in edited.splitlines() for line in kept)
