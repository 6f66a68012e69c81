"""The console's lines, without a sweep: trial lines, the progress line and its estimate."""

from __future__ import annotations

import io
from pathlib import Path

from search.console import Budget, Console, Progress, duration
from spaces import constants as C


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(val: float, epoch: float = 2.0, **extra) -> dict:
    return {C.VAL_MSE: val, C.EPOCH: epoch, C.NOTATION: "4L,32F(3X3)", C.PARAMS: 12345,
            C.SECONDS: 3.25, C.IMAGES: int(epoch * 100), **extra}


def test_trial_lines_say_how_each_trial_ended():
    progress = Progress(Budget(trials=5, max_epochs=2), clock=Clock())
    assert progress.finish("a1", result(0.02), C.Status.TERMINATED) == (
        "[1/5] trial a1  4L,32F(3X3)  finished 2 epoch(s)  val_mse 0.02000  params 12,345  3.2s")
    assert "stopped early by ASHA at epoch 0.5" in progress.finish(
        "a2", result(0.03, 0.5), C.Status.TERMINATED)
    collapsed = progress.finish("a3", result(0.001, 1, verdict=C.Status.COLLAPSED,
                                             reason="constant output"), C.Status.TERMINATED)
    assert collapsed.startswith("[3/5]") and "COLLAPSED at epoch 1: constant output" in collapsed
    assert "val_mse 0.00100" in collapsed
    # a reason that gives val_mse itself is not followed by it again
    said = progress.finish("a5", result(0.1, 1, verdict=C.Status.COLLAPSED,
                                        reason="constant output: val_mse 0.10000 is trivial"),
                           C.Status.TERMINATED)
    assert said.count("val_mse") == 1 and said.endswith("params 12,345  3.2s")
    assert "ERROR after 1 epochs" in progress.finish("a4", {C.EPOCH: 1}, C.Status.ERROR)
    # the best is the best finished, healthy result: not the collapsed trial's lower figure
    assert progress.best == (0.02, "4L,32F(3X3)", "a1")
    # the best config of a time-budgeted search, trained on (search/exploit.py)
    assert "a top-rung config, trained on: stopped early by ASHA at epoch 1.5" in \
        progress.finish("a6", result(0.01, 1.5, config={C.EXPLOIT: True}), C.Status.TERMINATED)


def test_progress_line_counts_to_a_fixed_total_and_estimates_what_is_left():
    clock = Clock()
    progress = Progress(Budget(trials=4, max_epochs=2), clock=clock)
    assert progress.line() == "progress: 0/4 trials | best: none finished yet | 0s elapsed"
    clock.now += 60
    progress.finish("a", result(0.02), C.Status.TERMINATED)
    progress.record("b", result(0.5, 1.0))  # a running trial's report is never the best
    progress.running = 1
    assert progress.line() == ("progress: 1/4 trials | 1 running | best 0.02000 (4L,32F(3X3)) | "
                               "1m00s elapsed, ~1m40s left")


def test_no_estimate_from_trial_counts_before_a_trial_ends():
    """Running trials count as if they trained to the end; with ASHA most do not, so the
    first estimates would be several times too long: none is given until a trial ends."""
    clock = Clock()
    progress = Progress(Budget(trials=12, max_epochs=3), clock=clock)
    progress.record("a", result(0.5, 1.0))
    progress.record("b", result(0.5, 1.0))
    progress.running = 2
    clock.now += 30
    assert progress.line().endswith("| 30s elapsed")
    progress.finish("a", result(0.02, 1.0), C.Status.TERMINATED)
    assert "left" in progress.line()


def test_a_resumed_sweep_estimates_from_this_runs_pace():
    """Trials that ended before a resume count in the total, not in the pace: a minute into
    the resume, with one trial of four done before and one now, two are left at a trial a
    minute."""
    clock = Clock()
    progress = Progress(Budget(trials=4, max_epochs=2), clock=clock)
    progress.finish("a", result(0.02), C.Status.TERMINATED)
    progress.mark_start()
    assert progress.line() == ("progress: 1/4 trials | best 0.02000 (4L,32F(3X3)) | "
                               "0s elapsed")
    clock.now += 60
    progress.finish("b", result(0.03), C.Status.TERMINATED)
    assert progress.line().endswith("| 1m00s elapsed, ~2m00s left")


