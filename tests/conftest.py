"""Shared fixtures: where the real data lives, and a private cache for decoded pages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from search.data.base import DATA_DIR_ENV
from search.data.documents import CACHE_ENV

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data: $SEARCH_DATA_DIR, else <repo>/../shared/data. Missing data fails."""
    env = os.environ.get(DATA_DIR_ENV)
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.fail(f"test data not found at {path}: set ${DATA_DIR_ENV} or provide "
                    f"{REPO.parent / 'shared' / 'data'} (mnist.npz, dirty-documents/)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _page_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Decoded-page caches go to a session temp dir, never to the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("page-cache")
        patch.setenv(CACHE_ENV, str(path))
        yield path


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused input must never start Ray, read data or train: any attempt fails the test.

    Modules of refusals use it for every test: `pytestmark = pytest.mark.usefixtures(...)`.
    """
    import search.cluster
    import search.launch
    import search.single

    def forbidden(*args: object, **kwargs: object) -> None:
        pytest.fail("input that should be refused got as far as Ray, the data or training")

    monkeypatch.setattr(search.cluster, "connect", forbidden)
    monkeypatch.setattr(search.launch, "load_task", forbidden)
    monkeypatch.setattr(search.single, "load_task", forbidden)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI on `argv`, which it must refuse: exit status 2 and one line on stderr,
    starting with "error: ". Returns that line."""
    from search.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line
    return err
