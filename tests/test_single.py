"""`--config`: per-task defaults, the guard's advice, the study's figure, best/ kept."""

from __future__ import annotations

import json

import pytest

import search.single
from search.cli import main, parse
from spaces import constants as C
from spaces.guard import ResourceLimitError, check

STUDY_BEST_TEXT = "4L,32,32,64,128F(3X3)"  # text/3.3/5 as the study writes it


def test_the_studys_best_text_model_fits_by_default_on_cpu(monkeypatch):
    monkeypatch.setattr(search.single, "_gpu_present", lambda: False)
    args, _ = parse(["--task", "text", "--config", STUDY_BEST_TEXT])
    args, said = search.single.default_patches(args, search.single._gpu_present())
    assert said is not None
    assert args.patch_size == 96 and "96x96 patches" in said and "whole pages" in said
    config = search.single.resolve_config(args)
    assert (config.batch_size, config.epochs) == (16, 25)  # the study's, not MNIST's 128
    check(config, search.single.guard_shape(args), **search.single.guard_limits(args),
          **search.single.guard_fit(args))  # validation in 4 whole pages, training on patches


def test_whole_pages_on_a_gpu_and_flags_win(monkeypatch):
    args, _ = parse(["--task", "text", "--config", STUDY_BEST_TEXT, "--batch-size", "8",
                     "--epochs", "2"])
    assert search.single.default_patches(args, gpu=True) == (args, None)
    assert args.patch_size is None
    assert search.single.resolve_config(args).batch_size == 8
    mnist, _ = parse(["--task", "mnist", "--config", "6L,16F(3X3)"])
    assert search.single.default_patches(mnist, gpu=False) == (mnist, None)
    assert search.single.resolve_config(mnist).batch_size == 128


def test_a_refusal_names_every_flag_that_would_make_it_fit(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--task", "text", "--config", STUDY_BEST_TEXT, "--batch-size", "128",
              "--patch-size", "400"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "for a batch of 128 at 400x400" in err
    for flag in ("--batch-size 52", "--patch-size 248", "--max-activation-mb 20,079"):
        assert flag in err


def test_validation_alone_too_big_names_the_limit_only():
    args, _ = parse(["--task", "text", "--config", STUDY_BEST_TEXT, "--patch-size", "64",
                     "--max-activation-mb", "500"])
    with pytest.raises(ResourceLimitError, match=r"validate 4 whole image\(s\) of 420x540 .* "
                                                 r"--max-activation-mb"):
        check(search.single.resolve_config(args), search.single.guard_shape(args),
              **search.single.guard_limits(args), **search.single.guard_fit(args))


def test_a_study_row_prints_the_studys_figure_and_never_overwrites_best(tmp_path, data_dir,
                                                                           capsys):
    argv = ["--task", "mnist", "--config", "6L,16F(3X3)", "--loss", "bce", "--epochs", "1",
            "--subset", "200", "--val-subset", "100", "--data-dir", str(data_dir),
            "--storage", str(tmp_path), "--name", "one"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "study row mnist/1.2/2: train/validation 0.0586/0.0583" in out
    assert "the study trained with epochs 50" in out
    assert "ours: val_mse " in out and "the study's mnist/1.2/2: 0.0583" in out
    first = json.loads((tmp_path / "one" / C.BEST_DIR / C.METRICS_FILE).read_text())
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'one' / 'best-2' / C.MODEL_FILE}" in out and "kept" in out
    assert json.loads((tmp_path / "one" / C.BEST_DIR / C.METRICS_FILE).read_text()) == first
