"""Schedule cases shared by the integration tests (importable by name; see conftest)."""

# One representative instance of every registered curve schedule (plateau is reactive and
# tested through the integrations), with parameters that move within 40 updates, plus
# variants whose code paths differ (lgamma, warmup_target, three phases, exp_range).
# Integration tests take the ``schedule_case`` fixture (one test per case).
SCHEDULE_CASES = {
    "constant": "constant(0.1)",
    "cosine": "cosine(0.1, decay_steps=30, alpha=0.1)",
    "cosine_annealing": "cosine_annealing(0.1, t_max=15, eta_min=0.01)",
    "cosine_restarts": "cosine_restarts(0.1, first_decay_steps=8, t_mul=2.0, m_mul=0.5)",
    "cyclic": "cyclic(0.01, 0.1, step_size_up=5, step_size_down=3, mode='triangular2')",
    "exp_decay": "exp_decay(0.1, k=0.05)",
    "exponential": "exponential(0.1, decay_steps=7, decay_rate=0.5, staircase=true)",
    "inverse_sqrt": "inverse_sqrt(0.1, warmup_steps=5)",
    "inverse_time": "inverse_time(0.1, decay_steps=5, decay_rate=0.5)",
    "linear": "linear(0.1, 0.01, steps=30)",
    "lr_range": "lr_range(1e-5, 1.0, steps=40)",
    "multistep": "multistep(0.1, milestones=[10, 25], gamma=0.1)",
    "one_cycle": "one_cycle(0.1, total_steps=40)",
    "piecewise": "piecewise(boundaries=[10, 20], values=[0.1, 0.05, 0.01])",
    "polynomial": "polynomial(0.1, decay_steps=30, power=2.0)",
    "scale": "scale(0.5, cosine(0.1, decay_steps=40))",
    "sequence": (
        "sequence([linear(0.0, 0.1, steps=10), cosine(0.1, decay_steps=30)], boundaries=[10])"
    ),
    "step_decay": "step_decay(0.1, drop=0.5, every=10, offset=1)",
    "time_decay": "time_decay(0.1, decay=0.05)",
    "warmup": "warmup(8, cosine(0.1, decay_steps=32))",
    "wsd": "wsd(0.1, warmup_steps=5, stable_steps=15, decay_steps=15, min_lr=0.001)",
    "time_decay-cumulative": "time_decay(0.1, decay=0.05, cumulative=true)",
    "cosine-warmup_target": "cosine(0.0, decay_steps=20, warmup_target=0.1, warmup_steps=10)",
    "one_cycle-three_phase": "one_cycle(0.1, total_steps=40, three_phase=true, anneal='linear')",
    "cyclic-exp_range": "cyclic(0.01, 0.1, step_size_up=4, mode='exp_range', gamma=0.95)",
}
