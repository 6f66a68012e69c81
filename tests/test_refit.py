"""The finalists stage (`aesearch refit SWEEP_DIR`): its plan, its refusals, its table, and
(slow) a real sweep refitted end to end on Ray, resumed, and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from results.finalists import finalist_vs_study, finalists_table, verdict
from search import refit, splits
from search.data import DataOptions, load_task
from search.lock import NameLock
from spaces import constants as C
from spaces.config import ModelConfig
from tests.conftest import refused

REPO = Path(__file__).resolve().parent.parent
SMALL = ModelConfig(task="mnist", filters=(4, 4), epochs=1, batch_size=64, loss="bce")
OTHER = SMALL.replace(filters=(8, 8))


def _trial(sweep: Path, name: str, model: ModelConfig, val_mse: float) -> None:
    trial = sweep / name
    trial.mkdir(parents=True)
    (trial / C.PARAMS_FILE).write_text(json.dumps({C.MODEL_KEY: model.to_dict()}))
    report = {C.EPOCH: 1.0, C.VAL_MSE: val_mse, C.VAL_RMSE: val_mse ** 0.5, C.PARAMS: 100,
              C.TRIAL_ID: name.removeprefix("trial_"), C.NOTATION: "2L,4F(3X3)"}
    (trial / C.RESULT_FILE).write_text(json.dumps(report) + "\n")


def fake_sweep(folder: Path, data_dir: Path, *, trials: bool = True) -> Path:
    """A finished sweep's files, as a sweep leaves them (no Ray needed to read them)."""
    folder.mkdir(parents=True)
    data = DataOptions(data_dir=str(data_dir), subset=300, val_subset=100)
    meta = {"task": "mnist", "seed": 0, "precision": "float32", "finished": True,
            "data": {**data.__dict__, "resize": None}}
    (folder / C.SWEEP_FILE).write_text(json.dumps(meta))
    splits.record(folder, load_task("mnist", data).splits, resume=False)
    if trials:  # two trials of one config, and a worse one: two distinct candidates
        _trial(folder, "trial_aaaaa_00000", SMALL, 0.05)
        _trial(folder, "trial_aaaaa_00001", SMALL, 0.06)
        _trial(folder, "trial_aaaaa_00002", OTHER, 0.07)
    return folder


def test_the_plan_takes_distinct_configs_and_the_study_rows(tmp_path, data_dir):
    sweep = fake_sweep(tmp_path / "s", data_dir)
    stage = refit.plan(sweep, top_k=3, repeats=2, refit_epochs=4)
    assert [c.kind for c in stage.candidates] == [refit.SEARCH, refit.SEARCH, refit.STUDY]
    assert [c.search_val_mse for c in stage.candidates[:2]] == [0.05, 0.07]
    assert stage.candidates[2].source == "mnist/1.2/2"  # the study's best MNIST row
    assert (stage.epochs, stage.seeds, stage.data.subset) == (4, (0, 1), None)  # all images
    assert len(refit.run_grid(stage.candidates, stage.seeds)) == 6
    default = refit.plan(sweep)
    assert (default.epochs, default.repeats, default.top_k) == (50, 3, 3)  # the study's epochs
    recipe = refit.recipe_candidate(stage.candidates[2])
    assert recipe.model["loss"] == "bce" and recipe.kind == refit.STUDY_RECIPE


@pytest.mark.parametrize(("argv", "message"), [
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--refit-epochs", "nan"], "invalid int value: 'nan'"),
    (["--top-k", "-1"], "--top-k must be at least 1"),
    (["--study-rows", "mnist/9.9/9"], "no study row 'mnist/9.9/9'"),
    (["--study-rows", "text/3.3/5"], "text/3.3/5 is a text row; the sweep's task is mnist"),
    (["--task", "text"], "a sweep of --task mnist, not text"),
])
def test_bad_options_are_refused_with_exit_2(tmp_path, data_dir, capsys, argv, message):
    sweep = fake_sweep(tmp_path / "s", data_dir)
    assert message in refused(["refit", str(sweep), *argv], capsys)


