"""The finalists stage: from a cheap search to the study's budget, on untouched test data.

A search ranks configs on the validation split at a small budget. This stage retrains, at one
budget (`--refit-epochs`, default the study's epochs) on the sweep's whole training split:
- the search's `--top-k` best distinct configs, and
- the study's best row(s) for the task (`--study-rows`), as the study printed them; where a
  row collapses or diverges, also with the default space's recipe (its loss, BCE),
each with `--repeats` seeds, all with the same data, seeds, epochs and precision. Every run is
measured on the validation split (what selects the best finalist) and on the test split, which
no trial saw (MNIST's official test split; text: the held-out labelled pages).

The runs are Ray Tune trials (a grid over (config, seed), FIFO): they use the cluster, GPUs,
checkpoints and resume like a sweep's trials, and an interrupted stage continues where it
stopped without retraining a finished seed. Files, in <sweep>/finalists/: `finalists.json`
(what was asked), `runs.csv` (one row per run), the Ray experiments `runs/` (and `recipe/`),
and `best/` (the best finalist by mean validation MSE, its best-validating seed).
`python -m results SWEEP_DIR` reads them into the like-for-like table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search import splits
from search.data import DataOptions, TaskData, load_task
from search.options import InputError, check_refit, default_of
from spaces import REGISTRY
from spaces import constants as C
from spaces.config import ModelConfig
from spaces.errors import UserError
from spaces.study import row, study_rows, training_defaults

SEARCH, STUDY, STUDY_RECIPE = "search", "study", "study, default recipe"
RUNS_EXPERIMENT, RECIPE_EXPERIMENT = "runs", "recipe"
PLACEMENT = ("address", "cpus_per_trial", "gpus_per_trial", "max_concurrent", "verbose")
# A run that ended itself: it is done, with or without a test figure (a collapsed one has one).
VERDICTS = frozenset({*C.UNHEALTHY, C.Status.REFUSED, C.Status.OUT_OF_MEMORY})


class FinalistsError(InputError):
    """A sweep dir the finalists stage cannot use: the message names the dir."""


@dataclass(frozen=True)
class Candidate:
    """One config the stage retrains: where it comes from, and the search's figure for it."""

    name: str  # "search 1", "study mnist/1.2/2", ...
    kind: str  # SEARCH, STUDY or STUDY_RECIPE
    source: str  # the trial id or the study row id
    model: dict[str, Any]  # a ModelConfig dict
    search_val_mse: float | None = None  # what the search measured (its budget), if it ran it


@dataclass(frozen=True)
class FinalistSettings:
    """What every run is told: the budget and the precision, the same for all."""

    epochs: int
    precision: str
    checkpoint_every: int = 1


@dataclass(frozen=True)
class Plan:
    """A finalists stage: the sweep it refits, the request, and its candidates."""

    sweep_dir: Path
    task: str
    epochs: int
    repeats: int
    seeds: tuple[int, ...]
    precision: str
    data: DataOptions
    candidates: tuple[Candidate, ...]
    top_k: int
    study_rows: tuple[str, ...]

    @property
    def folder(self) -> Path:
        return self.sweep_dir / C.FINALISTS_DIR

    def record(self, split: dict[str, Any]) -> dict[str, Any]:
        """finalists.json: what a resumed stage must keep."""
        return json.loads(json.dumps({
            "task": self.task, "epochs": self.epochs, "repeats": self.repeats,
            "seeds": list(self.seeds), "precision": self.precision, "top_k": self.top_k,
            "study_rows": list(self.study_rows), "data": dataclasses.asdict(self.data),
            "split": split.get("fingerprint"),
            "candidates": [dataclasses.asdict(c) for c in self.candidates],
        }, default=list))


