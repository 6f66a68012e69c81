"""search/internals.py: every private Ray/Optuna name is still there, inside pinned versions."""

from __future__ import annotations

import re
import tomllib
from types import SimpleNamespace

import pytest
from conftest import REPO
from packaging.version import Version

import search.cluster
from search import internals
from search.internals import INTERNALS, READ_AGAINST, Internal


def test_every_private_name_we_use_is_still_there():
    moved = internals.missing()
    assert not moved, (
        f"Ray/Optuna internals moved (installed {internals.installed_versions()}, read against "
        f"{READ_AGAINST}); update search/internals.py and the caps in pyproject.toml:\n  "
        + "\n  ".join(moved))


def test_a_moved_internal_is_reported():
    gone = [Internal("ray.tune.search.optuna", "OptunaSearch", "nothing", "_no_such_field"),
            Internal("ray.tune.search.optuna", "NoSuchClass", "nothing"),
            Internal("ray._no_such_module", "x", "nothing")]
    assert [i.present() for i in gone] == [False, False, False]
    assert all(i.present() for i in INTERNALS)


def _caps() -> dict[str, tuple[Version, Version]]:
    """Each capped dependency of pyproject.toml: (lower, upper) bound."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    caps = {}
    for spec in project["dependencies"]:
        match = re.fullmatch(r"([a-z]+)(?:\[\w+\])?>=([\d.]+),<([\d.]+)", spec)
        if match:
            caps[match[1]] = (Version(match[2]), Version(match[3]))
    return caps


@pytest.mark.parametrize("package", sorted(READ_AGAINST))
def test_the_versions_read_against_and_installed_are_inside_the_caps(package):
    low, high = _caps()[package]
    assert low <= Version(READ_AGAINST[package]) < high
    installed = Version(internals.installed_versions()[package])
    assert low <= installed < high, f"{package} {installed} is outside >={low},<{high}"


@pytest.mark.parametrize(("launcher", "config", "grows"), [
    (True, None, True),  # a cluster `ray up` started
    (False, SimpleNamespace(node_group_configs=["gpu-workers"]), True),  # KubeRay, v2
    (False, SimpleNamespace(node_group_configs=[]), False),  # a fixed cluster
    (False, None, False),
    (False, RuntimeError("no GCS table"), False),  # an older or partial GCS
])
def test_whether_a_cluster_can_grow(monkeypatch, launcher, config, grows):
    import ray._private.state
    import ray.tune.execution.cluster_info

    def cluster_config():
        if isinstance(config, Exception):
            raise config
        return config

    monkeypatch.setattr(ray.tune.execution.cluster_info, "_is_ray_cluster", lambda: launcher)
    monkeypatch.setattr(ray._private.state.state, "get_cluster_config", cluster_config)
    assert internals.cluster_can_grow() is grows
    assert search.cluster.can_grow("10.0.0.5:6379") is grows
    assert search.cluster.can_grow("local") is False  # a Ray this driver started, whatever