def test_dirs_that_cannot_be_refitted_are_refused_naming_the_dir(tmp_path, data_dir, capsys):
    missing = tmp_path / "missing"
    assert f"{missing}: no such directory" in refused(["refit", str(missing)], capsys)
    (tmp_path / "plain").mkdir()
    assert "no sweep here" in refused(["refit", str(tmp_path / "plain")], capsys)
    damaged = fake_sweep(tmp_path / "damaged", data_dir)
    (damaged / C.SWEEP_FILE).write_text("{not json")
    assert f"{damaged}: {C.SWEEP_FILE} is damaged" in refused(["refit", str(damaged)], capsys)
    empty = fake_sweep(tmp_path / "empty", data_dir, trials=False)
    assert f"{empty}: no trial finished healthy" in refused(["refit", str(empty)], capsys)


def test_a_running_sweep_another_split_or_an_old_sweep_is_refused(tmp_path, data_dir,
                                                                  monkeypatch):
    import search.cluster

    monkeypatch.setattr(search.cluster, "connect", lambda *a, **k: pytest.fail("Ray started"))
    sweep = fake_sweep(tmp_path / "s", data_dir)
    stage = refit.plan(sweep, top_k=1, repeats=1, refit_epochs=1, subset=10, val_subset=10)
    with NameLock(sweep, "s"), pytest.raises(refit.FinalistsError,
                                             match=f"^{sweep}: a driver is running"):
        refit.run_plan(stage)
    other = load_task("mnist", DataOptions(data_dir=data_dir, subset=10, seed=5)).splits
    (sweep / C.SPLITS_FILE).write_text(json.dumps(other))
    with pytest.raises(splits.SplitError, match=f"^{sweep}: the finalists stage refused"):
        refit.run_plan(stage)
    (sweep / C.SPLITS_FILE).unlink()
    with pytest.raises(splits.SplitError, match="ran before the train/validation/test split"):
        refit.run_plan(stage)


def _runs(rows: dict[str, tuple[str, list[float], list[float]]]) -> pd.DataFrame:
    records = []
    for name, (kind, tests, vals) in rows.items():
        for seed, (test, val) in enumerate(zip(tests, vals, strict=True)):
            records.append({"candidate": name, "kind": kind, "source": "mnist/1.2/2"
                            if kind != "search" else "t", "seed": seed, C.NOTATION: name,
                            "status": "TERMINATED", C.VAL_MSE: val, C.TEST_MSE: test,
                            C.TEST_RMSE: np.sqrt(test), C.PARAMS: 10, C.SECONDS: 1.0})
    return pd.DataFrame.from_records(records)


def test_the_table_selects_on_validation_and_judges_against_the_study_row():
    runs = _runs({
        "search 1": ("search", [0.010, 0.011, 0.012], [0.030, 0.031, 0.032]),
        "search 2": ("search", [0.009, 0.0091, 0.0092], [0.020, 0.021, 0.022]),
        "search 3": ("search", [0.019, 0.021, 0.020], [0.05, 0.05, 0.05]),
        "study mnist/1.2/2": ("study", [0.020, 0.021, 0.019], [0.04, 0.04, 0.04]),
    })
    table = finalists_table(runs, {"candidates": [{"name": "search 1", "search_val_mse": 0.5}]})
    by = table.set_index("candidate")
    assert list(by["verdict"]) == ["better", "better", "within noise", "reference"]
    assert by.loc["search 2", "selected"] and not by.loc["search 1", "selected"]  # validation
    assert by.loc["search 1", "test_mse_mean"] == pytest.approx(0.011)
    assert by.loc["search 1", "test_mse_std"] == pytest.approx(0.001)
    assert by.loc["search 1", "search_val_mse"] == 0.5
    assert by.loc["study mnist/1.2/2", "study_figure"] == 0.0583
    assert finalist_vs_study(table) == pytest.approx(0.0091 / 0.020)


