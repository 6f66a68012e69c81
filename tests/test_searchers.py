"""search/searchers/: the registry, the ordered encoding, cost-aware proposals, the searchers'
state across a resume, and the hand-off of stopped trials. No Ray cluster: Ray's searcher API
is driven directly (tests/test_sweep.py runs whole sweeps)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import pickle
from typing import Any

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

import spaces
from search import searchers
from search.searchers import DEFAULT_SEARCH, SEARCHERS, SPACES_OF_SEARCH, warm_points
from search.searchers.cheap_tpe import gamma
from search.searchers.cost import CheapestOf, space_cost
from search.sweep import SweepSettings, prepare
from spaces import constants as C
from spaces.config import ModelConfig
from spaces.default import sample
from spaces.guard import multiply_adds

SAMPLED = [name for name, spec in SEARCHERS.items() if "default" in spec.spaces]


def _settings(search: str, task: str = "mnist", **extra: Any) -> SweepSettings:
    space = "report" if search == "grid" else "default"
    return prepare(SweepSettings(task=task, search=search, space=space, max_epochs=2,
                                 storage="/nonexistent-not-written", name="t", **extra))


def test_the_registry_names_a_module_with_make_for_every_searcher():
    assert DEFAULT_SEARCH in SEARCHERS and SEARCHERS[DEFAULT_SEARCH].spaces
    for name, spec in SEARCHERS.items():
        module = importlib.import_module(f"search.searchers.{spec.module}")
        assert callable(module.make), name
        assert SPACES_OF_SEARCH[name] == spec.spaces and spec.why


@pytest.mark.parametrize("search", list(SEARCHERS))
def test_each_searcher_proposes_configs_that_build_in_its_space(search):
    searcher, param_space = searchers.make(_settings(search))
    if searcher is None:  # the grid: Ray walks the rows the param space lists
        assert param_space[C.REPORT_KEY]["grid_search"]
        return
    searcher.set_search_properties(C.OBJECTIVE, C.MODE, {})
    for i in range(6):  # past the TPE searchers' random start
        config = searcher.suggest(f"t{i}")
        assert config is not None
        model = ModelConfig.from_dict(config[C.MODEL_KEY])
        assert model.task == "mnist" and model.family == "conv"
        searcher.on_trial_complete(f"t{i}", {C.OBJECTIVE: 0.05 - i * 1e-3,
                                             C.TRAINING_ITERATION: 2})


@pytest.mark.parametrize("task", spaces.TASKS)
def test_the_ordered_encoding_builds_the_same_configs_as_the_categorical_one(task):
    """Every categorical point of the default space, decoded from its ordered twin, builds
    the same model; only the parameters' names and types differ."""
    bounds = spaces.REGISTRY[task].default
    ordered = dataclasses.replace(bounds, ordered=True)
    for filters in bounds.filters:
        for kernel in bounds.kernels:
            for batch in bounds.batch_sizes:
                plain: dict[str, Any] = {"depth": 4, "filters": filters, "schedule": "widening",
                                         "kernel": kernel, "batchnorm": True, "lr": 1e-3,
                                         "batch_size": batch}
                if bounds.unet_levels:
                    plain |= {"unet_levels": 1, "skip": True}
                twin = dict(plain)
                twin["filters_log2"] = int(math.log2(twin.pop("filters")))
                twin["batch_size_log2"] = int(math.log2(twin.pop("batch_size")))
                assert (sample(FixedTrial(twin), ordered) == sample(FixedTrial(plain), bounds))


def test_ordered_choices_are_integer_distributions():
    study = optuna.create_study()
    trial = study.ask()
    sample(trial, dataclasses.replace(spaces.REGISTRY["mnist"].default, ordered=True))
    dists = trial.distributions
    assert dists["filters_log2"] == optuna.distributions.IntDistribution(4, 6)
    assert dists["kernel"] == optuna.distributions.IntDistribution(3, 5, step=2)
    assert dists["batch_size_log2"] == optuna.distributions.IntDistribution(4, 7)


@pytest.mark.parametrize("task", spaces.TASKS)
def test_warm_start_points_follow_the_searchers_encoding(task):
    """The study's best row, as the sweep's searcher names it, samples back to that row's
    architecture (trained with the space's loss)."""
    for search in ("tpe", "optuna"):
        settings = _settings(search, task, warm_start="report")
        points = warm_points(settings)
        assert points, task
        bounds = dataclasses.replace(spaces.REGISTRY[task].default,
                                     ordered=SEARCHERS[search].ordered)
        built = ModelConfig.from_dict(sample(FixedTrial(points[0]), bounds)[C.MODEL_KEY])
        best = next(r.config for r in spaces.study_rows(task) if r.best)
        assert (built.filters, built.kernel) == (best.filters, best.kernel)


