"""results/: `python -m results`, its summary, and the PNG writers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sweep_files import (
    TEXT_NEW,
    lr_driven_sweep,
    running_text_sweep,
    write_reconstructions,
    write_sweep,
    write_trial,
)

from results import ResultsError, curves, load_trials
from results.__main__ import main
from results.generator import MERGED_LEADERBOARD_FILE
from results.leaderboard import LEADERBOARD_COLUMNS, leaderboard
from results.plots import learning_curves, reconstruction_sheet, search_progress, size_vs_quality
from results.render import read_csv
from results.sweepdir import read_reconstructions
from spaces import constants as C
from spaces.config import ModelConfig

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > 2000, f"{path} is nearly empty ({len(data)} bytes)"


def test_cli_on_a_running_partly_failed_sweep(tmp_path: Path) -> None:
    sweep = running_text_sweep(tmp_path)
    write_reconstructions(sweep, pages=True)
    done = subprocess.run(
        [sys.executable, "-m", "results", str(sweep), "--top-k", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "7 trial(s): 3 TERMINATED, 2 RUNNING, 1 PENDING, 1 ERROR" in out
    assert "The sweep is still running" in out and "results are partial" in out
    assert "1 trial(s) failed (ERROR)" in out and "abcde_00003: ValueError: loss is nan" in out
    assert "Best: 3L,32F(3X3) (trial abcde_00001" in out and "val_mse 0.002," in out
    # The study's best text model (0.0015): none of our 4 trials beats it.
    assert "Study's best for text: text/3.3/5" in out and "validation 0.0015" in out
    assert "0 of our 4 trial(s) beat it, so it would rank 1" in out
    # ... on a far smaller budget, which the summary says; a row was replayed, so no advice.
    assert "The study trained it 25 epochs on all training pages, batch 16; our trials at " \
        "most 3 epochs." in out and "replay the study's rows" not in out
    assert "Its architecture in our trials: best rank 3 (trial abcde_00000, loss mse, batch 16)" \
        in out

    board = read_csv(sweep / C.LEADERBOARD_FILE)
    assert list(board.columns) == list(LEADERBOARD_COLUMNS)
    assert board[C.TRIAL_ID].iloc[0] == "abcde_00001"
    tables = sweep / C.TABLES_DIR
    for stem in ("comparison-conv", "comparison-dense", "discoveries", "importance", "study"):
        assert (tables / f"{stem}.md").read_text().startswith("# ")
        assert (tables / f"{stem}.csv").is_file()
    assert "at least" in (tables / "importance.md").read_text()
    conv = pd.read_csv(tables / "comparison-conv.csv")
    ours = conv[conv["Source"] == "ours"]
    assert ours["Trial"].tolist() == board.loc[board["family"] == "conv", C.TRIAL_ID].tolist()
    assert (conv["Source"] == "study").sum() == 20  # the study's conv text rows, same table
    assert conv["Model"].str.endswith("**").sum() == 1
    for name in ("curves", "progress", "pareto", "reconstructions"):
        assert_png(sweep / C.PLOTS_DIR / f"{name}.png")
    leftovers = [p for p in sweep.rglob("*.tmp")]
    assert leftovers == []


def test_cli_on_a_finished_sweep_says_nothing_is_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = lr_driven_sweep(tmp_path, trials=10)
    out_dir = tmp_path / "report"
    assert main([str(sweep), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "10 trial(s): 10 TERMINATED" in out
    assert "still running" not in out and "failed" not in out
    # mnist's best study row is a BCE figure: the summary says so rather than compare blindly.
    assert "mnist/1.2/2" in out and "bce loss, not an MSE" in out
    assert "not comparable with our val_mse, so not ranked" in out and "would rank" not in out
    assert (sweep / C.LEADERBOARD_FILE).is_file()  # leaderboards always go in the sweep dir
    assert (out_dir / C.TABLES_DIR / "importance.csv").is_file()
    assert not (out_dir / C.PLOTS_DIR / "reconstructions.png").exists()  # no best/ here
    importance = pd.read_csv(out_dir / C.TABLES_DIR / "importance.csv")
    assert importance["param"].iloc[0] == "lr"


def test_cli_on_a_sweep_that_just_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "fresh"
    write_sweep(sweep, "mnist-denoise", finished=False)
    assert main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "0 trial(s): none yet" in out and "has not finished" in out
    assert "No trial has reported a validation figure yet." in out
    assert "mnist-denoise/2.2/3" in out and "none of our trials to compare it with yet" in out
    assert read_csv(sweep / C.LEADERBOARD_FILE).empty
    assert_png(sweep / C.PLOTS_DIR / "progress.png")


def test_the_summary_says_when_the_study_trained_on_more(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A search on a subset for a few epochs is ranked against figures from 50 epochs of all
    60,000 images: the summary says so, and how to compare like with like."""
    sweep = tmp_path / "small"
    write_sweep(sweep, "mnist-denoise", finished=True)
    meta = json.loads((sweep / C.SWEEP_FILE).read_text())
    (sweep / C.SWEEP_FILE).write_text(json.dumps({**meta, "epoch_size": 5000}))
    write_trial(sweep, "ccccc_00000", ModelConfig(task="mnist-denoise", filters=(32,) * 5,
                                                  kernel=5, epochs=3), [0.03, 0.02, 0.0128])
    assert main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "0 of our 1 trial(s) beat it" in out
    assert ("The study trained it 50 epochs x 60,000 images = 3,000,000 images, batch 128; our "
            "trials at most 3 epochs of 5,000 examples. To compare like with like, replay the "
            "study's rows on this budget (--space report).") in out

    full = tmp_path / "full"
    write_sweep(full, "mnist-denoise", finished=True)
    (full / C.SWEEP_FILE).write_text(json.dumps({**meta, "epoch_size": 60_000}))
    write_trial(full, "ddddd_00000", ModelConfig(task="mnist-denoise", filters=(32,) * 5,
                                                 kernel=5, epochs=50), [0.01] * 50)
    assert main([str(full)]) == 0
    assert "The study trained it" not in capsys.readouterr().out  # the same budget: no note


