"""Where the test data lives: ``../shared/data`` beside the repository (never committed).

``LRLAB_SHARED_DATA`` overrides the folder; a missing folder is an error, not a skip,
so CI cannot pass without the data it is meant to test on.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    candidates = [
        os.environ.get("LRLAB_SHARED_DATA"),
        REPO.parent / "shared" / "data",
        Path("/work/shared/data"),
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "ionosphere.csv").is_file():
            return Path(candidate)
    raise RuntimeError(
        "test data not found: set LRLAB_SHARED_DATA to the folder holding ionosphere.csv "
        "(../shared/data beside the repository)"
    )


SHARED_DATA = _shared_data()
IONOSPHERE_CSV = SHARED_DATA / "ionosphere.csv"