# --- reading the sweep ------------------------------------------------------------------------
def _sweep_meta(sweep_dir: Path) -> dict[str, Any]:
    if not sweep_dir.is_dir():
        raise FinalistsError(f"{sweep_dir}: no such directory (expected a sweep directory)")
    path = sweep_dir / C.SWEEP_FILE
    if not path.is_file():
        raise FinalistsError(f"{sweep_dir}: no sweep here ({C.SWEEP_FILE} is missing)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FinalistsError(f"{sweep_dir}: {C.SWEEP_FILE} is damaged ({exc})") from None
    if not isinstance(meta, dict) or meta.get("task") not in C.TASKS:
        raise FinalistsError(f"{sweep_dir}: {C.SWEEP_FILE} is damaged (no task)")
    return meta


def _search_candidates(sweep_dir: Path, top_k: int) -> list[Candidate]:
    """The leaderboard's best `top_k` distinct configs (epochs aside) of healthy trials."""
    from results.leaderboard import leaderboard, load_trials, succeeded
    from results.sweepdir import read_params

    try:
        trials = load_trials(sweep_dir)
        dirs = dict(zip(trials[C.TRIAL_ID], trials["trial_dir"], strict=True))
        board = succeeded(leaderboard(trials))
        found: list[Candidate] = []
        seen: set[str] = set()
        for _, entry in board.iterrows():
            if not dirs.get(entry[C.TRIAL_ID]):
                continue
            model = read_params(Path(dirs[entry[C.TRIAL_ID]]))[C.MODEL_KEY]
            key = ModelConfig.from_dict(model).replace(epochs=1).to_json()
            if key in seen:
                continue
            seen.add(key)
            found.append(Candidate(f"search {len(found) + 1}", SEARCH, str(entry[C.TRIAL_ID]),
                                   model, float(entry[C.VAL_MSE])))
            if len(found) == top_k:
                break
    except UserError as exc:
        raise FinalistsError(f"{sweep_dir}: its trials cannot be read ({exc})") from None
    if not found:
        raise FinalistsError(f"{sweep_dir}: no trial finished healthy, so there is no finalist "
                             f"to refit")
    return found


def _study_candidates(task: str, ids: tuple[str, ...]) -> list[Candidate]:
    found = []
    for row_id in ids:
        try:
            study = row(row_id)
        except KeyError:
            raise InputError(f"--study-rows: no study row {row_id!r} (e.g. "
                             f"{study_rows(task)[0].id})") from None
        if study.task != task:
            raise InputError(f"--study-rows: {row_id} is a {study.task} row; the sweep's task "
                             f"is {task}")
        found.append(Candidate(f"study {row_id}", STUDY, row_id, study.config.to_dict()))
    return found


def recipe_candidate(study: Candidate) -> Candidate:
    """The study's row with the default space's training recipe (its loss)."""
    config = ModelConfig.from_dict(study.model)
    loss = REGISTRY[config.task].default.loss
    model = config.replace(loss=loss).to_dict()
    return Candidate(f"{study.name} ({loss})", STUDY_RECIPE, study.source, model)


def plan(sweep_dir: str | Path, **values: Any) -> Plan:
    """The stage `values` (the finalists' options) ask for on `sweep_dir`; reads only files."""
    check_refit(values)
    folder = Path(sweep_dir).expanduser().absolute()
    meta = _sweep_meta(folder)
    task = meta["task"]
    if values.get("task") not in (None, task):
        raise FinalistsError(f"{folder}: a sweep of --task {task}, not {values['task']}")
    recorded = dict(meta.get("data") or {})
    for name in ("data_dir", "subset", "val_subset"):  # the whole training split by default
        recorded[name] = values.get(name, None if name != "data_dir" else recorded.get(name))
    if recorded.get("resize"):
        recorded["resize"] = tuple(recorded["resize"])
    try:
        data = DataOptions(**recorded)
    except (TypeError, UserError) as exc:
        raise FinalistsError(f"{folder}: {C.SWEEP_FILE}'s data options are damaged "
                             f"({exc})") from None
    top_k = values.get("top_k", default_of("top_k"))
    repeats = values.get("repeats", default_of("repeats"))
    ids = tuple(values.get("study_rows") or (r.id for r in study_rows(task) if r.best))
    candidates = [*_search_candidates(folder, top_k), *_study_candidates(task, ids)]
    epochs = values.get("refit_epochs") or training_defaults(task)["epochs"]
    seed = int(meta.get("seed") or 0)
    return Plan(folder, task, int(epochs), int(repeats), tuple(seed + i for i in range(repeats)),
                str(meta.get("precision") or default_of("precision")), data, tuple(candidates),
                int(top_k), ids)


# --- the runs, on Ray ---------------------------------------------------------------------------
def run_grid(candidates: tuple[Candidate, ...] | list[Candidate],
             seeds: tuple[int, ...]) -> list[dict[str, Any]]:
    """One Ray config per (candidate, seed), candidates first: Ray's grid over them."""
    return [{"candidate": c.name, "kind": c.kind, "source": c.source, "seed": seed,
             C.MODEL_KEY: c.model} for c in candidates for seed in seeds]


def _test_metrics(trial: Any, data: TaskData) -> dict[str, float]:
    from search.trial import evaluate

    measured = evaluate(trial.model, list(data.test), trial.config.loss, trial.eval_batch_size)
    return {C.TEST_MSE: measured[C.VAL_MSE], C.TEST_RMSE: measured[C.VAL_RMSE]}


def _resumed(model: ModelConfig, data: TaskData) -> tuple[Any, dict[str, Any]]:
    """(trial, its last metrics) from the run's newest complete checkpoint, else (None, {})."""
    from ray import tune

    from search.trainable import newest_checkpoints
    from search.trial import Trial

    for checkpoint in newest_checkpoints(tune.get_checkpoint()):
        try:
            with checkpoint.as_directory() as directory:
                trial = Trial.resume(directory, model, data)
                return trial, json.loads((Path(directory) / C.METRICS_FILE).read_text())
        except Exception:  # noqa: BLE001 - a damaged checkpoint: try an older one
            continue
    return None, {}


def train_finalist(config: dict[str, Any], data: TaskData, settings: FinalistSettings) -> None:
    """Ray Tune function trainable: one (config, seed) run, an epoch a report, checkpointed;
    its last report adds the test split's figures."""
    from ray import tune

    from search.precision import resolve
    from search.trial import Trial, configure_backend
    from search.worker import fresh_session

    resources = tune.get_context().get_trial_resources().required_resources
    configure_backend(resources.get("CPU"), resources.get("GPU"))
    fresh_session()  # a reused worker's setup stays flat (search/worker.py)
    model = ModelConfig.from_dict(config[C.MODEL_KEY]).replace(epochs=settings.epochs)
    tags = {k: config[k] for k in ("candidate", "kind", "source", "seed")}
    trial, last = _resumed(model, data)
    if trial is not None and (trial.images >= trial.total_images or C.VERDICT in last):
        tune.report(last)  # finished before the driver recorded it: train nothing
        return
    if trial is None:
        trial = Trial(model, data, seed=int(config["seed"]),
                      precision=resolve(settings.precision, resources.get("GPU")))
    for metrics in trial.reports():
        metrics.update(tags)
        done = trial.images >= trial.total_images or C.VERDICT in metrics
        if done and math.isfinite(metrics.get(C.VAL_MSE, math.nan)):
            metrics.update(_test_metrics(trial, data))
        if done or round(trial.epoch) % settings.checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as directory:
                trial.save(directory, metrics)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)


