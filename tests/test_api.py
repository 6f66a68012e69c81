"""The Python API: `Sweep(...).run()` returns a result, raises UserErrors, never exits."""

from __future__ import annotations

from pathlib import Path

import pytest

from search import Sweep
from search.options import InputError
from search.sweep import SweepError
from spaces import constants as C
from spaces.config import ModelConfig
from spaces.errors import UserError


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize(("options", "needle"), [
    ({"num_samples": 0}, "--num-samples must be at least 1, got 0"),
    ({"nope": 1}, "unknown option(s) nope"),
    ({"time_budget": "soon"}, "--time-budget: expected a duration such as 20m"),
    ({"noise": 0.3}, "--noise is for --task mnist-denoise only"),
    ({"space": "study-axes", "search": "grid"}, "--space report"),
    ({"subset": 2.5}, "--subset must be a whole number, got 2.5"),
    ({"config": "2L,8F(3X3)"}, "aesearch train"),
])
def test_bad_options_raise_the_clis_user_errors(tmp_path, options, needle):
    with pytest.raises(UserError) as raised:
        Sweep(task="mnist", storage=str(tmp_path), **options).run()
    assert needle in str(raised.value)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_resume_of_a_folder_without_a_sweep_is_refused(tmp_path):
    with pytest.raises(InputError, match="no sweep here"):
        Sweep.resume(tmp_path)


TINY = {"space": "report", "rows": "mnist/1.2/2", "max_epochs": 1, "subset": 300,
        "val_subset": 100, "cpus_per_trial": 1}


@pytest.mark.slow
def test_a_sweep_runs_on_its_own_ray_and_on_the_callers(tmp_path, data_dir):
    """End to end on tiny data: the leaderboard, best/, the tables; then the same on a Ray
    this process started, which is left running; a finished sweep's resume is refused."""
    import ray

    result = Sweep(task="mnist", **TINY, storage=str(tmp_path), name="own", address="local",
                   data_dir=str(data_dir)).run()
    assert result.finished and result.experiment_dir == tmp_path / "own"
    assert not ray.is_initialized()  # the Ray it started is stopped again
    board = result.leaderboard
    assert list(board["status"]) == [C.Status.TERMINATED]
    best = result.best
    assert best is not None and isinstance(best.config, ModelConfig)
    assert best.model_path == tmp_path / "own" / C.BEST_DIR / C.MODEL_FILE
    assert best.model_path.is_file()
    assert best.metrics[C.VAL_MSE] == pytest.approx(board[C.VAL_MSE].iloc[0])
    report = result.tables(out=tmp_path / "report")
    assert all(Path(p).is_file() for p in report.written)
    assert {p.relative_to(tmp_path).as_posix() for p in map(Path, report.written)} >= {
        "own/leaderboard.csv", "report/tables/study.md", "report/plots/curves.png"}
    with pytest.raises(SweepError, match="already finished"):
        Sweep.resume(tmp_path / "own").run()

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        again = Sweep(task="mnist", **TINY, storage=str(tmp_path), name="joined",
                      data_dir=str(data_dir)).run()
        assert ray.is_initialized()  # the caller's Ray stays up
    finally:
        ray.shutdown()
    assert again.finished and len(again.leaderboard) == 1


@pytest.mark.parametrize("options", [
    {"task": "mnist-denoise", "time_budget": "20m", "subset": 5000, "seed": 3},
    {"task": "text", "space": "report", "rows": "text/3.3/5", "patch_size": 64,
     "resize": "420x540", "max_epochs": 2},
    {"task": "mnist", "space": "study-axes", "search": "random", "scheduler": "fifo",
     "num_samples": 4, "noise": None},
], ids=["budget", "text-replay", "fifo"])
def test_a_resumed_sweep_asks_for_what_it_was_started_with(tmp_path, options):
    """Sweep.resume reads sweep.json back into options whose settings pass the resume check:
    every setting the check compares is what the sweep recorded."""
    import dataclasses
    import json

    from search import sweep
    from search.launch import settings_from
    from search.options import RESUME_FIXED, from_values

    given = {k: v for k, v in options.items() if v is not None}
    started = from_values({**given, "storage": str(tmp_path), "name": "s"})
    recorded = sweep._sweep_meta(sweep.prepare(settings_from(started)))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / C.SWEEP_FILE).write_text(json.dumps({**recorded, "storage": None}))

    resumed = Sweep.resume(tmp_path / "s")
    resumed.options.check(resumed.given)  # nothing it sets is refused
    assert resumed.options.resume and resumed.options.resolved_name == "s"
    settings = settings_from(resumed.options)
    settings = dataclasses.replace(settings, max_epochs=sweep._max_epochs(settings))
    now = sweep._sweep_meta(settings)
    for key in (*RESUME_FIXED, "guard_shape", "data"):
        assert now[key] == recorded[key], key
