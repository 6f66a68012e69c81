"""spaces/notation.py: the study's notation, parsed and printed back."""

from __future__ import annotations

import itertools

import pytest

from spaces.config import ConfigError, ModelConfig
from spaces.notation import (
    NotationError,
    compress,
    describe,
    expand,
    format_layers,
    format_row,
    parse_dropout,
    parse_layers,
    parse_pool,
    parse_row,
)
from spaces.study import architecture, study_rows


@pytest.mark.parametrize(
    ("values", "n", "expected"),
    [
        ([16, 8, 8], 3, (16, 8, 8)),  # one value per layer
        ([16], 4, (16, 16, 16, 16)),  # one value for all
        ([16, 8, 8], 6, (16, 8, 8, 8, 8, 16)),  # the encoder half, mirrored
        ([16, 8, 4], 5, (16, 8, 4, 8, 16)),  # odd depth: the middle layer is not repeated
        ([784, 21952], 6, (784, 21952, 21952, 21952, 21952, 784)),  # a short half is padded
    ],
)
def test_expand(values, n, expected):
    assert expand(values, n) == expected


def test_expand_and_compress_round_trip_every_small_layout():
    """Any per-layer values print canonically and expand back to themselves."""
    for n in range(1, 7):
        for values in itertools.product((4, 8, 16), repeat=n):
            written = compress(values)
            assert expand(list(written), n) == values
            assert compress(expand(list(written), n)) == written


def test_compress_is_canonical():
    assert compress((16,) * 6) == (16,)
    assert compress((16, 8, 8, 8, 8, 16)) == (16, 8, 8)
    assert compress((32, 32, 64, 128)) == (32, 32, 64, 128)
    assert compress((8, 16)) == (8, 16)  # two layers are never "a mirrored half"


def test_expand_errors():
    with pytest.raises(NotationError, match=r"6L with 5 filter counts .*give 1, 6, or at most 3"):
        expand([1, 2, 3, 4, 5], 6, what="filter counts")
    with pytest.raises(NotationError, match="at least one layer, got 0L"):
        expand([8], 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("6L,16F", "is not in the study's notation"),
        ("conv 16", "is not in the study's notation"),
        ("3L,16F(3X5)", r"only square kernels are supported, got 3X5"),
        ("2L(28**28, 5)", "is not a width"),
        ("6L,1,2,3,4,5F(3X3)", "give 1, 6, or at most 3"),
    ],
)
def test_parse_layers_errors(text, message):
    with pytest.raises(NotationError, match=message):
        parse_layers(text)


def test_parse_column_errors():
    with pytest.raises(NotationError, match="not a pooling count"):
        parse_pool("2+3")
    with pytest.raises(NotationError, match="not a dropout entry"):
        parse_dropout("two")
    with pytest.raises(NotationError, match="not a batchnorm layer count"):
        parse_row("4L,16F(3X3)", 0, 0, "x")


def test_parse_row_refuses_impossible_layouts():
    """Valid notation can still describe an impossible model: ModelConfig says why."""
    with pytest.raises(ConfigError, match="2 pooling\\+upsampling pairs need at least 4 conv"):
        parse_row("3L,16F(3X3)", "2+2")
    with pytest.raises(ConfigError, match=r"dropout layers \(5\) must be between 0 and 4"):
        parse_row("4L,16F(3X3)", 0, "5 (p=0.2)")


def test_columns_in_all_written_forms():
    assert parse_pool("1") == parse_pool("1+1") == parse_pool("1+1 (2X2)") == 1
    assert parse_pool("0") == parse_pool("") == parse_pool(None) == 0
    assert parse_dropout("2 (p=0.4)") == parse_dropout("2(p=0.4)") == (2, 0.4)
    assert parse_dropout("3") == (3, 0.2)
    dense = parse_layers("6L(28*28)(28*28*28)")
    assert dense["dense_widths"] == (784, 21952, 21952, 21952, 21952, 784)


def test_format_row_and_describe():
    config = parse_row("5L, 16,8,8, 4,4F(5X5)", "2+2 (2X2)", "1(p=0.3)", 2, task="text")
    assert format_row(config) == {
        "layers": "5L,16,8,8,4,4F(5X5)",
        "pool_upsample": "2+2",
        "dropout": "1 (p=0.3)",
        "batchnorm": "2",
    }
    assert describe(config) == "5L,16,8,8,4,4F(5X5) pool 2+2 dropout 1 (p=0.3) bn 2"
    dense = ModelConfig(task="mnist", family="dense", filters=(), dense_widths=(784, 21952, 784))
    assert format_layers(dense) == "3L(28*28, 28*28*28)"  # mirrored: the encoder half
    assert format_row(dense)["pool_upsample"] == ""


@pytest.mark.parametrize("study_row", study_rows(), ids=lambda r: r.id)
def test_every_table_row_round_trips(study_row):
    """Printing a row's config and parsing it again gives the same model."""
    config = study_row.config
    again = parse_row(**format_row(config), task=config.task)
    assert architecture(again) == architecture(config)
    assert format_row(again) == format_row(config)