def test_a_collapsed_study_row_is_judged_by_its_recipe_run():
    runs = _runs({"search 1": ("search", [0.03, 0.031], [0.03, 0.03]),
                  "study mnist/1.2/2 (bce)": ("study, default recipe", [0.01, 0.011],
                                              [0.01, 0.01])})
    lost = _runs({"study mnist/1.2/2": ("study", [np.nan, np.nan], [np.nan, np.nan])})
    lost["status"] = C.Status.COLLAPSED
    table = finalists_table(pd.concat([runs, lost], ignore_index=True), {})
    by = table.set_index("candidate")
    assert by.loc["study mnist/1.2/2 (bce)", "verdict"] == "reference"
    assert by.loc["search 1", "verdict"] == "worse"
    assert by.loc["study mnist/1.2/2", "seeds"] == "0/2"


def test_a_collapsed_study_row_with_a_test_figure_is_not_the_reference():
    """The stage tests a collapsed run too (noisy MNIST's row as printed: 0.114, a constant
    image on every seed); the recipe run, which learned, is what the search must beat."""
    runs = _runs({"search 1": ("search", [0.0107, 0.0106, 0.0107], [0.0107, 0.0107, 0.0106]),
                  "study mnist-denoise/2.2/3": ("study", [0.114, 0.114, 0.114],
                                                [0.113, 0.113, 0.113]),
                  "study mnist-denoise/2.2/3 (bce)": ("study, default recipe",
                                                      [0.0126, 0.0128, 0.0127],
                                                      [0.0126, 0.0129, 0.0128])})
    runs.loc[runs["kind"] == "study", "status"] = C.Status.COLLAPSED
    table = finalists_table(runs, {})
    by = table.set_index("candidate")
    assert by.loc["study mnist-denoise/2.2/3 (bce)", "verdict"] == "reference"
    assert by.loc["study mnist-denoise/2.2/3", "verdict"] == "worse"
    assert finalist_vs_study(table) == pytest.approx(0.010667 / 0.0127, rel=1e-3)


def test_the_verdict_needs_two_seeds_and_non_overlapping_intervals():
    assert verdict(np.array([0.1]), np.array([0.2, 0.3])).startswith("n/a")
    assert verdict(np.array([0.1, 0.3]), np.array([0.2, 0.25])) == "within noise"
    assert verdict(np.array([0.30, 0.31]), np.array([0.1, 0.11])) == "worse"