def _tuner(experiment: Path, trainable: Any, runs: list[dict[str, Any]], plan: Plan,
           max_concurrent: int | None, verbose: bool) -> Any:
    """A new grid over `runs`, or the interrupted one restored (finished runs are kept)."""
    from ray import tune

    from search.finalist_console import FinalistsConsole
    from search.progress import quiet_ray_console

    # An epoch a report, each checkpointed: Ray's warning that it snapshots often says nothing
    # the user can act on (the variable is the one its message names).
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    param_space = {"run": tune.grid_search(runs)}
    if tune.Tuner.can_restore(str(experiment)):
        return tune.Tuner.restore(str(experiment), trainable, param_space=param_space,
                                  resume_unfinished=True, resume_errored=True)
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=max_concurrent,
                                    reuse_actors=True,
                                    trial_dirname_creator=lambda t: f"run_{t.trial_id}"),
        run_config=tune.RunConfig(
            name=experiment.name, storage_path=str(experiment.parent),
            callbacks=[FinalistsConsole()],
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=1 if verbose else 0, progress_reporter=quiet_ray_console(verbose)),
    )


def _unwrapped(trainable: Any) -> Any:
    """Ray's grid hands each trial {"run": {...}}: the trainable sees the run itself."""

    def run(config: dict[str, Any], data: TaskData, settings: FinalistSettings) -> None:
        trainable(config["run"], data, settings)

    return run


def _relative(path: Any, folder: Path) -> str | None:
    """A run's path relative to the finalists folder, so that a moved sweep still reads."""
    if not path:
        return None
    try:
        return str(Path(str(path)).relative_to(folder))
    except ValueError:
        return str(path)  # remote storage: as Ray gave it


def _run_rows(results: Any, folder: Path) -> list[dict[str, Any]]:
    """runs.csv's rows from Ray's results: one per (candidate, seed)."""
    rows = []
    for result in results:
        run = (result.config or {}).get("run", {})
        metrics = result.metrics or {}
        error = result.error is not None
        status = metrics.get(C.VERDICT) or ("ERROR" if error else C.Status.TERMINATED)
        rows.append({
            "candidate": run.get("candidate"), "kind": run.get("kind"),
            "source": run.get("source"), "seed": run.get("seed"),
            C.NOTATION: metrics.get(C.NOTATION), "status": str(status),
            C.EPOCH: metrics.get(C.EPOCH),
            **{k: metrics.get(k) for k in (C.VAL_MSE, C.VAL_RMSE, C.TEST_MSE, C.TEST_RMSE,
                                           C.PARAMS, C.SECONDS, C.PRECISION)},
            "trial_dir": _relative(result.path, folder),
            "checkpoint": _relative(result.checkpoint and result.checkpoint.path, folder),
        })
    return rows


