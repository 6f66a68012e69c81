"""Bad input at the command line: exit 2, a message naming the flag or file, nothing started.

Every case here is refused before Ray starts or the data loads, which is also why they are fast.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

import pytest
from conftest import refused

import search
import search.launch
import search.single
from search.cli import main
from search.data import DataError
from search.options import Options
from spaces import constants as C

pytestmark = pytest.mark.usefixtures("nothing_runs")


def test_notation_error_names_the_text(capsys):
    err = refused(["--task", "mnist", "--config", "6L,16Q(3X3)"], capsys)
    assert "6L,16Q(3X3)" in err and "notation" in err


def test_missing_config_file_is_named(tmp_path, capsys):
    err = refused(["--task", "mnist", "--config", str(tmp_path / "nope.json")], capsys)
    assert "nope.json" in err


def test_study_row_of_another_task_is_refused(capsys):
    err = refused(["--task", "mnist", "--config", "text/3.3/5"], capsys)
    assert "text/3.3/5" in err and "--task" in err


def test_oversized_config_names_the_flag_that_allows_it(capsys):
    err = refused(["--task", "mnist", "--config", "mnist/1.3/5"], capsys)
    assert "--max-params" in err and "1,481,062,240" in err


def test_missing_data_dir_is_named(tmp_path, capsys):
    err = refused(["--task", "text", "--config", "3L,8F(3X3)", "--data-dir",
                   str(tmp_path / "no-such-dir")], capsys)
    assert "no-such-dir" in err


def test_grid_needs_the_report_space(capsys):
    err = refused(["--task", "mnist", "--space", "study-axes", "--search", "grid"], capsys)
    assert "--space report" in err


def test_unknown_study_rows_are_listed(tmp_path, capsys):
    err = refused(["--task", "mnist", "--space", "report", "--rows", "mnist/9.9/9",
                   "--storage", str(tmp_path)], capsys)
    assert "mnist/9.9/9" in err and "mnist/1.2/2" in err


def test_resume_of_a_sweep_that_does_not_exist(tmp_path, capsys):
    err = refused(["--task", "mnist", "--resume", "--storage", str(tmp_path), "--name", "x"],
                  capsys)
    assert "--resume" in err and "'x'" in err


def test_existing_sweep_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / C.SWEEP_FILE).write_text(json.dumps({"task": "mnist"}))
    err = refused(["--task", "mnist", "--storage", str(tmp_path), "--name", "taken"], capsys)
    assert "already exists" in err and "--resume" in err


def test_bad_resize_value_names_the_format(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--task", "text", "--resize", "420by540"])
    assert exit_info.value.code == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_run_py_does_not_let_its_folder_shadow_modules():
    """`python search/run.py` puts search/ first on sys.path; run.py must take it out."""
    search_dir = str(Path(search.__file__).parent)
    before = list(sys.path)
    try:
        sys.path.insert(0, search_dir)
        runpy.run_path(f"{search_dir}/run.py", run_name="not_main")
        assert search_dir not in sys.path
    finally:
        sys.path[:] = before


@pytest.mark.parametrize("flag", ["--num-samples", "--grace-period", "--max-concurrent",
                                  "--checkpoint-every"])
def test_zero_counts_are_refused_not_replaced_by_defaults(flag, tmp_path, capsys):
    err = refused(["--task", "mnist", "--storage", str(tmp_path), flag, "0"], capsys)
    assert f"{flag} must be at least 1" in err
    assert not any(tmp_path.iterdir())  # a refused sweep leaves nothing behind


def test_unknown_study_row_as_config_is_named(capsys):
    err = refused(["--task", "mnist", "--config", "mnist/9.9/9"], capsys)
    assert "mnist/9.9/9" in err and "mnist/1.2/2" in err


def test_config_file_that_is_not_an_object_is_named(tmp_path, capsys):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    err = refused(["--task", "mnist", "--config", str(path)], capsys)
    assert "list.json" in err and "JSON object" in err


@pytest.mark.parametrize(("argv", "module", "entry"), [
    (["--task", "mnist", "--config", "6L,16F(3X3)"], search.single, "run_single"),
    (["--task", "mnist"], search.launch, "launch_sweep"),
])
def test_a_failure_that_is_not_the_users_keeps_its_traceback(argv, module, entry, monkeypatch):
    """A ValueError from TensorFlow, Ray or pandas mid-run is a bug or a library failure, not
    bad input: it propagates (with its traceback) instead of becoming a one-line exit 2."""

    def library_failure(args):
        raise ValueError("deep inside a library")

    monkeypatch.setattr(module, entry, library_failure)
    with pytest.raises(ValueError, match="deep inside a library"):
        main(argv)


def test_user_errors_raised_mid_run_exit_2_on_one_line(monkeypatch, capsys):
    def bad_data(args):
        raise DataError("page 3.png is not a readable PNG image")

    monkeypatch.setattr(search.single, "run_single", bad_data)
    err = refused(["--task", "mnist", "--config", "6L,16F(3X3)"], capsys)
    assert err == "error: page 3.png is not a readable PNG image\n"


# --- the commands, and the flags derived from search/options.py --------------------------------
def test_every_option_is_one_flag_and_nothing_else():
    from search.cli import build_parser
    from search.options import SPECS

    parser = build_parser()
    dests = [a.dest for a in parser._actions if a.dest != "help"]
    assert sorted(dests) == sorted(SPECS)
    assert parser.parse_args(["--task", "mnist"]) == argparse.Namespace(task="mnist")


@pytest.mark.parametrize(("argv", "plain"), [
    (["sweep", "--task", "mnist", "--space", "report"], ["--task", "mnist", "--space", "report"]),
    (["train", "--task", "mnist", "--config", "2L,8F(3X3)"],
     ["--task", "mnist", "--config", "2L,8F(3X3)"]),
], ids=["sweep", "train"])
def test_a_command_means_what_its_flags_alone_mean(monkeypatch, argv, plain):
    seen: list[tuple[Options, set[str]]] = []

    def run(options: Options, given: set[str]) -> int:
        seen.append((options, given))
        return 0

    monkeypatch.setattr(search.cli, "run", run)
    assert main(argv) == 0 and main(plain) == 0
    assert seen[0] == seen[1] and seen[0][0].mode == argv[0]


def test_train_needs_a_config_and_a_sweep_takes_none(capsys):
    assert "aesearch train needs --config" in refused(["train", "--task", "mnist"], capsys)
    err = refused(["sweep", "--task", "mnist", "--config", "2L,8F(3X3)"], capsys)
    assert "use aesearch train" in err


def test_results_export_and_denoise_are_commands(tmp_path, capsys):
    assert main(["results", str(tmp_path / "no-sweep")]) == 2
    assert "no-sweep" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "no-sweep")]) == 2
    assert "no-sweep" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["denoise", "--help"])
    assert exit_info.value.code == 0 and "--submission" in capsys.readouterr().out


def test_defaults_are_the_options_own():
    from search.data import DataOptions
    from search.options import default_of
    from search.settings import TrialSettings
    from search.sweep import SweepSettings

    sweep = SweepSettings(task="mnist")
    trial = TrialSettings(max_epochs=1, max_params=1, max_activation_mb=1.0, guard_shape=(2, 2))
    for holder, names in ((sweep, ("space", "grace_period", "checkpoint_every", "seed",
                                   "storage", "precision")),
                          (trial, ("checkpoint_every", "seed", "precision")),
                          (DataOptions(), ("noise", "val_fraction", "patches_per_page", "seed"))):
        for name in names:
            assert getattr(holder, name) == default_of(name), (type(holder).__name__, name)
