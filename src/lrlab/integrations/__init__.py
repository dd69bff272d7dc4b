"""Thin adapters from lrlab schedules to Keras, PyTorch and optax."""
