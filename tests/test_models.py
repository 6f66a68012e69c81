"""search/models.py: any config, any input size, output shape = input shape."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from search.data import DataOptions, load_task
from search.models import build_model, load_model
from spaces.config import ConfigError, ModelConfig
from spaces.notation import parse_row

SHAPES = [(28, 28), (258, 540), (420, 540)]

CONV = {
    "plain": parse_row("4L,32,32,64,128F(3X3)"),
    "classic 3+3": parse_row("6L,16,8,8F(3X3)", "3+3"),
    "pool, dropout, bn": parse_row("14L,4F(3X3)", "1", "2 (p=0.2)", 6),
    "4+4 on odd sizes, 5x5": parse_row("8L,2F(5X5)", "4+4"),
}


@pytest.mark.parametrize("name", CONV)
@pytest.mark.parametrize("shape", SHAPES)
def test_conv_output_shape_equals_input_shape(name, shape):
    config = CONV[name].replace(task="text" if shape[0] > 28 else "mnist")
    for built_for in (shape, (None, None)):
        model = build_model(config, built_for, compile=False)
        x = np.random.default_rng(0).uniform(size=(2, *shape, 1)).astype("float32")
        y = model.predict_on_batch(x)
        assert y.shape == x.shape


@pytest.mark.parametrize("shape", SHAPES)
def test_dense_output_shape_equals_input_shape(shape):
    height, width = shape
    config = parse_row(f"3L(8, 4, {height * width})", dropout="1 (p=0.2)", batchnorm=1)
    model = build_model(config, shape, compile=False)
    x = np.zeros((1, height, width, 1), "float32")
    assert model.predict_on_batch(x).shape == x.shape


def test_dense_output_width_must_match_the_image():
    with pytest.raises(ConfigError, match=r"must be 28\*28=784"):
        build_model(parse_row("3L(2000, 2000, 226800)"), (28, 28))


def test_dense_needs_a_fixed_input_size():
    with pytest.raises(ConfigError, match="--resize 420x540"):
        build_model(parse_row("2L(8, 226800)"), (None, 540))


def test_saved_model_round_trips_with_its_custom_layers(tmp_path):
    config = ModelConfig(filters=(2, 2), pool=1, epochs=1)
    model = build_model(config, (None, None))
    x = np.random.default_rng(1).uniform(size=(1, 37, 61, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        load_model(tmp_path / "missing.keras")


def test_loss_and_optimizer_follow_the_config():
    model = build_model(ModelConfig(filters=(2,), loss="bce", optimizer="rmsprop", lr=0.01),
                        (28, 28))
    assert model.loss == "binary_crossentropy"
    assert type(model.optimizer).__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


# --- skip connections (ModelConfig.skip) -----------------------------------------------------

SKIP_SHAPES = [(28, 28), (37, 53), (258, 540), (420, 540)]


@pytest.mark.parametrize("pool", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", SKIP_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_skip_output_shape_equals_input_shape(pool, shape):
    """Encoder tensors are kept after the padding, so every level's concat lines up."""
    depth = 2 * pool + 1 if pool else 2  # an odd depth: one layer between the halves
    config = ModelConfig(task="text" if shape[0] > 28 else "mnist", filters=(2,) * depth,
                         pool=pool, skip=True)
    x = np.random.default_rng(2).uniform(size=(1, *shape, 1)).astype("float32")
    for built_for in (shape, (None, None)):
        model = build_model(config, built_for, compile=False)
        assert len(_concats(model)) == max(pool, 1)
        y = model.predict_on_batch(x)
        assert y.shape == x.shape


def _concats(model: keras.Model) -> list[keras.layers.Concatenate]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]


def _source(tensor) -> keras.layers.Layer:
    return tensor._keras_history.operation


def test_unet_skips_pair_the_last_pooled_level_with_the_first_upsampled():
    config = parse_row("6L,2,4,8,16,32,64F(3X3)", "2+2", skip=True)
    model = build_model(config, (28, 28), compile=False)
    concats = _concats(model)
    # layer 4 (32 filters) upsampled to 14x14 meets layer 1 (4), layer 5 (64) at 28x28 meets 0 (2)
    assert [tuple(c.output.shape[1:]) for c in concats] == [(14, 14, 36), (28, 28, 66)]
    for concat, (filters, kept) in zip(concats, [(32, 4), (64, 2)], strict=True):
        upsampled, encoder = (_source(t) for t in concat.input)
        assert isinstance(upsampled, keras.layers.UpSampling2D)
        assert isinstance(encoder, keras.layers.Conv2D) and encoder.filters == kept
        assert _source(upsampled.input).filters == filters
    assert not _concats(build_model(config.replace(skip=False), (28, 28), compile=False))


def test_input_skip_without_pooling_concatenates_the_image_after_bn_and_dropout():
    config = parse_row("3L,4F(3X3)", 0, "3 (p=0.1)", 3, skip=True)
    model = build_model(config, (None, None), compile=False)
    (concat,) = _concats(model)
    assert concat.input[1] is model.inputs[0]
    assert isinstance(_source(concat.input[0]), keras.layers.Dropout)
    assert concat.output.shape[-1] == 5
    output = model.layers[-1]
    assert isinstance(output, keras.layers.Conv2D) and _source(output.input) is concat


def test_skip_parameters_by_hand():
    """4L,8F(3X3) 2+2: the two upsampled convs' successors see 8 + 8 channels."""
    config = parse_row("4L,8F(3X3)", "2", skip=True)
    # 80 + 584 + 584 + conv3 on 16 channels 9*16*8+8 = 1160 + output on 16: 9*16+1 = 145
    assert build_model(config, (28, 28)).count_params() == 2553
    assert build_model(config.replace(skip=False), (28, 28)).count_params() == 1905
    # input skip: 9*1*8+8 + output on 8+1 channels 9*9+1
    assert build_model(ModelConfig(filters=(8,), skip=True), (28, 28)).count_params() == 162


@pytest.mark.parametrize("pool", [0, 2])
def test_saved_skip_model_round_trips(tmp_path, pool):
    config = ModelConfig(filters=(3, 2, 2, 3), pool=pool, batchnorm=2, dropout=1, skip=True)
    model = build_model(config, (None, None))
    x = np.random.default_rng(3).uniform(size=(2, 37, 61, 1)).astype("float32")
    model.save(tmp_path / "skip.keras")
    loaded = load_model(tmp_path / "skip.keras")
    assert len(_concats(loaded)) == max(pool, 1)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-6)


def test_tiny_skip_model_trains_on_real_mnist(data_dir):
    keras.utils.set_random_seed(0)
    data = load_task("mnist-denoise", DataOptions(data_dir=data_dir, subset=200, val_subset=50))
    (x, y), (x_val, y_val) = data.train[0], data.val[0]
    config = ModelConfig(task="mnist-denoise", filters=(4, 4), pool=1, skip=True, epochs=2,
                         batch_size=32)
    model = build_model(config, data.input_shape)
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=config.epochs,
                        batch_size=config.batch_size, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[1] < losses[0]
    assert np.isfinite(history.history["val_mse"][-1])
