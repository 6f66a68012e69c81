"""ModelConfig.skip: validation, JSON, old configs, notation and study-row matching."""

from __future__ import annotations

import json

import pytest

from spaces.config import ConfigError, ModelConfig
from spaces.notation import describe, parse_row
from spaces.study import match, row


@pytest.mark.parametrize("value", [1, 0, "true", "false", None, 1.0])
def test_skip_must_be_a_real_bool(value):
    with pytest.raises(ConfigError, match=r"skip must be true or false, got"):
        ModelConfig(skip=value)


def test_dense_models_have_no_skip():
    with pytest.raises(ConfigError, match=r"skip connections are for conv models.*skip=False"):
        ModelConfig(family="dense", filters=(), dense_widths=(8, 784), skip=True)
    assert not ModelConfig(family="dense", filters=(), dense_widths=(8, 784)).skip


def test_skip_round_trips_through_json():
    config = parse_row("6L,32F(3X3)", "2+2", skip=True)
    assert config.to_dict()["skip"] is True
    assert ModelConfig.from_json(config.to_json()) == config
    assert ModelConfig.from_json(config.replace(skip=False).to_json()).skip is False


def test_configs_saved_before_skip_load_without_it():
    old = json.loads(ModelConfig(filters=(4, 4), pool=1).to_json())
    del old["skip"]
    assert ModelConfig.from_dict(old) == ModelConfig(filters=(4, 4), pool=1, skip=False)


def test_describe_ends_with_skip():
    config = parse_row("6L,32F(3X3)", "2+2", skip=True)
    assert describe(config) == "6L,32F(3X3) pool 2+2 skip"
    assert describe(config.replace(skip=False)) == "6L,32F(3X3) pool 2+2"
    assert describe(ModelConfig(filters=(8,), batchnorm=1, skip=True)) == "1L,8F(3X3) bn 1 skip"


def test_a_skip_model_replays_no_study_row():
    best = row("text/3.3/5").config
    assert match(best) is not None
    assert match(best.replace(skip=True)) is None
