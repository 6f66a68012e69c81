"""Config -> compiled Keras 3 autoencoder. Knows Keras; never sees Ray or Optuna.

Conv models are fully convolutional (built for `(None, None)` inputs where the task's sizes vary,
e.g. document pages 258 or 420 high), so one model trains on patches and validates on whole pages.
Pooling never fails on sizes not divisible by 2^k: the input is zero-padded up to a multiple of
2^pool and the output cropped back, so output shape always equals input shape.
Skip connections (`config.skip`) are Concatenate layers placed where `conv_layout` says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

from search.precision import FLOAT32, OUTPUT_DTYPE, dtype_policy
from spaces.config import (
    SKIP_INPUT,
    ConfigError,
    ModelConfig,
    conv_layout,
    dense_layout,
)

LOSSES = {"mse": "mean_squared_error", "bce": "binary_crossentropy", "mae": "mean_absolute_error"}
OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


@keras.saving.register_keras_serializable(package="aesearch")
class PadToMultiple(layers.Layer):
    """Zero-pads height and width (bottom/right) up to a multiple of `multiple`."""

    def __init__(self, multiple: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x: Any) -> Any:
        shape = ops.shape(x)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        return ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        def up(d: int | None) -> int | None:
            return None if d is None else -(-d // self.multiple) * self.multiple

        return (input_shape[0], up(input_shape[1]), up(input_shape[2]), input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="aesearch")
class CropTo(layers.Layer):
    """Crops `inputs[0]` to the height and width of `inputs[1]` (undoes PadToMultiple)."""

    def call(self, inputs: list[Any]) -> Any:
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shapes: list[tuple]) -> tuple:
        x, reference = input_shapes
        return (x[0], reference[1], reference[2], x[3])


def _conv(config: ModelConfig, inputs: Any) -> Any:
    x = PadToMultiple(2**config.pool)(inputs) if config.pool else inputs
    # Pre-pooling outputs by layer index, for skips: taken after the padding, so a decoder
    # level's upsampled tensor always has exactly their height and width.
    kept: dict[int | str, Any] = {SKIP_INPUT: x}
    for i, spec in enumerate(conv_layout(config)):
        x = layers.Conv2D(spec["filters"], config.kernel, activation="relu", padding="same")(x)
        if spec["batchnorm"]:
            x = layers.BatchNormalization()(x)
        if spec["dropout"]:
            x = layers.Dropout(config.dropout_rate)(x)
        if spec["pool"]:
            kept[i] = x
            x = layers.MaxPooling2D(2)(x)
        if spec["upsample"]:
            x = layers.UpSampling2D(2)(x)
        if spec["skip_from"] is not None:
            x = layers.Concatenate(axis=-1)([x, kept[spec["skip_from"]]])
    x = layers.Conv2D(1, config.kernel, activation="sigmoid", padding="same",
                      dtype=OUTPUT_DTYPE)(x)
    return CropTo(dtype=OUTPUT_DTYPE)([x, inputs]) if config.pool else x


def _dense(config: ModelConfig, inputs: Any, height: int | None, width: int | None) -> Any:
    if height is None or width is None:
        raise ConfigError(
            "dense models need one fixed input size, but this task's images vary in size "
            "(document pages are 258 or 420 high): use --resize 420x540, or a conv model"
        )
    if config.dense_widths[-1] != height * width:
        raise ConfigError(
            f"the last dense width is the output layer and must be {height}*{width}="
            f"{height * width} for {height}x{width} images, got {config.dense_widths[-1]}"
        )
    x = layers.Flatten()(inputs)
    for spec in dense_layout(config):
        activation = "sigmoid" if spec["output"] else "relu"
        dtype = OUTPUT_DTYPE if spec["output"] else None
        x = layers.Dense(spec["width"], activation=activation, dtype=dtype)(x)
        if spec["batchnorm"]:
            x = layers.BatchNormalization()(x)
        if spec["dropout"]:
            x = layers.Dropout(config.dropout_rate)(x)
    return layers.Reshape((height, width, 1), dtype=OUTPUT_DTYPE)(x)


FAMILIES = {"conv": lambda config, inputs, h, w: _conv(config, inputs), "dense": _dense}


def build_model(
    config: ModelConfig, input_shape: tuple[int | None, int | None], *, compile: bool = True,
    precision: str = FLOAT32,
) -> keras.Model:
    """The autoencoder for `config` on greyscale images of `input_shape` (None = any size),
    its layers computing in `precision` (a Keras dtype policy; the output in float32)."""
    height, width = input_shape
    with dtype_policy(precision):
        inputs = keras.Input(shape=(height, width, 1), name="image")
        outputs = FAMILIES[config.family](config, inputs, height, width)
        model = keras.Model(inputs, outputs, name=f"{config.family}_autoencoder")
    if compile:
        model.compile(
            optimizer=OPTIMIZERS[config.optimizer](learning_rate=config.lr),
            loss=LOSSES[config.loss],
            metrics=[keras.metrics.MeanSquaredError(name="mse")],
        )
    return model


def load_model(path: str | Path) -> keras.Model:
    """Load a saved autoencoder (this module registers the custom layers it needs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    return keras.saving.load_model(path)
