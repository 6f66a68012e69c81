"""The fault matrix, on real tiny sweeps: `python bench/faults.py [--only kills,grid,trials,node]`.

Every fault is injected for real into a sweep run through the entry point (`search.cli.main`,
by `bench/fault_driver.py`), each in its own Ray instance that it starts and stops:

- kills: one sweep SIGKILLed while its trials start, Ctrl-C'd (SIGINT) mid-epoch, SIGKILLed
  while it rewrites leaderboard.csv, each time resumed with `--resume`, until it finishes.
  After the Ctrl-C, copies of the sweep get a truncated experiment state, a truncated searcher
  state, and a move (resumed in its new place with the original moved away).
- grid: a grid sweep run one trial at a time, Ctrl-C'd before it made its later trials, moved
  and resumed in its new place.
- trials: a grid sweep whose trials raise, run out of memory, diverge to NaN, and are refused by
  the resource guard, beside one healthy trial.
- node: a two-worker-node local Ray cluster (`ray.cluster_utils.Cluster`); a node is killed
  while a trial that checkpointed runs on it.

Prints one row per fault: times injected, trials lost (asked for and never finished, or
finished twice), trials re-run (finished, then trained again), whether leaderboard.csv was
valid after every injection; then `RESULT trials_lost=<n> trials_rerun=<n> faults=<n>`.
`tests/test_faults.py` runs the same scenarios and asserts on them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)] if str(REPO) not in sys.path else []

from results.leaderboard import LEADERBOARD_COLUMNS  # noqa: E402
from results.render import read_csv  # noqa: E402
from spaces import constants as C  # noqa: E402

DRIVER = REPO / "bench" / "fault_driver.py"
EPOCHS = 2
SMALL = ["--subset", "300", "--val-subset", "100", "--report-images", "100", "--seed", "1",
         "--cpus-per-trial", "1"]
KILL_SWEEP = ["--task", "mnist", "--space", "study-axes", "--search", "random", "--scheduler",
              "fifo", "--num-samples", "4", "--max-epochs", str(EPOCHS), "--max-params", "20000",
              "--max-concurrent", "2", *SMALL]
# Grid trials are numbered in row order: 00000 healthy, 00001 raises, 00002 out of memory,
# 00003 NaN, 00004 mnist/1.3/5, far over the parameter limit (refused by the guard).
FAULT_ROWS = "mnist/1.1/1,mnist/1.2/2,mnist/1.2/3,mnist/1.2/4,mnist/1.3/5"
TRIAL_FAULTS = {"00001": ["raise", 1], "00002": ["oom", 1], "00003": ["nan", 0]}
TIMEOUT = 600


@dataclass
class Row:
    fault: str
    injected: int = 0
    lost: int = 0
    rerun: int = 0
    valid: bool = True
    notes: list[str] = field(default_factory=list)

    def check(self, ok: bool, note: str) -> None:
        if not ok:
            self.notes.append(note)


def env(data_dir: Path, faults: dict[str, Any] | None = None) -> dict[str, str]:
    return {**os.environ, "SEARCH_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                          if p),
            "AESEARCH_FAULTS": json.dumps(faults or {})}


# Each report after a trial's first waits 2.5 s: the Ctrl-C window (one trial finished,
# another mid-epoch) then does not depend on how fast this machine trains. Without it, trials
# of 100-image reports outran the driver, which recorded their mid-epoch reports in bursts.
SLOW = {"trials": {"*": ["sleep", 1, 2.5]}}


def start(args: list[str], data_dir: Path, log: Path,
          faults: dict[str, Any] | None = None) -> subprocess.Popen:
    """The driver in its own process group (the only thing a kill here reaches)."""
    handle = log.open("w")
    return subprocess.Popen([sys.executable, str(DRIVER), *args], env=env(data_dir, faults),
                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=REPO)


def finish(proc: subprocess.Popen, timeout: float = TIMEOUT) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def kill(proc: subprocess.Popen, sig: int) -> int:
    """Send `sig` to the driver's group (as Ctrl-C reaches a terminal's foreground group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        return finish(proc, 180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(what: Callable[[], bool], proc: subprocess.Popen | None, timeout: float,
             label: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the sweep ended before {label}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {label}")
        time.sleep(0.2)


def statuses(sweep: Path) -> dict[str, str]:
    try:
        return json.loads((sweep / C.STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def result_rows(sweep: Path) -> dict[str, list[dict[str, Any]]]:
    """Every trial's result.json rows (a half-written last line dropped), by trial dir."""
    rows = {}
    for path in sweep.glob(f"trial_*/{C.RESULT_FILE}"):
        lines = []
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                break
        rows[path.parent.name.removeprefix("trial_")] = lines
    return rows


def finished_trials(sweep: Path) -> set[str]:
    """Trials whose result.json ended them: the full budget reached, or a verdict (collapsed,
    diverged, ...). What a resume must never train again."""
    return {t for t, rows in result_rows(sweep).items()
            if rows and (rows[-1].get(C.EPOCH, 0) >= EPOCHS or rows[-1].get(C.VERDICT))}


def retrained(sweep: Path, finished: set[str]) -> set[str]:
    """Of `finished`, the trials that reported an already-reported position with other
    training seconds (trained again; an identical repeat of the final report is not)."""
    again = set()
    for trial_id, rows in result_rows(sweep).items():
        if trial_id not in finished:
            continue
        seen: dict[Any, Any] = {}
        for row in rows:
            images, seconds = row.get(C.IMAGES), row.get(C.SECONDS)
            if images in seen and seen[images] != seconds:
                again.add(trial_id)
            seen.setdefault(images, seconds)
    return again


def board_problems(sweep: Path, epochs: int = EPOCHS) -> list[str]:
    """What is wrong with leaderboard.csv: unreadable, wrong columns, or an unfinished trial
    shown as finished."""
    path = sweep / C.LEADERBOARD_FILE
    if not path.exists():
        return []  # not written yet: nothing shown
    try:
        board = read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
        return [f"leaderboard.csv unreadable: {exc}"]
    problems = []
    if list(board.columns) != list(LEADERBOARD_COLUMNS):
        problems.append(f"leaderboard.csv columns {list(board.columns)}")
    shown_done = board[board["status"] == C.Status.TERMINATED]
    short = shown_done[shown_done["epochs"].fillna(0) < epochs]
    if len(short):
        problems.append(f"unfinished trials shown TERMINATED: {list(short[C.TRIAL_ID])}")
    return problems


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- kills, damaged state, a moved sweep ------------------------------------------------------
def kills(root: Path, data_dir: Path) -> list[Row]:  # noqa: PLR0915 - one scenario after another
    sweep = root / "killed"
    args = [*KILL_SWEEP, "--storage", str(root), "--name", "killed", "--address", "local"]
    rows = {name: Row(name) for name in ("SIGKILL while trials start", "Ctrl-C mid-epoch",
                                         "SIGKILL while writing leaderboard",
                                         "truncated experiment state",
                                         "truncated searcher state", "sweep moved, resumed")}
    finished_at_kill: set[str] = set()

    def after(row: Row, proc_rc: int | None = None) -> None:
        nonlocal finished_at_kill
        row.injected += 1
        problems = board_problems(sweep)
        row.valid = row.valid and not problems
        row.notes += problems
        finished_at_kill |= finished_trials(sweep)

    # 1. SIGKILL as soon as the first trial starts
    row = rows["SIGKILL while trials start"]
    proc = start(args, data_dir, root / "run1.log")
    wait_for(lambda: any(s == C.Status.RUNNING for s in statuses(sweep).values()), proc, 300,
             "a trial started")
    kill(proc, signal.SIGKILL)
    after(row)

    # 2. resume; Ctrl-C once a trial finished and another is mid-epoch
    row = rows["Ctrl-C mid-epoch"]
    proc = start([*args, "--resume"], data_dir, root / "run2.log", SLOW)

    def mid_epoch() -> bool:
        done = finished_trials(sweep)
        return bool(done) and any(
            rows_ and rows_[-1].get(C.EPOCH, 0) % 1 and t not in done
            for t, rows_ in result_rows(sweep).items())

    wait_for(mid_epoch, proc, TIMEOUT, "a trial mid-epoch after one finished")
    rc = kill(proc, signal.SIGINT)
    after(row)
    out = (root / "run2.log").read_text()
    row.check(rc == 130, f"Ctrl-C exit code {rc}, not 130")
    row.check(out.count("--resume") == 1, f"{out.count('--resume')} resume hints, not 1")
    row.check("Tuner.restore" not in out, "Ray's Tuner.restore hint printed")
    shown = statuses(sweep)
    row.check(C.Status.INTERRUPTED in shown.values(), f"no INTERRUPTED status: {shown}")
    row.check(all(s != C.Status.TERMINATED or t in finished_trials(sweep)
                  for t, s in shown.items()), f"an unfinished trial is TERMINATED: {shown}")
    report = subprocess.run([sys.executable, "-m", "results", str(sweep), "--out",
                             str(root / "report")], capture_output=True, text=True, cwd=REPO,
                            env=env(data_dir), timeout=300)
    row.check(report.returncode == 0 and "interrupted" in report.stdout,
              f"python -m results: {report.stdout[-500:]}{report.stderr[-500:]}")

    # 3. damaged copies of the interrupted sweep: --resume refuses, changes nothing
    for name, pattern in (("truncated experiment state", "experiment_state-*.json"),
                          ("truncated searcher state", "searcher-state-*.pkl")):
        row = rows[name]
        copy = root / "damaged" / name.replace(" ", "-")
        shutil.copytree(sweep, copy / "killed")
        target = sorted((copy / "killed").glob(pattern))[-1]
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
        before = tree_digest(copy)
        proc = start([*KILL_SWEEP, "--storage", str(copy), "--name", "killed", "--address",
                      "local", "--resume"], data_dir, root / f"{copy.name}.log")
        rc = finish(proc)
        out = (root / f"{copy.name}.log").read_text()
        row.injected += 1
        row.check(rc == 2, f"exit code {rc}, not 2")
        row.check(target.name in out and "damaged" in out, f"no line naming {target.name}")
        row.check(tree_digest(copy) == before, "files changed")
        row.valid = not board_problems(copy / "killed")

    # 4. a copy resumed where it is, the original moved away meanwhile and never written
    row = rows["sweep moved, resumed"]
    moved_root = root / "elsewhere"
    shutil.copytree(sweep, moved_root / "killed")
    original = tree_digest(sweep)
    away = root / "killed-away"
    sweep.rename(away)
    try:
        moved = moved_root / "killed"
        proc = start([*KILL_SWEEP, "--storage", str(moved_root), "--name", "killed",
                      "--address", "local", "--resume"], data_dir, root / "moved.log")
        rc = finish(proc)
    finally:
        away.rename(sweep)
    row.injected += 1
    row.check(rc == 0, f"the moved sweep's resume exited {rc}: "
                       f"{(root / 'moved.log').read_text()[-1500:]}")
    row.check(tree_digest(sweep) == original, "the original sweep dir was written")
    row.check(not (away).exists() and not list(root.glob("killed-away*")), "stray dir")
    row.valid = not board_problems(moved)
    done = finished_trials(moved)
    row.lost = 4 - len(done)
    row.rerun = len(retrained(moved, finished_trials(sweep)))
    meta = json.loads((moved / C.SWEEP_FILE).read_text())
    row.check(meta.get("finished") is True, "the moved sweep did not finish")
    text = "\n".join((moved / n).read_text() for n in (C.SWEEP_FILE, C.STATUS_FILE,
                                                       C.LEADERBOARD_FILE))
    row.check(str(sweep) not in text, "a file of the moved sweep names the original")
    report = subprocess.run([sys.executable, "-m", "results", str(moved)], capture_output=True,
                            text=True, cwd=REPO, env=env(data_dir), timeout=300)
    row.check(report.returncode == 0 and (moved / "tables").is_dir(),
              f"python -m results on the moved sweep: {report.stderr[-500:]}")

    # 5. (the original) resume; the driver kills itself while rewriting leaderboard.csv
    row = rows["SIGKILL while writing leaderboard"]
    proc = start([*args, "--resume"], data_dir, root / "run3.log", {"kill_on_board_write": 3})
    rc = finish(proc)
    row.check(rc == -signal.SIGKILL, f"the driver was not killed mid-write (exit {rc})")
    after(row)
    leftover = list(sweep.glob(".leaderboard.csv.*.tmp"))
    row.check(len(leftover) == 1, f"expected the half-written temp file, found {leftover}")

    # 6. the last resume finishes the sweep: each trial finished once, none retrained
    proc = start([*args, "--resume"], data_dir, root / "run4.log")
    rc = finish(proc)
    final = rows["SIGKILL while trials start"]
    final.check(rc == 0, f"the last resume exited {rc}: {(root / 'run4.log').read_text()[-1500:]}")
    board = read_csv(sweep / C.LEADERBOARD_FILE)
    done = finished_trials(sweep)
    lost = 4 - len(done) + (len(board) - board[C.TRIAL_ID].nunique())
    rerun = len(retrained(sweep, finished_at_kill))
    for name in ("SIGKILL while trials start", "Ctrl-C mid-epoch",
                 "SIGKILL while writing leaderboard"):
        rows[name].lost, rows[name].rerun = lost, rerun  # one sweep: shared by its kills
    ended = board["status"].isin(C.UNHEALTHY) | (
        (board["status"] == C.Status.TERMINATED) & (board["epochs"] == EPOCHS))
    final.check(len(board) == 4 and ended.all(),
                f"final leaderboard: {board[[C.TRIAL_ID, 'status', 'epochs']].to_dict('records')}")
    return list(rows.values())


# --- a grid interrupted before it made all its trials, moved, resumed ---------------------------
GRID_ROWS = "mnist/1.1/1,mnist/1.2/2,mnist/1.2/3,mnist/1.2/4"


def grid_resume(root: Path, data_dir: Path) -> list[Row]:
    """With --max-concurrent 1, Ray's grid generator makes each trial as the one before ends:
    the points still to come live only in its saved state, with their storage and unresolved
    model. Ctrl-C after the first trial, move the sweep, resume: every point must train, in
    the new place."""
    row = Row("grid moved before all its trials existed", injected=1)
    args = ["--task", "mnist", "--space", "report", "--rows", GRID_ROWS, "--max-epochs", "1",
            "--max-concurrent", "1", *SMALL, "--name", "grid", "--address", "local"]
    first, moved_root = root / "first", root / "moved"
    proc = start([*args, "--storage", str(first)], data_dir, root / "grid1.log", SLOW)
    wait_for(lambda: C.Status.TERMINATED in statuses(first / "grid").values(), proc, TIMEOUT,
             "a grid trial ended")
    rc = kill(proc, signal.SIGINT)
    row.check(rc == 130, f"Ctrl-C exit code {rc}, not 130")
    made = len(statuses(first / "grid"))
    row.check(made < 4, f"all {made} grid trials existed at Ctrl-C: nothing left to test")
    first.rename(moved_root)
    proc = start([*args, "--storage", str(moved_root), "--resume"], data_dir, root / "grid2.log")
    rc = finish(proc)
    out = (root / "grid2.log").read_text()
    row.check(rc == 0, f"the resume exited {rc}: {out[-1500:]}")
    row.check(not first.exists(), f"the resume wrote to the old folder {first}")
    sweep = moved_root / "grid"
    board = read_csv(sweep / C.LEADERBOARD_FILE)
    row.lost = 4 - int((board["status"] == C.Status.TERMINATED).sum())
    row.check(list(board["status"]) == [C.Status.TERMINATED] * 4,
              f"final leaderboard: {board[[C.TRIAL_ID, 'status', C.REASON]].to_dict('records')}")
    row.valid = not board_problems(sweep, epochs=1)
    return [row]


# --- trials that raise, run out of memory, diverge, are refused ---------------------------------
def trial_faults(root: Path, data_dir: Path) -> list[Row]:
    sweep = root / "faulty"
    args = ["--task", "mnist", "--space", "report", "--rows", FAULT_ROWS, "--max-epochs", "1",
            *SMALL, "--storage", str(root), "--name", "faulty", "--address", "local"]
    proc = start(args, data_dir, root / "faulty.log", {"trials": TRIAL_FAULTS})
    rc = finish(proc)
    out = (root / "faulty.log").read_text()
    board = read_csv(sweep / C.LEADERBOARD_FILE).set_index(C.TRIAL_ID)
    by_number = {t.rsplit("_", 1)[-1]: t for t in board.index}
    expected = {"00001": (C.Status.ERROR, "injected fault"),
                "00002": (C.Status.OUT_OF_MEMORY, "out of memory"),
                "00003": (C.Status.DIVERGED, "diverged"),
                "00004": (C.Status.REFUSED, "--max-params")}
    names = {"00001": "trial raises", "00002": "trial out of memory", "00003": "NaN loss",
             "00004": "guard refusal"}
    rows = []
    results = result_rows(sweep)
    for number, (status, reason) in expected.items():
        row = Row(names[number], injected=1)
        trial_id = by_number.get(number)
        row.check(rc == 0, f"the sweep exited {rc}: {out[-1500:]}")
        if trial_id is None:
            row.lost, row.notes = 1, [f"trial {number} missing"]
            rows.append(row)
            continue
        got = board.loc[trial_id]
        row.check(got["status"] == status, f"status {got['status']}, not {status}")
        row.check(reason in str(got[C.REASON]), f"reason {got[C.REASON]!r} lacks {reason!r}")
        lines = [line for line in out.splitlines()
                 if line.startswith("[") and f"trial {trial_id}" in line]
        row.check(len(lines) == 1, f"{len(lines)} terminal lines for {trial_id}")
        reports = results.get(trial_id, [])
        if number == "00003":
            row.check(len(reports) == 1, f"NaN trial reported {len(reports)} times, not 1")
        if number in ("00002", "00004"):  # not retried: nothing trained twice
            row.check(not retrained(sweep, {trial_id}), f"retried: {reports}")
        row.valid = not board_problems(sweep, epochs=1)
        rows.append(row)
    healthy = board.loc[by_number["00000"]] if "00000" in by_number else None
    for row in rows:
        row.check(healthy is not None and healthy["status"] == C.Status.TERMINATED,
                  "the healthy trial did not finish: the sweep did not go on")
    return rows


# --- a worker node dies mid-trial ---------------------------------------------------------------
def node_death(root: Path, data_dir: Path) -> list[Row]:
    import ray
    from ray._common.utils import get_ray_address_file
    from ray.cluster_utils import Cluster

    row = Row("worker node killed mid-trial")
    # The nodes' workers import the fault hooks (a slow second epoch: time to kill a node).
    pythonpath = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "bench"), str(REPO), os.environ.get("PYTHONPATH")) if p)
    address_file = Path(get_ray_address_file(None))
    saved = address_file.read_bytes() if address_file.exists() else None
    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        sweep = root / "nodes"
        args = ["--task", "mnist", "--space", "study-axes", "--search", "random", "--scheduler",
                "fifo", "--num-samples", "2", "--max-epochs", str(EPOCHS), "--max-params",
                "20000", "--max-concurrent", "2", *SMALL, "--storage", str(root), "--name",
                "nodes", "--address", cluster.address]
        proc = start(args, data_dir, root / "nodes.log", {"trials": {"*": ["sleep", 3, 2.0]}})
        victim: dict[str, str] = {}

        def checkpointed_on_a_worker() -> bool:
            for trial_id, reports in result_rows(sweep).items():
                done = [r for r in reports if r.get(C.EPOCH) == 1]
                if done and any((sweep / f"trial_{trial_id}").glob("checkpoint_*")) and \
                        reports[-1].get(C.EPOCH, 0) < EPOCHS:
                    victim.update(trial=trial_id, node=str(done[-1][C.NODE]))
                    return True
            return False

        wait_for(checkpointed_on_a_worker, proc, TIMEOUT, "a checkpoint on a worker node")
        dead = next(n for n in nodes if n.node_id == victim["node"])
        cluster.remove_node(dead, allow_graceful=False)
        row.injected += 1
        rc = finish(proc)
        out = (root / "nodes.log").read_text()
        row.check(rc == 0, f"the sweep exited {rc}: {out[-1500:]}")
        board = read_csv(sweep / C.LEADERBOARD_FILE)
        row.valid = not board_problems(sweep)
        done = finished_trials(sweep)
        row.lost = 2 - len(done)
        reports = result_rows(sweep)[victim["trial"]]
        after_death = [r for r in reports if r[C.NODE] != victim["node"]]
        row.check(bool(after_death), "the trial did not move to the live node")
        row.check(not after_death or after_death[0][C.IMAGES] > 300,
                  "the moved trial started over instead of from its checkpoint")
        row.check(board["status"].isin({C.Status.TERMINATED, *C.UNHEALTHY}).all(),
                  f"not every trial finished: {list(board['status'])}")
    finally:
        cluster.shutdown()
        if pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = pythonpath
        if saved is not None:
            address_file.write_bytes(saved)
        assert not ray.is_initialized()
    return [row]


SCENARIOS = {"kills": kills, "grid": grid_resume, "trials": trial_faults, "node": node_death}


def table(rows: list[Row]) -> str:
    lines = ["| fault | injected | trials lost | trials re-run | leaderboard valid | notes |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.fault} | {r.injected} | {r.lost} | {r.rerun} | "
                     f"{'yes' if r.valid else 'NO'} | {'; '.join(r.notes) or 'ok'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--data-dir", default=os.environ.get("SEARCH_DATA_DIR",
                                                             str(REPO.parent / "shared" / "data")))
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temp dir)")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        root = Path(args.keep or tmp)
        for name in args.only.split(","):
            began = time.monotonic()
            (root / name).mkdir(parents=True, exist_ok=True)
            try:
                rows += SCENARIOS[name](root / name, Path(args.data_dir))
            except Exception as exc:  # noqa: BLE001 - a scenario that broke is a finding
                rows.append(Row(name, lost=-1, valid=False, notes=[f"{type(exc).__name__}: "
                                                                    f"{exc}"]))
            print(f"{name}: {time.monotonic() - began:.0f} s", file=sys.stderr)
    print(table(rows))
    lost = sum(max(r.lost, 0) for r in rows if r.fault != "SIGKILL while writing leaderboard"
               and r.fault != "Ctrl-C mid-epoch")
    rerun = sum(r.rerun for r in rows if r.fault != "SIGKILL while writing leaderboard"
                and r.fault != "Ctrl-C mid-epoch")
    print(f"RESULT trials_lost={lost} trials_rerun={rerun} faults={sum(r.injected for r in rows)}")
    return 0 if all(not r.notes and r.valid for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
