"""Sweeps on real Ray clusters: two nodes on this host, and `ray submit` with clusters/local.yaml.

Both run the entry point in a subprocess, so this test process never joins a cluster, and each
stops exactly what it started. The `ray submit` test ends with `ray down`, which runs `ray stop`
on the head, this host: `ray stop` ends EVERY Ray process here, whoever started it. So that test
is the last of this module (pytest runs tests one at a time; never use pytest-xdist here), starts
only once no other Ray instance runs on the host, and before `ray down` waits for any that
started meanwhile to finish; if one outlives the wait, it stops its own head by pid and fails.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
import ray
import yaml
from local_host import (
    cmdline,
    descendants,
    keygen,
    process_table,
    restored,
    ssh_server,
    terminate,
)
from ray._common.utils import get_ray_address_file
from ray.autoscaler._private.local.config import get_lock_path, get_state_path
from ray.cluster_utils import Cluster

from results.render import read_csv
from spaces import constants as C

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "search" / "run.py"
BIN = Path(sys.executable).parent  # the running virtual environment: `ray`, `python`
SWEEP = ["--task", "mnist", "--space", "study-axes", "--search", "random", "--scheduler", "fifo",
         "--max-epochs", "1", "--max-params", "20000", "--subset", "300", "--val-subset", "200",
         "--cpus-per-trial", "1", "--seed", "1"]
SUBMIT_CLUSTER = "aesearch-submit-test"  # cluster_name of the generated local.yaml copy
RAY_DAEMONS = ("raylet", "gcs_server")  # one of each per running Ray instance
HEAD_PORT = "6379"  # the head's GCS port in clusters/local.yaml's `ray start --head`


def tail(text: str, n: int = 4000) -> str:
    return text[-n:]


def finished_board(sweep_dir: Path) -> pd.DataFrame:
    path = sweep_dir / C.LEADERBOARD_FILE
    assert path.is_file(), f"the sweep wrote no {path}"
    return read_csv(path)


# --- 1. a two-node cluster on this machine --------------------------------------------------
@pytest.fixture
def two_nodes() -> Iterator[Cluster]:
    """Head and one more node, 1 CPU each: two concurrent 1-CPU trials need both.

    Function-scoped so that the cluster is gone before the `ray submit` test starts. The test
    process only holds a GCS client for `wait_for_nodes`; it never calls `ray.init`. `Cluster`
    records its address in Ray's address file, and deletes that file when it shuts down:
    whatever was there before is put back.
    """
    with restored(Path(get_ray_address_file(None))):
        cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
        try:
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            yield cluster
        finally:
            cluster.shutdown()
            cluster.global_state.disconnect()


@pytest.mark.integration
def test_sweep_spreads_trials_over_the_nodes_of_a_cluster(two_nodes, tmp_path, data_dir):
    nodes = {node.node_id for node in two_nodes.list_all_nodes()}
    assert len(nodes) == 2
    proc = subprocess.run(
        [sys.executable, str(RUN), *SWEEP, "--num-samples", "4", "--max-concurrent", "2",
         "--address", two_nodes.address, "--storage", str(tmp_path), "--name", "two-nodes",
         "--data-dir", str(data_dir)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, tail(proc.stdout + proc.stderr)
    board = finished_board(tmp_path / "two-nodes")
    assert len(board) == 4
    # Ended without failing (a tiny random model may stop itself as COLLAPSED).
    assert board["status"].isin(C.FINISHED | C.UNHEALTHY).all(), board[["trial_id", "status"]]
    assert set(board[C.NODE]) == nodes  # trials ran on both nodes, and only on them
    assert not ray.is_initialized()


# --- 2. `ray submit` against clusters/local.yaml, head = this machine over SSH ---------------
def ray_daemons() -> list[int]:
    return [pid for pid, name, _ in process_table() if name in RAY_DAEMONS]


def head_processes() -> list[int]:
    """Every process of the Ray head that `ray up` started here (its GCS is on HEAD_PORT)."""
    table = process_table()
    sessions = set()
    for pid, name, _ in table:
        args = cmdline(pid) if name == "gcs_server" else []
        if f"--gcs_server_port={HEAD_PORT}" in args:
            sessions |= {a.removeprefix("--session-name=") for a in args
                         if a.startswith("--session-name=")}
    if not sessions:
        return []
    roots = [pid for pid, _, _ in table if any(s in arg for arg in cmdline(pid) for s in sessions)]
    return sorted({*roots, *(child for root in roots for child in descendants(root, table))})


def wait_for_no_other_ray(ours: list[int], timeout: float) -> bool:
    """Whether, within `timeout`, every raylet/GCS on this host is one of `ours`."""
    deadline = time.monotonic() + timeout
    while [pid for pid in ray_daemons() if pid not in ours]:
        if time.monotonic() > deadline:
            return False
        time.sleep(2.0)
    return True


def submit_config(key: Path) -> dict:
    """clusters/local.yaml with this machine as the head, as root, and the running venv.

    The project is installed already, so no file_mounts; the setup commands only check that the
    login shell finds this venv's `python`, which is where `ray submit` runs the entry point.
    The head starts without `ray stop` (no Ray runs here: checked), so that a Ray instance
    someone starts meanwhile survives `ray up`.
    """
    config = yaml.safe_load((REPO / "clusters" / "local.yaml").read_text())
    config["cluster_name"] = SUBMIT_CLUSTER
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(key)}
    config["file_mounts"] = {}
    python = shlex.quote(str(BIN / "python"))
    config["setup_commands"] = [f'test "$(command -v python)" = {python}',
                                "python -c 'import search.cli'"]
    config["head_setup_commands"] = config["worker_setup_commands"] = []
    config["head_start_ray_commands"] = [
        cmd for cmd in config["head_start_ray_commands"] if cmd.strip() != "ray stop"]
    assert any(f"--port={HEAD_PORT}" in cmd for cmd in config["head_start_ray_commands"])
    return config


class Launcher:
    """The `ray` CLI of the running venv, its output collected in one log.

    TMPDIR points the launcher's own files (config cache, local-provider state) at the test's
    temp dir; the head, reached over SSH, keeps the usual /tmp/ray.
    """

    def __init__(self, config_file: Path, workdir: Path) -> None:
        self.config_file = config_file
        self.log = workdir / "ray.log"
        (workdir / "launcher").mkdir()
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "TMPDIR": str(workdir / "launcher"), "RAY_USAGE_STATS_ENABLED": "0"}

    def __call__(self, command: str, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(BIN / "ray"), command, *args], env=self.env,
                              capture_output=True, text=True, timeout=600)
        with self.log.open("a") as f:
            f.write(f"$ ray {command} {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
        return proc

    def tail(self) -> str:
        return tail(self.log.read_text())

    def down(self) -> None:
        """`ray down` once no other Ray instance runs here, else stop the head by pid and fail.

        `ray down` runs `ray stop` on the head, which is this host: it would end any Ray
        instance started here during the test too.
        """
        ours = head_processes()
        if not wait_for_no_other_ray(ours, timeout=300):
            terminate(ours)
            pytest.fail("another Ray instance started on this host during the test; stopped "
                        "this test's head by pid instead of `ray down` (which would end it)")
        down = self("down", "-y", str(self.config_file))
        if down.returncode != 0 or head_processes():
            terminate(head_processes())
            pytest.fail(f"`ray down` failed, head stopped by pid:\n{self.tail()}")


@pytest.mark.integration
def test_ray_submit_runs_a_sweep_on_a_local_provider_cluster(tmp_path, data_dir):
    if os.geteuid() != 0:  # CI runs as root; a skip would hide this test's failures
        pytest.fail("logs in as root over SSH on port 22 and starts sshd: run it as root, as "
                    ".ci/run does, or leave it out with -m 'not integration'")
    for tool in ("ssh", "ssh-keygen", "rsync"):  # rsync: how `ray up`/`ray submit` copy files
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: the Ray cluster launcher needs it")
    storage, data = tmp_path / "runs", str(data_dir.resolve())  # the head's shell is in ~
    if " " in data:
        pytest.fail(f"`ray submit` splits its arguments on spaces: data dir {data!r}")
    if not wait_for_no_other_ray([], timeout=120):
        pytest.fail(f"another Ray instance runs on this host (raylet/gcs_server pids "
                    f"{ray_daemons()}); `ray down` would end it, so this test needs a host "
                    f"without one")

    home = Path(pwd.getpwnam("root").pw_dir)
    key = tmp_path / "id_ed25519"
    keygen(key)
    config_file = tmp_path / "local.yaml"
    config_file.write_text(yaml.safe_dump(submit_config(key)))
    ray_cli = Launcher(config_file, tmp_path)
    bashrc = home / ".bashrc"

    with ExitStack() as stack:  # exits in reverse: `ray down`, root's files, sshd
        stack.enter_context(ssh_server(tmp_path, Path(f"{key}.pub").read_text(), home))
        # What the launcher and the head leave in root's home and /tmp/ray, and the login
        # shell's PATH (the last word in .bashrc: `ray` and `python` from this venv).
        stack.enter_context(restored(
            bashrc, home / "run.py", home / "ray_bootstrap_config.yaml",
            home / "ray_bootstrap_key.pem", Path(get_ray_address_file(None)),
            Path(get_state_path(SUBMIT_CLUSTER)), Path(get_lock_path(SUBMIT_CLUSTER))))
        with bashrc.open("a") as f:
            f.write(f'\nexport PATH={shlex.quote(str(BIN))}:"$PATH"  # tests/test_cluster.py\n')
        stack.callback(ray_cli.down)

        up = ray_cli("up", "-y", "--disable-usage-stats", str(config_file))
        assert up.returncode == 0, ray_cli.tail()
        submit = ray_cli("submit", str(config_file), str(RUN), "--", *SWEEP,
                         "--num-samples", "2", "--storage", str(storage), "--name", "submitted",
                         "--data-dir", data, "--address", "auto")
        assert submit.returncode == 0, ray_cli.tail()
        assert (home / "run.py").read_bytes() == RUN.read_bytes()  # what `ray submit` ran

    board = finished_board(storage / "submitted")
    assert len(board) == 2
    # Ended without failing (a tiny random model may stop itself as COLLAPSED).
    assert board["status"].isin(C.FINISHED | C.UNHEALTHY).all(), board[["trial_id", "status"]]
    assert board[C.NODE].nunique() == 1  # the head, the cluster's only node
    assert not head_processes(), "the head outlived `ray down`"
