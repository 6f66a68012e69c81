"""Which config choices mattered for val_mse, by Optuna's PED-ANOVA on the finished trials.

The sweep may not have used Optuna at all (grid, random, the study's rows), so an in-memory
Optuna study is rebuilt from the leaderboard alone. PED-ANOVA is Optuna's default evaluator
and the only one that needs no scikit-learn; it also accepts conditional parameters, which
matters here: kernel, pooling and filters exist only for conv models, widths only for dense.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

from results.leaderboard import ints_of
from spaces import constants as C
from spaces.notation import parse_dropout, parse_pool

MIN_TRIALS = 8  # below this, top-quantile densities rest on one or two trials
TOP_TRIALS = 5  # PED-ANOVA's docs advise at least 5 trials above the target quantile
COLUMNS = ["param", "importance"]
_LOG = frozenset({"lr", "batch_size", "filters_mean", "dense_width_mean"})


def trial_params(row: pd.Series) -> dict[str, Any]:
    """The varied quantities of one leaderboard row, as Optuna parameters.

    Parameters that do not apply to the row's family are left out (conditional parameters).
    """
    conv = row["family"] == "conv"
    widths = ints_of(row["dense_widths"])
    params: dict[str, Any] = {
        "family": row["family"],
        "depth": int(row["conv_layers"]) if conv else len(widths),
        "dropout": parse_dropout(row["dropout"])[0],
        "batchnorm": int(row["batchnorm"]),
        "lr": float(row["lr"]),
        "batch_size": int(row["batch_size"]),
        "loss": row["loss"],
    }
    if conv:
        filters = ints_of(row["filters"])
        params |= {
            "filters_mean": sum(filters) / len(filters),
            "kernel": int(row["kernel"]),
            "pool": parse_pool(row["pool_upsample"]),
        }
    elif len(widths) > 1:
        hidden = widths[:-1]
        params["dense_width_mean"] = sum(hidden) / len(hidden)
    return params


def _distribution(name: str, values: list[Any]) -> BaseDistribution:
    if isinstance(values[0], str):
        return CategoricalDistribution(sorted(set(values)))
    log = name in _LOG and min(values) > 0
    if all(isinstance(v, int) for v in values):
        return IntDistribution(min(values), max(values), log=log)
    return FloatDistribution(float(min(values)), float(max(values)), log=log)


def _empty(reason: str) -> pd.DataFrame:
    frame = pd.DataFrame({"param": pd.Series(dtype="str"), "importance": pd.Series(dtype="float")})
    frame.attrs["reason"] = reason
    return frame


def param_importances(board: pd.DataFrame) -> pd.DataFrame:
    """(param, importance) for val_mse, most important first, importances summing to 1.

    Uses the finished trials with a val_mse. With too few of them, or nothing varied, the
    frame is empty and `frame.attrs["reason"]` says why.
    """
    done = board[board["status"].isin(C.FINISHED) & board[C.VAL_MSE].notna()]
    done = done[done[C.VAL_MSE].map(math.isfinite)]
    if len(done) < MIN_TRIALS:
        return _empty(
            f"only {len(done)} finished trial(s) with a {C.VAL_MSE}; "
            f"parameter importance needs at least {MIN_TRIALS}"
        )
    rows = [trial_params(row) for _, row in done.iterrows()]
    values: dict[str, list[Any]] = {}
    for params in rows:
        for name, value in params.items():
            values.setdefault(name, []).append(value)
    varied = {name: v for name, v in values.items() if len(set(v)) > 1}
    if not varied:
        return _empty(f"the {len(done)} finished trials share one config: nothing varied")
    distributions = {name: _distribution(name, v) for name, v in varied.items()}

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    try:
        study = optuna.create_study(direction="minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials(
        optuna.trial.create_trial(
            params={k: v for k, v in params.items() if k in distributions},
            distributions={k: distributions[k] for k in params if k in distributions},
            value=float(mse),
        )
        for params, mse in zip(rows, done[C.VAL_MSE], strict=True)
    )
    # Aim for TOP_TRIALS trials in the top quantile, between 10% and half of the trials.
    quantile = min(0.5, max(0.1, TOP_TRIALS / len(rows)))
    evaluator = PedAnovaImportanceEvaluator(target_quantile=quantile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "the importances will be equal" on flat data
        importances = get_param_importances(study, evaluator=evaluator)
    frame = pd.DataFrame(list(importances.items()), columns=COLUMNS)
    frame = frame.sort_values("importance", ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    frame.attrs["trials"] = len(rows)
    frame.attrs["reason"] = ""
    return frame
