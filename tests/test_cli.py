"""Bad input at the command line: exit 2, a message naming the flag or file, nothing started.

Every case here is refused before Ray starts or the data loads, which is also why they are fast.
"""

from __future__ import annotations

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