def test_multiply_adds_count_each_convolution_at_its_resolution():
    best = ModelConfig(task="mnist", filters=(32, 32, 64, 128))  # the study's best, 3x3
    per_pixel = 9 * (1 * 32 + 32 * 32 + 32 * 64 + 64 * 128 + 128 * 1)
    assert multiply_adds(best, (28, 28)) == per_pixel * 28 * 28
    pooled = best.replace(pool=2)  # 2 layers at full size, 2 at a quarter: cheaper per pixel
    assert multiply_adds(pooled, (28, 28)) < multiply_adds(best, (28, 28)) / 2


class _Scripted(optuna.samplers.RandomSampler):
    """A sampler whose relative proposals are scripted (after `start` trials)."""

    def __init__(self, proposals: list[dict[str, Any]], start: int = 0) -> None:
        super().__init__(seed=0)
        self.proposals, self.start, self.calls = list(proposals), start, 0

    def infer_relative_search_space(self, study, trial):
        return {"x": optuna.distributions.IntDistribution(0, 9)}

    def sample_relative(self, study, trial, search_space):
        if len(study.trials) <= self.start:
            return {}
        self.calls += 1
        return self.proposals.pop(0)


def test_cheapest_of_runs_the_cheapest_proposal():
    base = _Scripted([{"x": 5}, {"x": 2}, {"x": 7}, {"x": 4}, {"x": 4}, {"x": 9}], start=1)
    sampler = CheapestOf(base, cost=lambda params: float(params["x"]), candidates=3, seed=0)
    study = optuna.create_study(sampler=sampler)
    first = study.ask()  # the start: no relative proposal from the base
    first.suggest_int("x", 0, 9)
    assert base.calls == 0
    study.tell(first, 1.0)
    assert study.ask().suggest_int("x", 0, 9) == 2 and base.calls == 3
    assert study.ask().suggest_int("x", 0, 9) == 4  # a tie keeps the earlier proposal
    with pytest.raises(ValueError, match="candidates"):
        CheapestOf(base, cost=lambda params: 0.0, candidates=0)


def _start_up_draws(candidates: int, n: int = 60) -> list[int]:
    """`n` start-up trials of a CheapestOf whose base never proposes (its start-up)."""
    base = _Scripted([], start=1000)
    sampler = CheapestOf(base, cost=lambda params: float(params["x"]), candidates=candidates,
                         seed=1)
    study = optuna.create_study(sampler=sampler)
    drawn = []
    for _ in range(n):
        trial = study.ask()
        drawn.append(trial.suggest_int("x", 0, 9))
        study.tell(trial, 1.0)
    assert base.calls == 0  # the base's own relative sampling never runs
    return drawn


def test_the_start_up_trials_are_the_cheapest_of_uniform_draws():
    """The base's start-up proposes nothing relative; the cheapest of 3 uniform draws runs,
    so the start is cheap on average (the minimum of 3 uniform 0..9 averages about 2)."""
    cheapest = _start_up_draws(candidates=3)
    assert sum(cheapest) / len(cheapest) < 3.0 and max(cheapest) <= 9
    alone = _start_up_draws(candidates=1)
    assert sum(alone) / len(alone) > 3.5  # one draw: uniform


def test_space_cost_is_the_models_multiply_adds_per_pixel_and_inf_when_partial():
    bounds = dataclasses.replace(spaces.REGISTRY["mnist"].default, ordered=True)
    space = spaces.sampled_space("default", "mnist", ordered=True)
    cost = space_cost(space, bounds.input_shape)
    params = {"depth": 4, "filters_log2": 5, "schedule": "widening", "kernel": 3,
              "batchnorm": False, "lr": 1e-3, "batch_size_log2": 7}
    assert cost(params) == 9 * (32 + 32 * 32 + 32 * 64 + 64 * 128 + 128)
    narrow = {**params, "filters_log2": 4}
    assert cost({**narrow, "kernel": 5}) == 25 / 9 * cost(narrow)
    assert cost({"depth": 4}) == math.inf
    assert pickle.loads(pickle.dumps(cost))(params) == cost(params)  # Ray pickles searchers


def test_gamma_keeps_at_least_two_good_trials():
    assert [gamma(n) for n in (1, 4, 8, 12, 100, 1000)] == [2, 2, 2, 3, 25, 25]


