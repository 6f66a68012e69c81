"""search/models.py: any config, any input size, output shape = input shape."""

from __future__ import annotations

import numpy as np
import pytest

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
        assert np.all((y >= 0) & (y <= 1))  # sigmoid output


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
