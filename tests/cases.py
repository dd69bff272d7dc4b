"""Schedule cases shared by the tests (importable by name; see conftest).

The representative of each registered schedule is its class's ``EXAMPLE`` spec (one
source, in the class; ``test_spec`` checks every registered class has one). The variants
below add code paths the representatives miss (lgamma, warmup_target, three phases,
exp_range). Integration tests take the ``schedule_case`` fixture (one test per case).
"""

from lrlab.schedules import REGISTRY

#: every registered schedule's ``EXAMPLE`` spec, plateau (reactive) included
EXAMPLES = {name: cls.EXAMPLE for name, cls in sorted(REGISTRY.items())}

VARIANTS = {
    "time_decay-cumulative": "time_decay(0.1, decay=0.05, cumulative=true)",
    "cosine-warmup_target": "cosine(0.0, decay_steps=20, warmup_target=0.1, warmup_steps=10)",
    "one_cycle-three_phase": "one_cycle(0.1, total_steps=40, three_phase=true, anneal='linear')",
    "cyclic-exp_range": "cyclic(0.01, 0.1, step_size_up=4, mode='exp_range', gamma=0.95)",
}

# The curve schedules' examples (they move within 40 updates), then the variants; plateau
# is reactive and tested through the integrations.
SCHEDULE_CASES = {
    **{name: spec for name, spec in EXAMPLES.items() if not REGISTRY[name].reactive},
    **VARIANTS,
}
