"""Sizes of a config's Keras model as Keras itself reports them, to check spaces/guard.py."""

from __future__ import annotations

import math

import keras

from search.models import build_model
from spaces.config import ModelConfig


def keras_sizes(config: ModelConfig, input_shape: tuple[int, int]) -> tuple[int, int]:
    """(count_params, float32 bytes of every layer output for one batch) of the built model."""
    model = build_model(config, input_shape, compile=False)
    values = sum(
        math.prod(layer.output.shape[1:])
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    )
    return model.count_params(), values * config.batch_size * 4
