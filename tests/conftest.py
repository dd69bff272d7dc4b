"""Shared test setup: the Keras backend and the hypothesis profiles.

KERAS_BACKEND must be set before anything imports keras (lrlab defaults to JAX). The
``ci`` profile is the default; ``HYPOTHESIS_PROFILE=thorough`` runs more examples.
Other helpers may append fixtures below.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
# Test modules import small shared helpers (tests/datafiles.py) by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# ``ci`` (the default) draws the same examples on every run, so a clean clone passes or
# fails reproducibly; ``thorough`` explores new random examples, 20x as many.
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
    derandomize=True,
)
settings.register_profile(
    "thorough", parent=settings.get_profile("ci"), max_examples=2000, derandomize=False
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# --------------------------------------------------------------------------- schedule cases
from cases import SCHEDULE_CASES  # noqa: E402


@pytest.fixture(params=list(SCHEDULE_CASES), ids=list(SCHEDULE_CASES))
def schedule_case(request) -> str:
    """The spec of one schedule case (see ``SCHEDULE_CASES``)."""
    return SCHEDULE_CASES[request.param]


@pytest.fixture
def schedule_cases() -> dict[str, str]:
    """Every schedule case, ``{id: spec}``."""
    return dict(SCHEDULE_CASES)