def test_the_progress_plot_draws_the_studys_best_only_where_it_is_an_mse() -> None:
    from results.generator import study_line

    assert study_line("mnist") == (None, "")  # the study's MNIST figures are BCE losses
    val, label = study_line("mnist-denoise")
    assert val == 0.0026 and label.startswith("study's best (mnist-denoise/2.2/3; 50 epochs")
    assert study_line(None) == (None, "")


def test_cli_merges_sweeps_of_one_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = running_text_sweep(tmp_path / "a")
    second = tmp_path / "b" / "second"
    write_sweep(second, "text", finished=True)
    write_trial(second, "bbbbb_00000", TEXT_NEW, [0.0022, 0.0011])
    out_dir = tmp_path / "merged"
    assert main([str(first), str(second), "--out", str(out_dir)]) == 0
    merged = read_csv(out_dir / MERGED_LEADERBOARD_FILE)
    assert list(merged.columns) == [*LEADERBOARD_COLUMNS, "sweep"]
    assert merged[[C.TRIAL_ID, "sweep"]].iloc[0].tolist() == ["bbbbb_00000", "second"]
    assert (first / C.LEADERBOARD_FILE).is_file() and (second / C.LEADERBOARD_FILE).is_file()
    assert "1 of our 5 trial(s) beat it, so it would rank 2" in capsys.readouterr().out
    assert_png(out_dir / C.PLOTS_DIR / "progress.png")


def test_cli_rejects_what_is_not_a_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes").mkdir()
    assert main([str(tmp_path / "notes")]) == 2
    assert f"{tmp_path / 'notes'} is not a sweep directory" in capsys.readouterr().err
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such directory" in capsys.readouterr().err

    text = running_text_sweep(tmp_path)
    mnist = tmp_path / "mnist"
    write_sweep(mnist, "mnist", finished=True)
    assert main([str(text), str(mnist)]) == 2
    assert "cannot merge sweeps of different tasks" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([str(text), "--top-k", "0"])
    assert info.value.code == 2


def test_plot_writers_write_pngs(tmp_path: Path) -> None:
    sweep = running_text_sweep(tmp_path)
    board, curve = leaderboard(load_trials(sweep)), curves(sweep)
    out = tmp_path / "plots"
    paths = [
        learning_curves(curve, board, out / "curves.png", top_k=2),
        search_progress(curve, out / "progress.png", study_val=0.0015),
        size_vs_quality(board, out / "pareto.png"),
        # Before any epoch: the figures still come out, saying there is nothing yet.
        learning_curves(curve.iloc[:0], board.iloc[:0], out / "empty-curves.png"),
        search_progress(curve.iloc[:0], out / "empty-progress.png"),
        size_vs_quality(board.iloc[:0], out / "empty-pareto.png"),
    ]
    for path in paths:
        assert_png(path)


@pytest.mark.parametrize("pages, shapes", [(False, [(28, 28)] * 3), (True, [(16, 24), (20, 24)])])
def test_reconstructions_read_and_drawn(tmp_path: Path, pages: bool, shapes: list) -> None:
    npz = write_reconstructions(tmp_path, pages=pages)
    samples = read_reconstructions(npz)
    assert [s[0].shape for s in samples] == shapes
    assert all(len(triple) == 3 for triple in samples)
    assert_png(reconstruction_sheet(samples, tmp_path / "sheet.png"))


def test_bad_reconstructions_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "reconstructions.npz"
    np.savez(path, images=np.zeros((2, 4, 4, 1)))
    with pytest.raises(ResultsError, match="reconstructions.npz: expected arrays"):
        read_reconstructions(path)


def test_cli_leaves_the_live_leaderboard_of_a_uri_sweep_alone(tmp_path: Path) -> None:
    """With --storage s3://..., the local sweep dir has the sweep's own files, no trial dirs."""
    sweep = tmp_path / "remote"
    sweep.mkdir()
    (sweep / C.SWEEP_FILE).write_text('{"task": "mnist", "storage": "s3://bucket/sweeps"}')
    (sweep / C.STATUS_FILE).write_text('{"abcde_00000": "TERMINATED"}')
    live = "rank,trial_id,val_mse\n1,abcde_00000,0.01\n"
    (sweep / C.LEADERBOARD_FILE).write_text(live)
    done = subprocess.run([sys.executable, "-m", "results", str(sweep)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no trial directories" in done.stderr and str(sweep) in done.stderr
    assert (sweep / C.LEADERBOARD_FILE).read_text() == live