@pytest.mark.parametrize("search", SAMPLED)
def test_a_restored_searcher_continues_where_it_stopped(search, tmp_path):
    from search.fidelity import FidelityOptunaSearch

    """Ray saves a searcher with `save` and restores it into a fresh one on --resume: the
    restored one keeps its trials (pruned ones included) and proposes what the original
    would have proposed next."""
    settings = _settings(search)
    original, _ = searchers.make(settings)
    assert isinstance(original, FidelityOptunaSearch)
    original.set_search_properties(C.OBJECTIVE, C.MODE, {})
    for i in range(7):
        original.suggest(f"t{i}")
        reports = 2 if i % 2 else 1  # every other trial stopped by ASHA after one report
        original.on_trial_result(f"t{i}", {C.OBJECTIVE: 0.05 + i * 1e-3,
                                           C.TRAINING_ITERATION: 1})
        original.on_trial_complete(f"t{i}", {C.OBJECTIVE: 0.04 + i * 1e-3,
                                             C.TRAINING_ITERATION: reports})
    original.save(str(tmp_path / "searcher.pkl"))
    restored, _ = searchers.make(settings)
    assert isinstance(restored, FidelityOptunaSearch)
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored._ot_study is not None
    states = [t.state for t in restored._ot_study.trials]
    assert states.count(TrialState.PRUNED) == 4 and states.count(TrialState.COMPLETE) == 3
    assert restored.suggest("next") == original.suggest("next")


@pytest.mark.slow
def test_each_searcher_runs_a_sweep_and_hears_asha_stops_as_pruned(tmp_path, data_dir):
    """End to end on tiny real data, one Ray for all: every sampled searcher runs its sweep
    with ASHA; its saved state (what --resume restores) holds every trial, the ones ASHA
    stopped before their last report as PRUNED, the others COMPLETE."""
    import glob

    import ray

    from search import Sweep, internals

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for search in SAMPLED:
            result = Sweep(task="mnist", search=search, num_samples=6, max_epochs=2,
                           subset=128, val_subset=64, report_images=64, max_params=20_000,
                           storage=str(tmp_path), name=search, data_dir=str(data_dir)).run()
            board = result.leaderboard
            assert result.finished and len(board) == 6
            meta = json.loads((result.experiment_dir / C.SWEEP_FILE).read_text())
            assert meta["search"] == search
            restored, _ = searchers.make(_settings(search, max_params=20_000))
            assert restored is not None
            state = sorted(glob.glob(str(result.experiment_dir / "searcher-state-*.pkl")))[-1]
            restored.restore(state)
            study = internals.optuna_study(restored)
            states = [t.state for t in study.trials]
            healthy = board[board["reason"].isna()]
            stopped = int((healthy["epochs"] < 2).sum())
            assert states.count(TrialState.PRUNED) >= stopped
            assert states.count(TrialState.COMPLETE) == int((healthy["epochs"] == 2).sum())
            assert len(states) == 6
    finally:
        ray.shutdown()


def test_a_draw_over_a_tight_limit_is_narrowed_or_left_for_the_guard_never_raised():
    """Under --max-params 20,000 a 6-layer 5x5 batchnorm draw cannot fit even at 16 filters:
    the space first tries the 3x3 kernel, and returns what is left for the trial's guard to
    refuse, since an exception in the define-by-run function would end the sweep."""
    space = spaces.sampled_space("default", "mnist", max_params=20_000, ordered=True)
    draw = {"depth": 6, "filters_log2": 6, "schedule": "constant", "kernel": 5,
            "batchnorm": True, "lr": 1e-3, "batch_size_log2": 7}
    config = ModelConfig.from_dict(space(FixedTrial(draw))[C.MODEL_KEY])
    assert (config.filters, config.kernel) == ((16,) * 6, 3)  # narrowed: 12,289 parameters
    tight = spaces.sampled_space("default", "mnist", max_params=1_000, ordered=True)
    left = ModelConfig.from_dict(tight(FixedTrial(draw))[C.MODEL_KEY])  # over even narrowed
    assert (left.filters, left.kernel) == ((16,) * 6, 3)


@pytest.mark.parametrize("search", SAMPLED)
def test_a_trial_stopped_on_its_first_report_reaches_optuna_with_that_report(search):
    """Ray gives the result a scheduler stops a trial on to `on_trial_complete` only: the
    searcher reports it before telling PRUNED, so TPE ranks the trial by it (with no
    intermediate value it would rank below every pruned trial)."""
    from search.fidelity import FidelityOptunaSearch

    searcher, _ = searchers.make(_settings(search))
    assert isinstance(searcher, FidelityOptunaSearch)
    searcher.set_search_properties(C.OBJECTIVE, C.MODE, {})
    searcher.suggest("stopped")
    searcher.on_trial_complete("stopped", {C.OBJECTIVE: 0.02, C.TRAINING_ITERATION: 1})
    searcher.suggest("twice")  # a step reported already keeps its value
    searcher.on_trial_result("twice", {C.OBJECTIVE: 0.05, C.TRAINING_ITERATION: 1})
    searcher.on_trial_complete("twice", {C.OBJECTIVE: 0.04, C.TRAINING_ITERATION: 1})
    study = searcher._ot_study
    assert study is not None
    first, second = study.trials
    assert first.state == TrialState.PRUNED and first.intermediate_values == {1: 0.02}
    assert second.state == TrialState.PRUNED and second.intermediate_values == {1: 0.05}
