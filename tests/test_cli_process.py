"""``lrlab`` as the process (the console script, ``python -m lrlab.cli``) tunes Python's
garbage collector for a short life; ``main([...])`` called inside another program (a
test, a notebook) leaves that program's collector as it was."""

from __future__ import annotations

import gc
import subprocess
import sys

from lrlab.cli import main

AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print(gc.get_threshold()[0], gc.get_freeze_count() > 0))
from lrlab.cli import main
sys.argv = ["lrlab", "list"]
sys.exit(main())
"""


def test_as_the_process_lrlab_collects_less_often_and_skips_the_last_collection():
    done = subprocess.run([sys.executable, "-c", AT_EXIT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "10000 True"  # threshold raised, objects frozen


def test_called_inside_a_program_main_leaves_its_collector_alone(capsys):
    before = gc.get_threshold(), gc.get_freeze_count()
    assert main(["list"]) == 0
    assert "cosine" in capsys.readouterr().out
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
