"""`aesearch dashboard SWEEP_DIR` (search/dashboard.py): refusals without Ray, then a real tiny
sweep served as a subprocess, its JSON API read back and, where chromium is installed, a
headless screenshot of the page. The dashboard process each test starts is the only one it
stops, by its pid."""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_sweep import SMALL, run_cli

from results.render import read_csv
from search import journal
from search.cli import main
from spaces import constants as C

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`aesearch dashboard ...` must exit 2 with one line on stderr; that line."""
    status: int | str | None
    try:
        status = main(["dashboard", *argv])
    except SystemExit as exc:  # argparse's own refusals
        status = exc.code
    assert status == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("error: ")
    return captured.err


def test_a_folder_without_a_readable_journal_is_refused_in_one_line(tmp_path, capsys):
    assert str(tmp_path / C.JOURNAL_FILE) in _refused([str(tmp_path)], capsys)
    assert "no such sweep folder" in _refused([str(tmp_path / "nowhere")], capsys)
    (tmp_path / C.JOURNAL_FILE).write_bytes(b"garbage\n{}\n")
    line = _refused([str(tmp_path)], capsys)
    assert "damaged" in line and str(tmp_path / C.JOURNAL_FILE) in line
    assert "--port" in _refused([str(tmp_path), "--port", "70000"], capsys)
    assert "--port" in _refused([str(tmp_path), "--port", "x"], capsys)


def test_the_dashboards_storage_refuses_every_write(tmp_path):
    import optuna

    from search.dashboard import ReadOnlyError, read_only_storage

    path = tmp_path / C.JOURNAL_FILE
    optuna.create_study(storage=journal.open_storage(path), study_name="s").ask()
    before = path.read_bytes()
    storage = read_only_storage(path)
    assert [s.study_name for s in storage.get_all_studies()] == ["s"]
    for write in (lambda: storage.delete_study(0), lambda: storage.create_new_trial(0),
                  lambda: storage.set_trial_state_values(0, optuna.trial.TrialState.FAIL),
                  lambda: storage.set_study_system_attr(0, "note", "x")):
        with pytest.raises(ReadOnlyError):
            write()
    assert path.read_bytes() == before


# --- a real sweep, served ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A finished tiny sweep: 3 trials of the default searcher."""
    storage = tmp_path_factory.mktemp("dashboard")
    proc = run_cli(["--task", "mnist", "--num-samples", "3", "--max-epochs", "2",
                    "--max-params", "20000", "--max-concurrent", "1",
                    "--storage", str(storage), "--name", "watched", *SMALL], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hint = [line for line in proc.stdout.splitlines() if line.startswith("dashboard: ")]
    assert hint == [f"dashboard: aesearch dashboard {storage / 'watched'} (or optuna-dashboard "
                    f"{storage / 'watched' / C.JOURNAL_FILE})"]
    return storage / "watched"


@pytest.fixture
def served(sweep: Path) -> Iterator[str]:
    """`aesearch dashboard SWEEP_DIR` on a free port: its URL (the first line it prints)."""
    proc = subprocess.Popen([sys.executable, "-m", "search.cli", "dashboard", str(sweep)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        first = proc.stdout.readline() if ready else ""
        assert first.startswith("dashboard: http://127.0.0.1:"), (first, proc.poll())
        url = first.split(" ", 1)[1].strip()
        assert url.endswith("/dashboard/")
        yield url.removesuffix("/dashboard/")
    finally:
        proc.terminate()  # the process this fixture started, by its pid
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get(url: str) -> Any:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
def test_the_dashboard_serves_the_sweeps_trials_with_their_states(sweep, served):
    studies = _get(f"{served}/api/studies")["study_summaries"]
    assert [(s["study_name"], s["directions"]) for s in studies] == [("watched", ["minimize"])]
    detail = _get(f"{served}/api/studies/{studies[0]['study_id']}")
    trials = detail["trials"]
    board = read_csv(sweep / C.LEADERBOARD_FILE)
    attrs = [{a["key"]: a["value"] for a in t["user_attrs"]} for t in trials]
    assert sorted(a[journal.RAY_TRIAL_ID] for a in attrs) == sorted(board["trial_id"])
    states = {a[journal.RAY_TRIAL_ID]: (t["state"], a[journal.STATUS])
              for t, a in zip(trials, attrs, strict=True)}
    expected = {"Complete": {"finished"}, "Pruned": {"stopped by ASHA", "collapsed"},
                "Fail": {"diverged", "failed"}}
    assert all(status in expected[state] for state, status in states.values()), states
    assert any(state == "Complete" for state, _ in states.values())
    for row in board.itertuples():
        if row.status == C.Status.TERMINATED and row.epochs == 2:
            assert states[row.trial_id] == ("Complete", "finished")
    assert detail["has_intermediate_values"]
    assert all(a[journal.MODEL] for a in attrs)

    before = (sweep / C.JOURNAL_FILE).read_bytes()
    request = urllib.request.Request(f"{served}/api/studies/0", method="DELETE")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=30)
    assert (sweep / C.JOURNAL_FILE).read_bytes() == before  # read only


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_the_dashboard_page_renders_in_a_headless_browser(served, tmp_path):
    from PIL import Image

    shot = tmp_path / "dashboard.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1280,800",
                    "--virtual-time-budget=10000", f"{served}/dashboard/studies/0"],
                   capture_output=True, timeout=180, check=True)
    assert shot.stat().st_size > 10_000
    with Image.open(shot) as image:
        assert image.size == (1280, 800)
        colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 50  # a page drawn, not a blank or one-colour one


def test_several_sweeps_are_served_side_by_side_each_its_own_study(tmp_path):
    """`aesearch dashboard A B`: a search beside the grid replay of the study's rows, in one
    dashboard. Each journal's study keeps its trials; a name both use gets its folder."""
    import threading

    import optuna

    from search.dashboard import serve
    from search.union_storage import UnionError, UnionStorage

    dirs = [tmp_path / "search", tmp_path / "replay"]
    for count, folder in zip((3, 2), dirs, strict=True):
        folder.mkdir()
        study = optuna.create_study(storage=journal.open_storage(folder / C.JOURNAL_FILE),
                                    study_name="sweep")
        for i in range(count):
            study.tell(study.ask(), 0.1 * (i + 1))
    server = serve(dirs, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        studies = _get(f"{base}/api/studies")["study_summaries"]
        names = sorted(s["study_name"] for s in studies)
        assert names == ["sweep", f"sweep ({dirs[1]})"]
        counts = sorted(len(_get(f"{base}/api/studies/{s['study_id']}")["trials"])
                        for s in studies)
        assert counts == [2, 3]
    finally:
        server.shutdown()
        server.server_close()
    union = UnionStorage([(str(d), journal.open_storage(d / C.JOURNAL_FILE)) for d in dirs])
    with pytest.raises(UnionError, match="read only"):
        union.delete_study(0)
