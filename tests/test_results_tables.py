"""results/: the study's comparison tables, discoveries, the Pareto front and importance."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from sweep_files import TEXT_BEST, lr_driven_sweep, running_text_sweep, write_sweep, write_trial

from results import (
    ResultsError,
    comparison_table,
    discoveries,
    load_trials,
    param_importances,
    pareto_front,
    study_table,
)
from results.leaderboard import leaderboard
from results.render import cell, markdown_table
from results.tables import MSE, OURS, POOL, STUDY, marked_rows
from spaces import constants as C
from spaces.config import ModelConfig
from spaces.study import study_rows


@pytest.fixture
def board(tmp_path: Path) -> pd.DataFrame:
    return leaderboard(load_trials(running_text_sweep(tmp_path)))


def test_conv_table_holds_our_trials_then_the_studys_rows(board: pd.DataFrame) -> None:
    table = comparison_table(board, "conv")
    assert list(table.columns[:8]) == [
        "Model", "Source", "Conv2D", POOL, "Dropout", "BatchNormalization", MSE, "val RMSE",
    ]
    conv = board[board["family"] == "conv"]
    ours = table[table["Source"] == OURS]
    assert ours["Trial"].tolist() == conv[C.TRIAL_ID].tolist()
    assert ours["Rank"].tolist() == conv["rank"].tolist()
    assert ours["val RMSE"].tolist() == pytest.approx(conv[C.VAL_RMSE].tolist(), nan_ok=True)
    study = table[table["Source"] == STUDY]
    assert study["Trial"].tolist() == [r.id for r in study_rows("text") if r.family == "conv"]
    assert table.index[table["Source"] == STUDY].min() == len(ours)  # ours first
    rows = table.set_index("Trial")
    # Our replay of a study row, and the study's own row with its published figures.
    assert rows.loc["abcde_00000", "Model"] == "3.3/5"
    assert rows.loc["abcde_00000", "Conv2D"] == "4L,32,32,64,128F(3X3)"
    assert rows.loc["abcde_00000", MSE] == "0.0036/ 0.004"
    assert rows.loc["text/3.3/5", MSE] == "0.0014/ 0.0015"
    assert rows.loc["text/3.3/5", "Parameters"] == 103_073  # by the guard's arithmetic
    assert rows.loc["text/3.3/5", "val RMSE"] == pytest.approx(0.0015 ** 0.5)
    assert rows.loc["abcde_00001", "Model"] == "3.1/4"  # architecture matched, no report_id
    # One best per table: the study's 0.0015 beats our best 0.002.
    assert marked_rows(table) == [table.index[table["Trial"] == "text/3.3/5"][0]]
    assert rows.loc["text/3.3/5", "Model"] == "3.3/5**"
    # Not a study row: our rank.
    assert rows.loc["abcde_00002", "Model"] == "#2"
    assert rows.loc["abcde_00002", POOL] == "1+1"
    # The failed trial keeps its row but is never the marked best, though its val_mse is low.
    assert rows.loc["abcde_00003", "Model"] == "#5"


def test_without_the_study_our_best_is_marked(board: pd.DataFrame) -> None:
    table = comparison_table(board, "conv", study=False)
    assert set(table["Source"]) == {OURS}
    assert table["Model"].iloc[marked_rows(table)].tolist() == ["3.1/4**"]


def test_mnist_study_figures_are_bce_and_never_marked_best(tmp_path: Path) -> None:
    sweep = tmp_path / "m"
    write_sweep(sweep, "mnist", finished=True)
    write_trial(sweep, "mmmmm_00000", ModelConfig(task="mnist", filters=(8,), epochs=1),
                [0.9])  # worse than every study figure, yet the only comparable one
    table = comparison_table(leaderboard(load_trials(sweep)), "conv")
    assert table["Model"].iloc[marked_rows(table)].tolist() == ["#1**"]
    assert table.set_index("Trial").loc["mnist/1.2/2", "Status"] == "published (bce)"


def test_dense_table_has_no_pooling_column(board: pd.DataFrame) -> None:
    table = comparison_table(board, "dense")
    assert list(table.columns[:7]) == [
        "Model", "Source", "Dense", "Dropout", "BatchNormalization", MSE, "val RMSE",
    ]
    assert POOL not in table
    assert table[["Model", "Dense", "Trial"]].values.tolist()[0] == [
        "#4**", "2L(64, 226800)", "abcde_00004",
    ]
    assert (table["Source"] == STUDY).sum() == 4


def test_markdown_bolds_the_marked_row_and_formats_numbers(board: pd.DataFrame) -> None:
    table = comparison_table(board, "conv", study=False)
    lines = markdown_table(table, bold_rows=marked_rows(table)).splitlines()
    assert lines[0].startswith("| Model | Source | Conv2D | MaxPooling2D+UpSampling2D |")
    assert lines[2].startswith("| **3.1/4\\*\\*** | **ours** | **3L,32F(3X3)** |")
    assert "| **18,785** |" in lines[2]  # thousands separators
    assert "**" not in lines[3].replace("\\*", "")
    assert len(lines) == 2 + len(table)
    assert [cell(v) for v in (1234567, 0.000123456, 12345.6, 3.0, None)] == [
        "1,234,567", "0.0001235", "12,346", "3", ""]


def test_tables_refuse_mixed_tasks_and_unknown_families(board: pd.DataFrame) -> None:
    mixed = pd.concat([board, board.assign(task="mnist")], ignore_index=True)
    with pytest.raises(ResultsError, match="mixes tasks"):
        comparison_table(mixed, "conv")
    assert (comparison_table(mixed, "conv", task="mnist")["Source"] == OURS).sum() == 5
    with pytest.raises(ResultsError, match="family 'rnn'"):
        comparison_table(board, "rnn")


def test_discoveries_exclude_the_study_failed_and_unreported(board: pd.DataFrame) -> None:
    found = discoveries(board, k=5)
    assert found[C.TRIAL_ID].tolist() == ["abcde_00002", "abcde_00004"]
    assert found[C.VAL_MSE].tolist() == [0.0025, 0.05]
    assert discoveries(board, k=1)[C.TRIAL_ID].tolist() == ["abcde_00002"]


def test_discoveries_count_a_repeated_config_once(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_sweep(sweep, "text", finished=True)
    config = TEXT_BEST.replace(filters=(8, 8))
    write_trial(sweep, "ddddd_00000", config, [0.02, 0.01])
    write_trial(sweep, "ddddd_00001", config, [0.03, 0.02])  # same config, another seed
    write_trial(sweep, "ddddd_00002", config.replace(lr=1e-2), [0.04, 0.03])
    found = discoveries(leaderboard(load_trials(sweep)), k=5)
    assert found[C.TRIAL_ID].tolist() == ["ddddd_00000", "ddddd_00002"]


def test_study_table_marks_the_study_best() -> None:
    table = study_table("text")
    assert len(table) == 24
    assert table["Model"].iloc[marked_rows(table)].tolist() == ["3.3/5**"]
    assert table.set_index("Id").loc["text/3.3/5", MSE] == "0.0014/ 0.0015"
    mnist = study_table("mnist").set_index("Id")
    assert mnist.loc["mnist/1.3/5", MSE] == "1.8511/ 1.8399"  # the study's figures in full
    assert study_table("mnist-denoise")["Model"].iloc[
        marked_rows(study_table("mnist-denoise"))
    ].tolist() == ["2.2/3**"]


def test_pareto_front_by_hand() -> None:
    points = pd.DataFrame(
        {
            "params": [10, 10, 10, 5, 30, 30, 40, 50, math.nan, 60],
            "val_mse": [0.5, 0.5, 0.7, 0.9, 0.2, 0.5, 0.2, 0.1, 0.01, math.nan],
        },
        index=list("abcdefghij"),
    )
    # a, b tie (both kept); c is beaten by a at equal size; f and g by e; i, j lack a value.
    front = pareto_front(points)
    assert list(front.index) == ["d", "a", "b", "e", "h"]
    assert front["params"].is_monotonic_increasing
    assert pareto_front(points, x="val_mse", y="params").index.tolist() == ["h", "e", "a", "b",
                                                                            "d"]
    with pytest.raises(KeyError, match="no column 'seconds'"):
        pareto_front(points, x="seconds")


def test_pareto_front_of_one_and_of_none() -> None:
    single = pd.DataFrame({"params": [3], "val_mse": [0.1]})
    assert pareto_front(single).index.tolist() == [0]
    assert pareto_front(single.iloc[:0]).empty


def test_importance_finds_the_driving_parameter(tmp_path: Path) -> None:
    board = leaderboard(load_trials(lr_driven_sweep(tmp_path, trials=16)))
    importance = param_importances(board)
    assert list(importance.columns) == ["param", "importance"]
    assert importance["importance"].sum() == pytest.approx(1.0)
    assert importance["param"].iloc[0] == "lr"
    assert importance["importance"].iloc[0] > 0.5
    assert {"depth", "kernel", "batch_size", "batchnorm", "filters_mean"} <= set(
        importance["param"]
    )
    assert "loss" not in set(importance["param"])  # never varied, so left out
    assert importance.attrs["trials"] == 16


def test_importance_explains_when_it_cannot_run(tmp_path: Path) -> None:
    board = leaderboard(load_trials(lr_driven_sweep(tmp_path / "few", trials=3)))
    few = param_importances(board)
    assert few.empty and "only 3 finished trial(s)" in few.attrs["reason"]

    sweep = tmp_path / "same"
    write_sweep(sweep, "text", finished=True)
    for i in range(9):
        write_trial(sweep, f"eeeee_{i:05d}", TEXT_BEST, [0.01 + i / 1000])
    same = param_importances(leaderboard(load_trials(sweep)))
    assert same.empty and "nothing varied" in same.attrs["reason"]


def test_importance_skips_running_and_failed_trials(board: pd.DataFrame) -> None:
    # 3 TERMINATED trials with a val_mse; the running and failed ones do not count.
    assert "only 3 finished trial(s)" in param_importances(board).attrs["reason"]


def test_plot_inputs_state_budgets_and_the_studys_replayed_points(board: pd.DataFrame,
                                                                   tmp_path: Path) -> None:
    from results.generator import _model_title, _our_budget, _study_budget, _study_points
    from spaces.study import row

    points = _study_points(board)  # text/3.3/5 and text/3.1/4 (matched by architecture)
    assert sorted(points["id"]) == ["text/3.1/4", "text/3.3/5"]
    assert points.set_index("id").loc["text/3.3/5", C.PARAMS] == 103_073
    assert _study_budget(row("mnist/1.2/2")) == (
        "50 epochs x 60,000 images = 3,000,000 images, batch 128")
    curve = pd.DataFrame({"cum_epochs": [0.5, 2.5]})
    assert _our_budget(curve, {"epoch_size": 400}) == (
        "epochs of 400 images; 2.5 trial-epochs = 1,000 images in all")
    best = tmp_path / "best"
    best.mkdir()
    assert _model_title(best) == ""
    (best / C.NOTATION_FILE).write_text("3L,32F(3X3)\n")
    (best / C.METRICS_FILE).write_text('{"val_mse": 0.00123456}')
    assert _model_title(best) == "best model: 3L,32F(3X3) (val_mse 0.001235)"