def test_budgets_replace_the_trial_total():
    clock = Clock()
    progress = Progress(Budget(time_s=600, images=1000, epoch_size=100), clock=clock)
    clock.now += 150
    progress.record("a", result(0.1, 2.5))
    line = progress.line()
    assert line.startswith("progress: 0 trials | time 2m30s of 10m00s | budget 2.5 of 10 epochs")
    assert "~7m30s left" in line
    assert progress.finish("a", result(0.1, 2.5), C.Status.TERMINATED).startswith("[1] trial a")


def test_console_rewrites_in_place_on_a_terminal_and_throttles_elsewhere():
    clock = Clock()
    tty = io.StringIO()
    console = Console(Progress(Budget(trials=2), clock=clock), stream=tty, tty=True)
    console.refresh()
    console.line("[1/2] trial a")
    console.close()
    assert tty.getvalue().count("\r") == 4 and tty.getvalue().endswith("\n")
    assert "\n[1/2] trial a\n" in tty.getvalue().replace("\r\x1b[2K", "\n")

    plain = io.StringIO()
    console = Console(Progress(Budget(trials=2), clock=clock), stream=plain, tty=False)
    for _ in range(5):
        console.refresh()
        clock.now += 10
    console.close()
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue()
    assert [line[:9] for line in lines] == ["progress:"] * 3  # at 0 s, at 30 s, and the last


def test_duration():
    assert [duration(s) for s in (0, 59.4, 61, 3600 + 125)] == ["0s", "59s", "1m01s", "1h02m"]


TOKEN = "ray._private.authentication.authentication_token_setup"  # Ray's start-up notice's logger


def passes(name: str, message: str) -> bool:
    """Whether logger `name`'s filters let a warning with `message` through."""
    import logging

    record = logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)
    return bool(logging.getLogger(name).filter(record))


def test_quiet_libraries_drops_only_the_notices_nothing_can_act_on():
    import logging

    from search.console import quiet_libraries

    state = "ray.tune.execution.experiment_state"
    snapshot = "Experiment state snapshotting has been triggered multiple times in the last 5 s"
    slow = "Saving the experiment state took ~40.00 seconds"
    for logger in (state, TOKEN):
        logging.getLogger(logger).filters.clear()
    quiet_libraries(verbose=True)
    assert passes(state, snapshot)
    quiet_libraries(verbose=False)
    assert not passes(state, snapshot)
    assert passes(state, slow)  # a slow save is worth a line
    assert not passes(TOKEN, "Token authentication is enabled")
    before = {name: len(logging.getLogger(name).filters) for name in (state, TOKEN)}
    quiet_libraries(verbose=False)  # a sweep, then its finalists stage: nothing piles up
    assert {name: len(logging.getLogger(name).filters) for name in (state, TOKEN)} == before


def test_rays_missing_metrics_warning_is_dropped_only_for_trials_that_never_started(tmp_path):
    """A trial created for a slot that never freed up before the budget ended has an empty
    folder; Ray warns of it at the end of a sweep (as in a 20-minute text sweep). A trial
    whose files are gone, or any other failure, keeps the warning."""
    import logging

    from search.console import only_unstarted_trials, quiet_libraries

    def message(*folders: Path, error: str = "FileNotFoundError") -> str:
        lines = [f"- train_autoencoder_{f.name}: {error}('Could not fetch metrics for "
                 f"train_autoencoder_{f.name}: both result.json and progress.csv were not "
                 f"found at {f}')" for f in folders]
        return "\n".join([f"Failed to fetch metrics for {len(folders)} trial(s):", *lines])

    unstarted, ran, gone = tmp_path / "trial_a", tmp_path / "trial_b", tmp_path / "trial_c"
    unstarted.mkdir()
    ran.mkdir()
    (ran / "params.json").write_text("{}")
    assert only_unstarted_trials(message(unstarted))
    assert not only_unstarted_trials(message(unstarted, ran))  # b wrote files: say so
    assert not only_unstarted_trials(message(gone))  # no folder at all: say so
    assert not only_unstarted_trials(message(unstarted, error="ValueError"))
    assert not only_unstarted_trials("Failed to fetch metrics for 0 trial(s):")

    name = "ray.tune.analysis.experiment_analysis"
    logging.getLogger(name).filters.clear()
    quiet_libraries(verbose=False)
    assert not passes(name, message(unstarted))
    assert passes(name, message(ran))
    logging.getLogger(name).filters.clear()