def _phase(experiment: Path, runs: list[dict[str, Any]], data: TaskData, plan: Plan,
           placement: dict[str, Any], verbose: bool) -> tuple[list[dict[str, Any]], bool]:
    from ray import tune

    settings = FinalistSettings(epochs=plan.epochs, precision=plan.precision)
    trainable = tune.with_resources(
        tune.with_parameters(_unwrapped(train_finalist), data=data, settings=settings),
        {"cpu": placement["cpus"], "gpu": placement["gpus"]})
    tuner = _tuner(experiment, trainable, runs, plan, placement["max_concurrent"], verbose)
    results = tuner.fit()
    order = {(r["candidate"], r["seed"]): i for i, r in enumerate(runs)}
    rows = sorted(_run_rows(results, plan.folder),  # the grid's order, whatever Ray's
                  key=lambda r: order.get((r["candidate"], r["seed"]), len(order)))
    ended = [r for r in rows if r[C.TEST_MSE] is not None or r["status"] in VERDICTS]
    return rows, len(rows) == len(runs) and len(ended) == len(rows)


# --- the stage ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """Where the stage's files are, and whether every run ended (else: rerun to resume)."""

    folder: Path
    finished: bool

    @property
    def runs(self) -> Any:
        """runs.csv as a pandas DataFrame: one row per (candidate, seed)."""
        import pandas as pd

        return pd.read_csv(self.folder / C.RUNS_FILE)

    @property
    def table(self) -> Any:
        """The like-for-like table (`results.finalists.finalists_table`), a DataFrame."""
        from results.finalists import finalists_table, read_runs

        return finalists_table(*read_runs(self.folder))


def _check_record(plan: Plan, record: dict[str, Any]) -> None:
    """A stage resumed with another request would mix two budgets in one table."""
    path = plan.folder / C.FINALISTS_FILE
    if not path.is_file():
        return
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FinalistsError(f"{plan.folder}: {C.FINALISTS_FILE} is damaged ({exc}); move "
                             f"the folder away to start the finalists over") from None
    changed = [k for k in record if before.get(k) != record[k]]
    if changed:
        key = changed[0]
        raise FinalistsError(f"{plan.folder}: its finalists were started with {key} "
                             f"{before.get(key)!r}, not {record[key]!r}; rerun with the same "
                             f"options to resume, or move the folder away to start over")


def _lost_rows(rows: list[dict[str, Any]]) -> set[str]:
    """Study rows of which a seed collapsed or diverged: they also train with the recipe."""
    return {r["source"] for r in rows if r["kind"] == STUDY and r["status"] in C.UNHEALTHY}


def _export_best(plan: Plan, rows: list[dict[str, Any]], data: TaskData) -> dict[str, Any] | None:
    """best/ = the finalist with the lowest mean validation MSE (its best-validating seed):
    selected on validation, so its test figure stays unbiased."""
    import pandas as pd

    from search.export import write_best

    frame = pd.DataFrame(rows)
    frame = frame[frame[C.TEST_MSE].notna() & frame["checkpoint"].notna()]
    if frame.empty:
        return None
    means = frame.groupby("candidate")[C.VAL_MSE].mean()
    chosen = frame[frame["candidate"] == means.idxmin()].sort_values(C.VAL_MSE).iloc[0]
    metrics = {k: v for k, v in chosen.to_dict().items() if k not in ("checkpoint", "trial_dir")}
    write_best(plan.folder / chosen["checkpoint"], None, data, metrics, plan.folder / C.BEST_DIR)
    return metrics


def _placement(cpus: float | None, gpus: float | None, max_concurrent: int | None
               ) -> dict[str, Any]:
    import ray

    from search.options import SWEEP_CPUS_PER_TRIAL

    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    return {"cpus": cpus or SWEEP_CPUS_PER_TRIAL, "gpus": gpus, "max_concurrent": max_concurrent}


