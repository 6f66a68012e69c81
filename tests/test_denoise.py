"""Cleaning pages with a model: native sizes, the Kaggle submission, the RMSE, the CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from search.data import DataError, load_pages
from search.denoise import clean_pages, main, rmse, submission_frame, write_pages
from search.models import build_model
from spaces.config import ModelConfig

PAGES = ("3.png", "14.png", "74.png")  # 258, 258 and 420 high: both page sizes


@pytest.fixture(scope="module")
def model():
    """Tiny and untrained, with a pool so odd sizes (258 = 2 * 129) go through pad and crop."""
    config = ModelConfig(task="text", filters=(2, 2), pool=1)
    return build_model(config, (None, None), compile=False)


@pytest.fixture(scope="module")
def pages(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small data set: train/ and train_cleaned/ with PAGES."""
    root = tmp_path_factory.mktemp("pages")
    for folder in ("train", "train_cleaned"):
        (root / folder).mkdir()
        for name in PAGES:
            shutil.copy2(data_dir / "dirty-documents" / folder / name, root / folder / name)
    return root


def test_pages_are_both_heights(pages: Path) -> None:
    sizes = {pixels.shape for _, pixels in load_pages(pages / "train")}
    assert sizes == {(420, 540), (258, 540)}


def test_clean_pages_keeps_names_sizes_and_range(model, pages: Path, tmp_path: Path) -> None:
    noisy = load_pages(pages / "train")
    cleaned = clean_pages(model, noisy, batch_pages=1)
    assert [name for name, _ in cleaned] == [name for name, _ in noisy]
    for (_, before), (_, after) in zip(noisy, cleaned, strict=True):
        assert after.shape == before.shape and after.dtype == np.float32
        assert after.min() >= 0.0 and after.max() <= 1.0
    write_pages(cleaned, tmp_path)
    for name, before in noisy:
        with Image.open(tmp_path / name) as image:
            assert (image.height, image.width) == before.shape and image.mode == "L"


def test_fixed_size_model_refuses_other_heights(pages: Path) -> None:
    fixed = build_model(ModelConfig(task="text", filters=(2,)), (420, 540))
    with pytest.raises(DataError, match=r"page 3\.png is 258x540 .* 420x540"):
        clean_pages(fixed, load_pages(pages / "train"))


def test_submission_ids_order_and_values() -> None:
    tall = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    short = np.full((2, 4), 0.25, dtype=np.float32)
    frame = submission_frame([("10.png", tall), ("2.png", short)])
    assert list(frame.columns) == ["id", "value"] and len(frame) == 8 + 12
    assert list(frame["id"][:5]) == ["2_1_1", "2_1_2", "2_1_3", "2_1_4", "2_2_1"]
    assert frame["id"].iloc[8] == "10_1_1" and frame["id"].iloc[-1] == "10_3_4"
    np.testing.assert_allclose(frame["value"][8:], tall.ravel(), atol=1e-6)
    assert (frame["value"][:8] == 0.25).all()


def test_submission_of_real_pages(model, pages: Path) -> None:
    cleaned = clean_pages(model, load_pages(pages / "train"))
    frame = submission_frame(cleaned)
    assert len(frame) == 420 * 540 + 2 * 258 * 540
    assert frame["id"].iloc[0] == "3_1_1" and frame["id"].iloc[-1] == "74_420_540"
    assert frame["id"].iloc[258 * 540] == "14_1_1" and frame["id"].iloc[2 * 258 * 540] == "74_1_1"
    assert frame["id"].is_unique
    assert frame["value"].between(0, 1).all()


def test_rmse_by_hand() -> None:
    predicted = [np.array([[0.0, 0.5]]), np.array([[1.0]])]
    targets = [np.array([[0.0, 0.0]]), np.array([[0.0]])]
    assert rmse(predicted, targets) == pytest.approx(np.sqrt((0.25 + 1.0) / 3))
    assert rmse(targets, targets) == 0.0
    with pytest.raises(ValueError, match="differ"):
        rmse([np.zeros((2, 2))], [np.zeros((2, 3))])


def test_cli_end_to_end(model, pages: Path, tmp_path: Path, capsys) -> None:
    saved = tmp_path / "model.keras"
    model.save(saved)
    out, csv = tmp_path / "cleaned", tmp_path / "sub" / "submission.csv"
    code = main(["--model", str(saved), "--input", str(pages / "train"), "--output", str(out),
                 "--submission", str(csv), "--targets", str(pages / "train_cleaned"),
                 "--batch-pages", "2"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(PAGES)
    frame = pd.read_csv(csv)
    assert len(frame) == 420 * 540 + 2 * 258 * 540
    assert list(frame.columns) == ["id", "value"] and frame["id"].iloc[-1] == "74_420_540"
    expected = rmse([p for _, p in clean_pages(model, load_pages(pages / "train"))],
                    [p for _, p in load_pages(pages / "train_cleaned")])
    assert f"RMSE over 3 pages: {expected:.6f}" in capsys.readouterr().out


def test_cli_errors_name_the_flag_or_file(pages: Path, tmp_path: Path, model) -> None:
    missing = tmp_path / "nope.keras"
    base = ["--input", str(pages / "train"), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=re.escape(f"--model {missing}")):
        main(["--model", str(missing), *base])
    saved = tmp_path / "model.keras"
    model.save(saved)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=re.escape(f"{tmp_path / 'empty'} holds no .png pages")):
        main(["--model", str(saved), "--input", str(tmp_path / "empty"),
              "--output", str(tmp_path / "out")])
    partial = tmp_path / "targets"
    partial.mkdir()
    shutil.copy2(pages / "train_cleaned" / "74.png", partial / "74.png")
    message = f"--targets {partial} has no target for page 3.png"
    with pytest.raises(SystemExit, match=re.escape(message)):
        main(["--model", str(saved), *base, "--targets", str(partial)])


def test_cli_keeps_tensorflow_start_up_lines_off_the_terminal(
        model, pages: Path, tmp_path: Path, capfd, monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorFlow's C++ start-up lines (cuInit errors on a machine without a GPU) are written
    to file descriptor 2 while the model loads: dropped by default, shown with --verbose."""
    import os

    import search.models

    def loud_load(path: Path):
        os.write(2, b"E0000 cuInit: no CUDA-capable device is detected\n")
        return model

    monkeypatch.setattr(search.models, "load_model", loud_load)
    base = ["--model", str(tmp_path / "model.keras"), "--input", str(pages / "train")]
    (tmp_path / "model.keras").touch()
    assert main([*base, "--output", str(tmp_path / "quiet")]) == 0
    quiet = capfd.readouterr()
    assert "cuInit" not in quiet.err and "cleaned 3 pages" in quiet.out
    assert main([*base, "--output", str(tmp_path / "loud"), "--verbose"]) == 0
    assert "cuInit" in capfd.readouterr().err
