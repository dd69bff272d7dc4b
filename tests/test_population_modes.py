"""The population program's trial-axis modes (vmapped, in sequence, in small vmapped
groups) and the convolution layout rewrite they rely on."""

from __future__ import annotations

import re
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrlab.experiments.config import load_config
from lrlab.experiments.engines.conv_layout import canonical_convs
from lrlab.experiments.engines.population import PopulationEngine, population_inputs
from lrlab.experiments.engines.population_chunks import Population, _split_bytes, chunk_size
from lrlab.experiments.engines.population_program import trials_at_once
from lrlab.experiments.models import ModelSpec
from lrlab.experiments.plan import build_plan


def _plan(tmp_path, model: str, seeds: int = 1, adam: bool = False):
    second = 'adam = { type = "adam", schedules = ["a"] }' if adam else ""
    (tmp_path / "exp.toml").write_text(
        textwrap.dedent(
            f"""
            [experiment]
            seeds = {seeds}
            [data]
            dataset = "digits"
            validation = 0.25
            limit = 240
            [model]
            spec = "{model}"
            [training]
            epochs = 2
            batch_size = 50
            metrics = ["accuracy"]
            [optimizers]
            sgd = {{ type = "sgd", momentum = 0.8, schedules = ["a", "b"] }}
            {second}
            [schedules]
            a = "constant(0.05)"
            b = "time_decay(0.1, decay=0.01)"
            """
        )
    )
    return build_plan(load_config(tmp_path / "exp.toml"))


def test_trials_in_sequence_or_in_groups_train_what_vmap_trains(tmp_path):
    """4 CNN trials (2 schedules x 2 seeds), 2 epochs: every mode, every metric, every
    epoch; one at a time is also what two calls of one epoch each give."""
    plan = _plan(tmp_path, "cnn(filters=[4, 8], kernel=3, pool=2, dense=[8])", seeds=2)
    inputs = population_inputs(plan, plan.trials)
    assert len(plan.trials) == 4

    def history(**kwargs):
        (index, result), *rest = Population(**inputs, **kwargs)
        assert rest == [] and list(index) == [0, 1, 2, 3]
        return result.history

    vmapped = history(trials_at_once=None)
    assert set(vmapped) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for kwargs in (
        {"trials_at_once": 1},
        {"trials_at_once": 2},
        {"trials_at_once": 3},
        {"trials_at_once": 1, "epochs_per_call": 1},
    ):
        mine = history(**kwargs)
        for name, values in vmapped.items():
            np.testing.assert_allclose(mine[name], values, rtol=2e-5, atol=1e-6, err_msg=name)
    assert np.all(np.isfinite(vmapped["val_loss"]))
    assert len({tuple(row) for row in vmapped["val_loss"]}) == 4  # four distinct trials


def test_the_mode_follows_the_layers(tmp_path):
    """Convolutions: one trial at a time; dense layers only: the whole chunk vmapped."""
    for spec, expected in [("cnn(filters=[4], dense=[8])", 1), ("mlp(hidden=[8])", None)]:
        plan = _plan(tmp_path, spec)
        ds = plan.dataset
        assert trials_at_once(plan.model.build(ds.input_shape, ds.task, ds.n_classes, 0)) == (
            expected
        )


