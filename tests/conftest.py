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