def run_plan(plan: Plan, *, address: str | None = None, cpus_per_trial: float | None = None,
             gpus_per_trial: float | None = None, max_concurrent: int | None = None,
             verbose: bool = False, hold_lock: bool = True) -> Outcome:
    """Train every (candidate, seed) of `plan` on Ray; write runs.csv and best/.

    `hold_lock`: take the sweep dir's driver lock (False where the sweep's own driver, which
    holds it, runs the stage after its sweep: `--refit`)."""
    from contextlib import nullcontext

    from search.lock import NameLock

    lock: Any = NameLock(plan.sweep_dir, plan.sweep_dir.name) if hold_lock else nullcontext()
    try:
        lock.__enter__()
    except InputError:
        raise FinalistsError(f"{plan.sweep_dir}: a driver is running on this sweep (its "
                             f"{plan.sweep_dir / '.driver.lock'}); refit it once it "
                             f"ended") from None
    try:
        return _run_locked(plan, address=address, cpus=cpus_per_trial, gpus=gpus_per_trial,
                           max_concurrent=max_concurrent, verbose=verbose)
    finally:
        lock.__exit__(None, None, None)


def _run_locked(plan: Plan, *, address: str | None, cpus: float | None, gpus: float | None,
                max_concurrent: int | None, verbose: bool) -> Outcome:
    import ray

    from results.render import atomic_write_text
    from search import cluster

    data = load_task(plan.task, plan.data, test=True)
    splits.check(plan.sweep_dir, data.splits, what="the finalists stage")
    if not data.test:
        raise FinalistsError(f"{plan.sweep_dir}: its split has no test images "
                             f"(--test-fraction 0), so there is nothing to report on")
    record = plan.record(data.splits)
    _check_record(plan, record)
    atomic_write_text(plan.folder / C.FINALISTS_FILE, json.dumps(record, indent=2))
    owned = not ray.is_initialized()
    if owned:
        cluster.connect(address, verbose=verbose)
    try:
        placement = _placement(cpus, gpus, max_concurrent)
        print(f"finalists of {plan.sweep_dir}: {len(plan.candidates)} configs x "
              f"{plan.repeats} seeds, {plan.epochs} epochs on {data.n_train:,} training "
              f"images, tested on {sum(len(x) for x, _ in data.test):,} untouched test "
              f"images; outputs in {plan.folder}", flush=True)
        began = time.monotonic()
        rows, finished = _phase(plan.folder / RUNS_EXPERIMENT,
                                run_grid(plan.candidates, plan.seeds), data, plan, placement,
                                verbose)
        lost = [c for c in plan.candidates if c.kind == STUDY and c.source in _lost_rows(rows)]
        if finished and lost:
            print(f"{', '.join(c.source for c in lost)} collapsed or diverged as printed: "
                  f"trained again with the default space's recipe", flush=True)
            more, finished = _phase(plan.folder / RECIPE_EXPERIMENT,
                                    run_grid([recipe_candidate(c) for c in lost], plan.seeds),
                                    data, plan, placement, verbose)
            rows += more
        import pandas as pd

        atomic_write_text(plan.folder / C.RUNS_FILE, pd.DataFrame(rows).to_csv(index=False))
        best = _export_best(plan, rows, data) if finished else None
    finally:
        if owned:
            ray.shutdown()
    took = time.monotonic() - began
    if not finished:
        print(f"the finalists stage ended before every run did ({took:.0f} s); continue it "
              f"with `aesearch refit {plan.sweep_dir}` and the same finalists options "
              f"(finished seeds are kept)")
    elif best is not None:
        print(f"best finalist (selected on validation): {best['candidate']} "
              f"{best.get(C.NOTATION)} seed {best['seed']}: test_mse {best[C.TEST_MSE]:.5f} "
              f"({took:.0f} s); model in {plan.folder / C.BEST_DIR}")
    print(f"the like-for-like table: python -m results {plan.sweep_dir}")
    return Outcome(plan.folder, finished)


def refit(sweep_dir: str | Path, **values: Any) -> Outcome:
    """The finalists stage of `sweep_dir` with the finalists' options (`aesearch refit`)."""
    from search.console import quiet_libraries

    placement: dict[str, Any] = {k: values.pop(k) for k in PLACEMENT if k in values}
    quiet_libraries(bool(placement.get("verbose")))  # as a sweep's console: Ray's notices off
    check_refit({**values, **placement})
    return run_plan(plan(sweep_dir, **values), **placement)


def main(argv: list[str] | None = None) -> int:
    """`python -m search.refit SWEEP_DIR [options]` (also `aesearch refit`)."""
    from search.cli import parse_refit

    sweep_dir, values = parse_refit(argv)
    try:
        outcome = refit(sweep_dir, **values)
    except UserError as exc:  # one line, exit 2, as every refusal of the CLI
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return 0 if outcome.finished else 1


if __name__ == "__main__":
    raise SystemExit(main())