def test_the_engine_picks_the_mode_on_the_models_it_trains_building_each_seed_once(
    tmp_path, monkeypatch
):
    """Two optimizer groups of a CNN, 2 seeds: each seed's model is built once in the whole
    run (no model built only to choose the mode or to look for a frozen base), and the
    programs run the trials in sequence; an MLP's are vmapped. The engine says so."""
    builds: list[int] = []
    build = ModelSpec.build

    def counted(self, input_shape, task, n_classes, seed):
        builds.append(int(seed))
        return build(self, input_shape, task, n_classes, seed)

    for spec, mode in [("cnn(filters=[4], dense=[8])", 1), ("mlp(hidden=[8])", None)]:
        plan = _plan(tmp_path, spec, seeds=2, adam=True)  # builds seed 0 to check the spec
        monkeypatch.setattr(ModelSpec, "build", counted)
        builds.clear()
        engine = PopulationEngine()
        assert "a convolutional model's in sequence" in engine.describe()  # the rule
        results = list(engine.run(plan, plan.trials))
        assert [r.status for r in results] == ["ok"] * len(plan.trials)
        assert sorted(builds) == sorted(plan.seeds)
        programs = engine.caches.programs._programs.values()
        assert len(programs) == 2 and {p.trials_at_once for p in programs} == {mode}
        said = "in sequence" if mode == 1 else "vmapped"
        assert engine.describe() == f"population engine (trials {said}, 2 per chunk)"  # adam: 2
        monkeypatch.undo()


def test_trials_in_sequence_hold_one_working_set_so_a_chunk_takes_more_of_them(tmp_path):
    """Vmapped, each trial of a chunk holds its whole working set (intermediates of a
    batch, gradients); in sequence only the trial training does, the others keep their
    weights and slots: the same budget takes a chunk of every trial instead of three."""
    plan = _plan(tmp_path, "cnn(filters=[4, 8], kernel=3, pool=2, dense=[8])", seeds=4)
    inputs = population_inputs(plan, plan.trials)
    probe = Population(**inputs, trials_at_once=1)
    first = inputs["splits"][0]
    costs = probe.program.costs(probe.tv, probe.ntv, first.x_train, first.y_train)
    assert costs.working > 50 * costs.kept  # a CNN's activations dwarf its weights
    budget = 4 * costs.working
    left = budget - probe.per_group * _split_bytes(inputs["splits"])
    vmapped = Population(**inputs, memory=budget)
    in_sequence = Population(**inputs, memory=budget, trials_at_once=1)
    assert vmapped.size == chunk_size(8, costs.kept + costs.working, left) == 3
    assert in_sequence.size == 8 == chunk_size(8, costs.kept, left - costs.working)


def test_a_chunks_work_counts_the_convolutions_multiply_adds(tmp_path):
    """The work that sets the epochs a call trains counts each convolution's products at
    every output position (a kernel is reused across the image), from the traced step:
    here checked against the layers' shapes for an evaluation batch (forward only)."""
    import keras

    plan = _plan(tmp_path, "cnn(filters=[4, 8], kernel=3, pool=2, dense=[8])")
    inputs = population_inputs(plan, plan.trials)
    population = Population(**inputs, trials_at_once=1)
    first = inputs["splits"][0]
    program = population.program
    costs = program.costs(population.tv, population.ntv, first.x_train, first.y_train)
    per_row = 0
    for layer in program.model.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
            kernel = layer.kernel.shape
            positions = int(np.prod(layer.output.shape[1:-1]))  # 1 for a dense layer
            per_row += positions * int(np.prod(kernel))
    assert costs.evaluate == program.shape.eval_batch * per_row
    assert costs.train > 2 * program.shape.batch_size * per_row  # forward and gradients
    s = program.shape
    whole = s.epochs * (costs.train * s.n_train / s.batch_size + costs.evaluate)
    assert program.chunk_work(costs, 3) == pytest.approx(3 * whole)
    params = sum(int(np.prod(a.shape[1:])) for a in population.tv)
    assert whole > 5 * s.epochs * (3 * s.n_train + s.n_val) * params  # not per weight


def test_auto_takes_the_population_engine_for_convolutions(tmp_path):
    """In sequence and with its convolutions in XLA's fast layout, the population engine
    outruns the Keras engine on seed 003's CNN (bench/peers.py --cnn): nothing to pass over."""
    from lrlab.experiments.runner import choose_engine

    plan = _plan(tmp_path, "cnn(filters=[4], dense=[8])")
    assert PopulationEngine().slower(plan) is None
    passed_over: list[str] = []
    assert choose_engine("auto", plan, passed_over).name == "population"
    assert passed_over == []
    assert choose_engine("auto", _plan(tmp_path, "mlp(hidden=[8])")).name == "population"


