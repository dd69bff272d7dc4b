"""``lrlab.torch.scheduler(optimizer, spec)``: see :mod:`lrlab.integrations.torch`.

This module is named ``torch`` inside the ``lrlab`` package; imports are absolute, so
``import torch`` anywhere (here included) is PyTorch itself.
"""

from __future__ import annotations

from lrlab.integrations.torch import ScheduleLR, scheduler

__all__ = ["ScheduleLR", "scheduler"]
