"""The study's table notation, parsed into and printed from `ModelConfig`.

The study writes one table row as four columns:

    Conv2D                   MaxPooling2D+UpSampling2D   Dropout      BatchNormalization
    6L,16,8,8F(3X3)          3+3                         0            0
    5L, 16,8,8, 4,4F(5X5)    2+2 (2X2)                   0            0
    14L,16F(3X3)             1                           2 (p=0.2)    6
    3L(2000, 2000, 226800)   (dense: no pooling column)  2(p=0.2)     2

Ambiguities, decided here and nowhere else:
- A list of m values for n layers expands as: m == n, as written; m == 1, repeated n times;
  1 < m <= ceil(n/2), an encoder half mirrored into the decoder (`6L,16,8,8F` is the classic
  16,8,8 | 8,8,16; `6L(28*28)(28*28*28)` pads the half with its last value: 784,21952,21952 |
  21952,21952,784). Anything else is an error.
- Printing is canonical: one value when all layers agree, the encoder half when the layers
  mirror, else every layer. So every study row prints back as written, modulo spacing, except
  the dense `(a)(b)` form, which prints as its padded half `(a, b, b)`.
- Pooling `k`, `k+k` and `k+k (2X2)` all mean k pairs of 2x2 MaxPooling2D and UpSampling2D;
  it prints as `k+k` (`0` for none).
- Dense widths may be written as products (`28*28`); for the MNIST tasks, widths that are powers
  of 28 print that way, as the study did. The last dense width is the output layer.
- The final sigmoid Conv2D(1) of conv models is not counted, as in the study.
- Skip connections (`ModelConfig.skip`, never in the study's rows) have no table column;
  `describe` ends with ` skip` for them, e.g. `6L,32F(3X3) pool 2+2 skip`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from spaces.config import MAX_DENSE_WIDTH, MAX_DEPTH, ConfigError, ModelConfig, shown

# ASCII digits only: `\d` would also match other scripts' digits, and str.isdigit superscripts
# such as '²' that int() refuses.
_FLAGS = re.IGNORECASE | re.ASCII
_CONV = re.compile(r"^(\d+)L,([\d,]+)F\((\d+)X(\d+)\)$", _FLAGS)
_DENSE = re.compile(r"^(\d+)L((?:\([\d*,]+\))+)$", _FLAGS)
_POOL = re.compile(r"^(\d+)(?:\+(\d+))?(?:\(2X2\))?$", _FLAGS)
_DROPOUT = re.compile(r"^(\d+)(?:\(p=([0-9.eE+-]+)\))?$", _FLAGS)
_COUNT = re.compile(r"^\d+$", _FLAGS)
# describe()'s one line: the layers, then optional "pool", "dropout" and "bn" parts.
_DESCRIPTION = re.compile(
    r"^(?P<layers>.+?)(?:\s+pool\s+(?P<pool>\S+?(?:\s*\(2X2\))?))?"
    r"(?:\s+dropout\s+(?P<dropout>\d+(?:\s*\(p=[^)]*\))?))?(?:\s+bn\s+(?P<bn>\S+))?"
    r"(?P<skip>\s+skip)?\s*$",
    _FLAGS,
)
_MAX_DIGITS = 12  # far above every bound; int() of 4301+ digits would raise a bare ValueError
_MNIST_SIDE = 28


class NotationError(ConfigError):
    """Text that is not in the study's notation."""


def _squash(text: str | int) -> str:
    return re.sub(r"\s+", "", str(text))


def _number(token: str, what: str) -> int:
    """An ASCII-digit token as an int, refusing (with `what`) tokens too long to be sane."""
    if len(token) > _MAX_DIGITS or not _COUNT.match(token):
        raise NotationError(f"{what} {shown(token)} is not a number of at most {_MAX_DIGITS} "
                            f"digits")
    return int(token)