@pytest.mark.parametrize(
    "dimension_numbers, strides, dilation, groups",
    [
        (("NHWC", "HWIO", "NHWC"), (1, 1), (1, 1), 1),
        (("NCHW", "OIHW", "NCHW"), (2, 1), (1, 1), 1),
        (("NHWC", "HWIO", "NCHW"), (1, 1), (2, 2), 1),
        (("NHWC", "HWIO", "NHWC"), (1, 1), (1, 1), 2),
    ],
    ids=["nhwc", "nchw-strided", "dilated-nchw-out", "grouped"],
)
def test_canonical_convolutions_compute_the_same_values_and_gradients(
    dimension_numbers, strides, dilation, groups
):
    rng = np.random.default_rng(0)
    lhs_spec, rhs_spec, _ = dimension_numbers
    sizes = {"N": 3, "H": 7, "W": 6, "C": 4}
    kernel = {"H": 3, "W": 2, "I": 4 // groups, "O": 6}
    x = rng.normal(size=[sizes[c] for c in lhs_spec]).astype(np.float32)
    w = rng.normal(size=[kernel[c] for c in rhs_spec]).astype(np.float32)

    def loss(w, x):
        y = jax.lax.conv_general_dilated(
            x,
            w,
            strides,
            "SAME",
            rhs_dilation=dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=groups,
        )
        return jnp.sum(jnp.sin(y)), y

    plain = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)
    canon = canonical_convs(plain)
    (value, y), grads = plain(w, x)
    (value2, y2), grads2 = jax.jit(canon)(w, x)
    np.testing.assert_allclose(y2, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value2, value, rtol=1e-5)
    for g2, g in zip(grads2, grads, strict=True):
        np.testing.assert_allclose(g2, g, rtol=1e-4, atol=1e-4)


def test_a_function_without_convolutions_is_left_as_it_is():
    def f(a, b):
        return {"sum": a @ b, "max": jnp.max(a)}

    a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    jaxpr = jax.make_jaxpr(canonical_convs(f))(a, b)
    assert jaxpr.eqns and str(jaxpr) == str(jax.make_jaxpr(f)(a, b))


def test_the_gradient_convolutions_inside_a_scan_are_in_the_canonical_layout():
    """The point of the rewrite: inside a while loop (XLA's CPU backend does not
    canonicalize there), no convolution is left in another layout."""
    x = np.ones((4, 6, 6, 2), np.float32)
    w = np.ones((3, 3, 2, 5), np.float32)

    def loss(w):
        y = jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return jnp.sum(y**2)

    def scanned(grad):
        return lambda w: jax.lax.scan(lambda w, _: (w - 1e-3 * grad(w), None), w, None, 3)[0]

    def dims(grad):
        text = jax.jit(scanned(grad)).lower(w).as_text()
        return set(re.findall(r"dim_numbers = (\[[^\]]*\]x\[[^\]]*\]->\[[^\]]*\])", text))

    assert dims(canonical_convs(jax.grad(loss))) == {"[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]"}
    assert len(dims(jax.grad(loss))) > 1  # without it: the weight gradient's other layout


def test_arguments_that_are_not_arrays_stay_python_values():
    """``training=True`` reaches the model as a bool (dropout branches on it in Python)."""
    x = np.ones((2, 5, 5, 3), np.float32)
    w = np.ones((3, 3, 3, 4), np.float32)

    def f(w, x, training):
        y = jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return jnp.sum(y) * (2.0 if training else 1.0)

    grad = jax.grad(f)
    for training in (True, False):
        np.testing.assert_allclose(
            jax.jit(canonical_convs(grad), static_argnums=2)(w, x, training),
            grad(w, x, training),
            rtol=1e-6,
        )