def _cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEARCH_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "search.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_sweep_refitted_end_to_end_resumes_without_retraining(tmp_path, data_dir):
    sweep = tmp_path / "s"
    proc = _cli(["sweep", "--task", "mnist", "--num-samples", "2", "--max-epochs", "1",
                 "--subset", "300", "--val-subset", "200", "--address", "local",
                 "--storage", str(tmp_path), "--name", "s"], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((sweep / C.SPLITS_FILE).read_text())["val"] == 4_000
    args = ["refit", str(sweep), "--top-k", "1", "--repeats", "2", "--refit-epochs", "1",
            "--subset", "200", "--val-subset", "100", "--address", "local"]
    proc = _cli(args, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("finished ") >= 4 and "finished search 1 " in proc.stdout
    assert "Token authentication is enabled" not in proc.stdout + proc.stderr  # as a sweep's
    runs = pd.read_csv(sweep / C.FINALISTS_DIR / C.RUNS_FILE)
    assert len(runs) == 4 and runs[C.TEST_MSE].notna().all()
    assert sorted(runs["kind"]) == ["search", "search", "study", "study"]
    assert (sweep / C.FINALISTS_DIR / C.BEST_DIR / C.MODEL_FILE).is_file()
    reports = {d: (sweep / C.FINALISTS_DIR / d / C.RESULT_FILE).read_text().count("\n")
               for d in runs["trial_dir"]}
    again = _cli(args, data_dir)  # resumed: every seed had finished, none trains again
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = pd.read_csv(sweep / C.FINALISTS_DIR / C.RUNS_FILE)
    assert list(rerun[C.TEST_MSE]) == list(runs[C.TEST_MSE])
    assert {d: (sweep / C.FINALISTS_DIR / d / C.RESULT_FILE).read_text().count("\n")
            for d in runs["trial_dir"]} == reports
    changed = _cli([*args[:-2], "--repeats", "3", "--address", "local"], data_dir)
    assert changed.returncode == 2 and "started with repeats 2, not 3" in changed.stderr
    report = _cli(["results", str(sweep), "--out", str(tmp_path / "out")], data_dir)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "RESULT finalist_vs_study=" in report.stdout
    table = pd.read_csv(tmp_path / "out" / C.TABLES_DIR / "finalists.csv")
    assert list(table["verdict"])[-1] == "reference" and table["selected"].sum() == 1
    assert (tmp_path / "out" / C.PLOTS_DIR / "finalists.png").is_file()


def test_denoise_cleans_the_held_out_test_pages_with_the_best_finalist(tmp_path, data_dir,
                                                                       capsys):
    from search.denoise import CLEANED_TEST_DIR, RMSE_FILE, STDERR_LOG, main
    from search.models import build_model

    sweep = tmp_path / "text"
    data = DataOptions(data_dir=str(data_dir), subset=2, val_subset=2)
    best = sweep / C.FINALISTS_DIR / C.BEST_DIR
    best.mkdir(parents=True)
    splits.record(sweep, load_task("text", data).splits, resume=False)
    (sweep / C.FINALISTS_DIR / C.FINALISTS_FILE).write_text(json.dumps(
        {"task": "text", "data": {**data.__dict__, "resize": None}}))
    model = build_model(ModelConfig(task="text", filters=(2,), epochs=1, batch_size=4),
                        (None, None))
    model.save(best / C.MODEL_FILE)
    assert main(["--finalists", str(sweep)]) == 0
    cleaned = sweep / C.FINALISTS_DIR / CLEANED_TEST_DIR
    test_names = load_task("text", data, test=True).test_names
    assert sorted(p.name for p in cleaned.glob("*.png")) == sorted(test_names)
    score = json.loads((cleaned / RMSE_FILE).read_text())
    assert score["pages"] == 24 and 0 < score["rmse"] < 1
    assert (sweep / STDERR_LOG).is_file()  # TensorFlow's start-up lines, kept in the sweep
    assert f"{score['rmse']:.6f}" in capsys.readouterr().out
    other = load_task("text", DataOptions(data_dir=str(data_dir), seed=3)).splits
    (sweep / C.SPLITS_FILE).write_text(json.dumps(other))
    with pytest.raises(SystemExit, match=f"{sweep}: --finalists refused"):
        main(["--finalists", str(sweep)])


def test_denoise_cleans_the_held_out_test_pages_with_the_sweeps_own_best(tmp_path, data_dir,
                                                                         capsys):
    """--held-out: the search's winner as the sweep exported it, without a finalists stage."""
    from search.denoise import CLEANED_TEST_DIR, RMSE_FILE, STDERR_LOG, main
    from search.models import build_model

    sweep = tmp_path / "text"
    data = DataOptions(data_dir=str(data_dir), subset=2, val_subset=2)
    (sweep / C.BEST_DIR).mkdir(parents=True)
    splits.record(sweep, load_task("text", data).splits, resume=False)
    (sweep / C.SWEEP_FILE).write_text(json.dumps(
        {"task": "text", "data": {**data.__dict__, "resize": None}}))
    model = build_model(ModelConfig(task="text", filters=(2,), epochs=1, batch_size=4),
                        (None, None))
    model.save(sweep / C.BEST_DIR / C.MODEL_FILE)
    assert main(["--held-out", str(sweep)]) == 0
    score = json.loads((sweep / CLEANED_TEST_DIR / RMSE_FILE).read_text())
    assert score["pages"] == 24 and 0 < score["rmse"] < 1
    assert (sweep / STDERR_LOG).is_file()  # TensorFlow's start-up lines, kept in the sweep
    assert f"sweep's best model over 24 pages: {score['rmse']:.6f}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="give one"):
        main(["--held-out", str(sweep), "--finalists", str(sweep)])
    with pytest.raises(SystemExit, match="no best model"):
        main(["--held-out", str(tmp_path)])


def test_the_python_api_refits_with_the_same_checks(tmp_path, data_dir):
    from search.api import SweepResult
    from search.options import InputError

    sweep = fake_sweep(tmp_path / "s", data_dir)
    with pytest.raises(InputError, match="--repeats must be at least 1"):
        SweepResult(sweep, finished=True).refit(repeats=0)
    with pytest.raises(InputError, match="--storage is not an option of the finalists stage"):
        SweepResult(sweep, finished=True).refit(storage="x")
    folder = sweep / C.FINALISTS_DIR
    folder.mkdir()
    _runs({"search 1": ("search", [0.02, 0.03], [0.01, 0.02]),
           "study mnist/1.2/2": ("study", [0.03, 0.04], [0.03, 0.04])}).to_csv(
        folder / C.RUNS_FILE, index=False)
    (folder / C.FINALISTS_FILE).write_text(json.dumps({"candidates": []}))
    table = refit.Outcome(folder, finished=True).table
    assert list(table["verdict"]) == ["within noise", "reference"]


@pytest.mark.slow
def test_an_interrupted_stage_resumes_without_retraining_a_finished_seed(tmp_path, data_dir):
    import signal
    import time

    sweep = fake_sweep(tmp_path / "s", data_dir)
    args = ["refit", str(sweep), "--top-k", "1", "--repeats", "2", "--refit-epochs", "2",
            "--subset", "300", "--val-subset", "100", "--study-rows", "mnist/1.2/3",
            "--max-concurrent", "1", "--address", "local"]
    env = {**os.environ, "SEARCH_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen([sys.executable, "-m", "search.cli", *args], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    experiment = sweep / C.FINALISTS_DIR / refit.RUNS_EXPERIMENT

    def finished() -> list[Path]:  # runs whose last report (with the test figure) is written
        return [p for p in experiment.glob(f"run_*/{C.RESULT_FILE}")
                if C.TEST_MSE in p.read_text()]

    deadline = time.monotonic() + 600
    while not finished() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    done = finished()
    assert done, "no run finished before the deadline"
    reports = {p: p.read_text() for p in done}
    driver.send_signal(signal.SIGINT)  # Ctrl-C: Ray Tune saves its state and stops
    output, _ = driver.communicate(timeout=300)
    assert not (sweep / C.FINALISTS_DIR / C.RUNS_FILE).is_file() or driver.returncode != 0, output
    again = _cli(args, data_dir)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert {p: p.read_text() for p in done} == reports  # not one more report: not retrained
    runs = pd.read_csv(sweep / C.FINALISTS_DIR / C.RUNS_FILE)
    assert len(runs) == 4 and runs[C.TEST_MSE].notna().all()


def test_a_sweeps_refit_hands_its_finalists_options_to_the_stage():
    from search.cli import parse
    from search.launch import finalist_values

    options, given = parse(["--task", "mnist", "--refit", "--repeats", "2", "--study-rows",
                            "mnist/1.2/3"])
    options.check(given)
    assert finalist_values(options) == {"top_k": 3, "repeats": 2,
                                        "study_rows": ("mnist/1.2/3",)}


def test_the_console_says_each_runs_figures():
    from search.finalist_console import run_line

    line = run_line({"run": {"candidate": "search 1", "seed": 2}},
                    {C.NOTATION: "2L,4F(3X3)", C.VAL_MSE: 0.0123456, C.TEST_MSE: float("nan"),
                     C.SECONDS: 12.4, C.VERDICT: C.Status.COLLAPSED}, "finished")
    assert line == ("finished search 1 2L,4F(3X3) seed 2: val_mse 0.01235, test_mse - (12 s) "
                    "[COLLAPSED]")