def expand(values: list[int], n: int, *, what: str = "values") -> tuple[int, ...]:
    """Expand a written list of m values to n layers (see the module docstring)."""
    m = len(values)
    if n < 1:
        raise NotationError(f"a model needs at least one layer, got {n}L")
    if n > MAX_DEPTH or m > MAX_DEPTH:  # checked before a tuple of n values is built
        raise NotationError(f"{n}L with {m} {what}: at most {MAX_DEPTH} layers are allowed")
    if m == n:
        return tuple(values)
    if m == 1:
        return tuple(values) * n
    half = math.ceil(n / 2)
    if 1 < m <= half:
        encoder = list(values) + [values[-1]] * (half - m)
        return tuple(encoder + encoder[: n // 2][::-1])
    raise NotationError(
        f"{n}L with {m} {what} {values}: give 1, {n}, or at most {half} (an encoder half)"
    )


def compress(values: tuple[int, ...]) -> tuple[int, ...]:
    """The canonical written form of per-layer values: inverse of `expand`."""
    n = len(values)
    if n and all(v == values[0] for v in values):
        return values[:1]
    half = math.ceil(n / 2)
    if n > 2 and values[half:] == values[: n // 2][::-1]:
        return values[:half]
    return values


def _parse_int_expr(token: str) -> int:
    """`784` or `28*28` -> 784; products stop growing once past MAX_DENSE_WIDTH."""
    width = 1
    for part in token.split("*"):
        if not _COUNT.match(part) or len(part) > _MAX_DIGITS:
            raise NotationError(
                f"{shown(token)} is not a width (an integer or a product like 28*28)")
        width *= int(part)
        if width > MAX_DENSE_WIDTH:
            raise NotationError(f"dense width {shown(token)} exceeds {MAX_DENSE_WIDTH} units")
    return width


def parse_layers(text: str) -> dict[str, Any]:
    """`6L,16F(3X3)` -> {family, filters, kernel}; `3L(2000,2000,226800)` -> dense widths."""
    s = _squash(text)
    if m := _CONV.match(s):
        n, listed = _number(m[1], "layer count"), m[2]
        k1, k2 = _number(m[3], "kernel"), _number(m[4], "kernel")
        if k1 != k2:
            raise NotationError(f"{shown(text)}: only square kernels are supported, got "
                                f"{k1}X{k2}")
        values = [_number(v, "filter count") for v in listed.strip(",").split(",") if v]
        return {"family": "conv", "filters": expand(values, n, what="filter counts"), "kernel": k1}
    if m := _DENSE.match(s):
        n = _number(m[1], "layer count")
        tokens = [t for t in re.split(r"[(),]+", m[2]) if t]
        widths = expand([_parse_int_expr(t) for t in tokens], n, what="widths")
        return {"family": "dense", "dense_widths": widths, "filters": ()}
    raise NotationError(
        f"{shown(text)} is not in the study's notation: expected e.g. '6L,16,8,8F(3X3)' (conv) "
        f"or '3L(2000, 2000, 226800)' (dense)"
    )


def parse_pool(text: str | int | None) -> int:
    s = _squash("" if text is None else text)
    if s in ("", "nan", "-"):
        return 0
    m = _POOL.match(s)
    if not m or (m[2] is not None and m[1] != m[2]):
        raise NotationError(
            f"{shown(text)} is not a pooling count: expected e.g. '0', '2+2' or '1'")
    return _number(m[1], "pooling count")


def parse_dropout(text: str | int | None, default_rate: float = 0.2) -> tuple[int, float]:
    s = _squash("" if text is None else text)
    if s in ("", "nan", "-"):
        return 0, default_rate
    m = _DROPOUT.match(s)
    if not m:
        raise NotationError(
            f"{shown(text)} is not a dropout entry: expected e.g. '0' or '2 (p=0.2)'")
    count = _number(m[1], "dropout count")
    if not m[2]:
        return count, default_rate
    try:
        return count, float(m[2])
    except ValueError:
        raise NotationError(f"dropout rate {shown(m[2])} in {shown(text)} is not a number"
                            ) from None


def parse_count(text: str | int | None, what: str = "batchnorm") -> int:
    s = _squash("" if text is None else text)
    if s in ("", "nan", "-"):
        return 0
    if not _COUNT.match(s):
        raise NotationError(f"{shown(text)} is not a {what} layer count")
    return _number(s, f"{what} count")


def parse_row(
    layers: str,
    pool_upsample: str | int | None = 0,
    dropout: str | int | None = 0,
    batchnorm: str | int | None = 0,
    **training: Any,
) -> ModelConfig:
    """One table row (its four architecture columns) plus training fields -> ModelConfig.

    The columns are named as `format_row` returns them, so `parse_row(**format_row(c))` works.
    """
    arch = parse_layers(layers)
    n_dropout, rate = parse_dropout(dropout)
    return ModelConfig(
        **arch,
        pool=parse_pool(pool_upsample) if arch["family"] == "conv" else 0,
        dropout=n_dropout,
        dropout_rate=rate,
        batchnorm=parse_count(batchnorm),
        **training,
    )


def _format_width(width: int, task: str) -> str:
    if task.startswith("mnist"):
        power, rest = 0, width
        while rest % _MNIST_SIDE == 0 and rest > 1:
            rest //= _MNIST_SIDE
            power += 1
        if rest == 1 and power >= 2:
            return "*".join([str(_MNIST_SIDE)] * power)
    return str(width)


def format_layers(config: ModelConfig) -> str:
    if config.family == "conv":
        listed = ",".join(str(f) for f in compress(config.filters))
        return f"{len(config.filters)}L,{listed}F({config.kernel}X{config.kernel})"
    listed = ", ".join(_format_width(w, config.task) for w in compress(config.dense_widths))
    return f"{len(config.dense_widths)}L({listed})"


def format_pool(config: ModelConfig) -> str:
    return f"{config.pool}+{config.pool}" if config.pool else "0"


def _format_rate(rate: float) -> str:
    """The rate as the study wrote it (0.2), or in full where that would not read back."""
    short = f"{rate:g}"
    return short if float(short) == rate else repr(rate)


def format_dropout(config: ModelConfig) -> str:
    return f"{config.dropout} (p={_format_rate(config.dropout_rate)})" if config.dropout else "0"


def format_row(config: ModelConfig) -> dict[str, str]:
    """The study's four architecture columns for one config."""
    return {
        "layers": format_layers(config),
        "pool_upsample": format_pool(config) if config.family == "conv" else "",
        "dropout": format_dropout(config),
        "batchnorm": str(config.batchnorm),
    }


def describe(config: ModelConfig) -> str:
    """A one-line summary in the study's notation, for logs and leaderboards."""
    parts = [format_layers(config)]
    if config.pool:
        parts.append(f"pool {format_pool(config)}")
    if config.dropout:
        parts.append(f"dropout {format_dropout(config)}")
    if config.batchnorm:
        parts.append(f"bn {config.batchnorm}")
    if config.skip:
        parts.append("skip")
    return " ".join(parts)


def parse(text: str, **training: Any) -> ModelConfig:
    """describe()'s one line back to a config: `6L,16,8,8F(3X3) pool 3+3 dropout 2 (p=0.2) bn 1`,
    with ` skip` at the end for skip connections.

    The training fields (task, loss, lr, ...) are not in the line, so they come as keywords.
    """
    s = " ".join(str(text).split())
    m = _DESCRIPTION.match(s)
    if not m:
        raise NotationError(f"{shown(text)} is not a model description such as "
                            f"'6L,16,8,8F(3X3) pool 3+3 dropout 2 (p=0.2) bn 1'")
    if m["skip"]:
        training = {**training, "skip": True}
    return parse_row(m["layers"], m["pool"], m["dropout"], m["bn"], **training)
