"""Everything `python -m results` regenerates from a sweep's files, and its short summary.

Leaderboards go into each sweep dir (the same file the running sweep writes); tables and plots
go into one output dir, for one sweep or for several sweeps of one task merged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from results import finalists, front, plots
from results.importance import param_importances
from results.leaderboard import (
    curves,
    leaderboard,
    load_trials,
    merge_trials,
    succeeded,
    sweep_names,
    sweep_task,
    write_leaderboard,
)
from results.render import write_csv, write_markdown
from results.sweepdir import (
    ResultsError,
    check_sweep_dir,
    read_reconstructions,
    read_sweep_meta,
    trial_dirs,
)
from results.tables import (
    comparison_table,
    discoveries,
    marked_rows,
    study_best,
    study_parameters,
    study_row,
    study_table,
)
from spaces import constants as C
from spaces.study import study_rows

MERGED_LEADERBOARD_FILE = "leaderboard-merged.csv"
STATUS_ORDER = (C.Status.TERMINATED, C.Status.STOPPED, C.Status.INTERRUPTED, C.Status.RUNNING,
                C.Status.PENDING, C.Status.PAUSED, C.Status.ERROR, C.Status.REFUSED,
                C.Status.OUT_OF_MEMORY)
MAX_ERRORS_SHOWN = 3


@dataclass
class Outputs:
    """What `generate` computed and wrote; `summary` is what the CLI prints."""

    board: pd.DataFrame
    task: str | None
    out: Path
    written: list[Path] = field(default_factory=list)
    summary: str = ""


def _status_counts(trials: pd.DataFrame) -> str:
    counts = trials["status"].value_counts()
    order = [s for s in STATUS_ORDER if s in counts] + sorted(set(counts.index) - set(STATUS_ORDER))
    return ", ".join(f"{counts[s]} {s}" for s in order)


def _sweep_lines(sweep_dir: Path, trials: pd.DataFrame, task: str | None) -> list[str]:
    """Trial counts by status, plainly saying whether the sweep still runs or trials failed."""
    lines = [f"{sweep_dir} (task {task or 'unknown'}): {len(trials)} trial(s): "
             f"{_status_counts(trials) or 'none yet'}"]
    active = int(trials["status"].isin(C.ACTIVE).sum())
    meta = read_sweep_meta(sweep_dir)
    finished = meta.get("finished")
    if meta.get("interrupted") and finished is False:
        lines.append(f"  The sweep was interrupted ({active} trial(s) interrupted or pending): "
                     f"these results are partial; `--resume` continues it.")
    elif active:
        lines.append(f"  The sweep is still running ({active} trial(s) running, pending or "
                     f"paused): these results are partial.")
    elif finished is False:
        lines.append(f"  The sweep has not finished ({C.SWEEP_FILE} says so): these results "
                     f"are partial.")
    failed = trials[trials["status"].isin(C.FAILED)]
    if len(failed):
        kinds = ", ".join(sorted(set(failed["status"])))
        lines.append(f"  {len(failed)} trial(s) failed ({kinds}):")
        for _, row in failed.head(MAX_ERRORS_SHOWN).iterrows():
            why = row.get("error") or row.get(C.REASON) or "no error.txt"
            lines.append(f"    {row[C.TRIAL_ID]}: {why}")
        if len(failed) > MAX_ERRORS_SHOWN:
            lines.append(f"    ... and {len(failed) - MAX_ERRORS_SHOWN} more")
    return lines


def _best_lines(board: pd.DataFrame, task: str | None, meta: dict | None = None) -> list[str]:
    """Our best config, and where the study's best for the task stands among our trials."""
    ok = succeeded(board)
    lines = []
    if ok.empty:
        lines.append("No trial has reported a validation figure yet.")
    else:
        best = ok.iloc[0]
        lines.append(
            f"Best: {best['notation']} (trial {best[C.TRIAL_ID]}, loss {best['loss']}, "
            f"lr {best['lr']:g}, batch {best['batch_size']}): {C.VAL_MSE} {best[C.VAL_MSE]:.4g}, "
            f"{C.VAL_RMSE} {best[C.VAL_RMSE]:.4g}, {int(best[C.PARAMS]):,} params, "
            f"{best['epochs']:.3g} epochs, {best[C.SECONDS]:.1f} s"
        )
    row = study_best(task) if task else None
    if row is None:
        return lines
    caveat = "" if row.loss == "mse" else (
        f" (the study's figure is its {row.loss} loss, not an MSE)"
    )
    if row.loss != "mse":  # a loss of another kind: counting who "beat" it compares unlikes
        standing = "not comparable with our val_mse, so not ranked."
    elif len(ok):
        beaten = int((ok[C.VAL_MSE] < row.val).sum())
        standing = f"{beaten} of our {len(ok)} trial(s) beat it, so it would rank {beaten + 1}."
    else:
        standing = "none of our trials to compare it with yet."
    lines.append(
        f"Study's best for {task}: {row.id} {row.layers}, validation {row.val:g}{caveat}; "
        + standing
    )
    note = _budget_note(row, ok, meta or {})
    if note:
        lines.append(note)
    replays = ok[ok["report_model"] == row.id]
    if len(replays):
        first = replays.iloc[0]
        # Same architecture, not necessarily the same training (a search may give it BCE).
        lines.append(f"  Its architecture in our trials: best rank {first['rank']} (trial "
                     f"{first[C.TRIAL_ID]}, loss {first['loss']}, batch "
                     f"{first['batch_size']:.0f}), {C.VAL_MSE} {first[C.VAL_MSE]:.4g} after "
                     f"{first['epochs']:.3g} epochs.")
    return lines


def _write_table(frame: pd.DataFrame, directory: Path, stem: str, title: str,
                 note: str = "", bold: Sequence[int] = ()) -> list[Path]:
    return [
        write_csv(frame, directory / f"{stem}.csv"),
        write_markdown(frame, directory / f"{stem}.md", title, bold_rows=bold, note=note),
    ]


def _table_note(task: str | None) -> str:
    """What the table holds and how its best is chosen; where the study's figure is not an
    MSE (it printed BCE as 'MSE'), say so."""
    note = ("Source `ours`: our trials, in leaderboard order; `study`: the study's rows with "
            "its published figures. `**` marks the lowest validation MSE in the table.")
    losses = sorted({r.loss for r in study_rows(task)} - {"mse"}) if task else []
    if losses:
        note += (f" Study rows trained with {', '.join(losses)} show that loss, as the study "
                 f"printed it, not an MSE, so they are never marked best.")
    return note


def write_tables(board: pd.DataFrame, task: str | None, directory: Path,
                 top_k: int) -> list[Path]:
    """Per-family comparison tables, discoveries, importance and the study's own rows."""
    written = []
    note = _table_note(task)
    for family in sorted(board["family"].dropna().unique()):
        table = comparison_table(board, family, task)
        written += _write_table(table, directory, f"comparison-{family}",
                                f"{task or ''} {family} models against the study".strip(),
                                note=note, bold=marked_rows(table))
    written += _write_table(discoveries(board, top_k), directory, "discoveries",
                            f"Top {top_k} configs that are not in the study")
    importance = param_importances(board)
    written += _write_table(importance, directory, "importance",
                            f"Parameter importance for {C.VAL_MSE} (Optuna PED-ANOVA)",
                            note=importance.attrs.get("reason", ""))
    if task:
        table = study_table(task)
        written += _write_table(table, directory, "study", f"The study's {task} rows",
                                bold=marked_rows(table))
    return written


def _without_failed(curve: pd.DataFrame, board: pd.DataFrame) -> pd.DataFrame:
    """The epochs of trials that did not fail (their epochs still count in cum_epochs)."""
    keys = [k for k in ("sweep", C.TRIAL_ID) if k in curve and k in board]
    failed = board.loc[board["status"].isin(C.FAILED), keys]
    drop = pd.MultiIndex.from_frame(curve[keys]).isin(pd.MultiIndex.from_frame(failed))
    return curve[~drop]


STUDY_TRAIN_IMAGES = {"mnist": 60_000, "mnist-denoise": 60_000}  # MNIST's training split


def _study_budget(row) -> str:
    images = STUDY_TRAIN_IMAGES.get(row.task)
    seen = (f" x {images:,} images = {row.epochs * images:,} images" if images
            else " on all training pages")
    return f"{row.epochs} epochs{seen}, batch {row.batch_size}"


def _budget_note(row, ok: pd.DataFrame, meta: dict) -> str:
    """Where our trials trained on less than the study's row, says so: a ranking across
    budgets says as much about the budgets as about the models."""
    if ok.empty:
        return ""
    epochs = float(ok["epochs"].max())
    size, images = meta.get("epoch_size"), STUDY_TRAIN_IMAGES.get(row.task)
    if epochs >= row.epochs and not (size and images and int(size) < images):
        return ""
    ours = f"at most {epochs:g} epochs" + (f" of {int(size):,} examples" if size else "")
    replayed = ok["report_model"].fillna("").astype(bool).any()
    return (f"  The study trained it {_study_budget(row)}; our trials {ours}."
            + ("" if replayed else " To compare like with like, replay the study's rows on "
               "this budget (--space report)."))


def _our_budget(curve: pd.DataFrame, meta: dict) -> str:
    """The sweep's spend: trial-epochs, and images where sweep.json knows the epoch size."""
    spent = float(curve["cum_epochs"].max()) if len(curve) else 0.0
    size = meta.get("epoch_size")
    if not size:
        return f"{spent:.3g} trial-epochs in all"
    return (f"epochs of {int(size):,} images; {spent:.3g} trial-epochs = "
            f"{spent * int(size):,.0f} images in all")


def _study_points(board: pd.DataFrame) -> pd.DataFrame:
    """The study's published (params, val_mse) of the rows our trials replayed, where its
    figure is an MSE."""
    ids = sorted({r for r in succeeded(board)["report_model"].fillna("") if r})
    rows = [study_row(i) for i in ids]
    table = [{"id": r.id, C.PARAMS: study_parameters(r), C.VAL_MSE: r.val}
             for r in rows if r is not None and r.loss == "mse"]
    return pd.DataFrame.from_records(table, columns=["id", C.PARAMS, C.VAL_MSE]).dropna()


def _model_title(best_dir: Path) -> str:
    notation = best_dir / C.NOTATION_FILE
    if not notation.is_file():
        return ""
    title = f"best model: {notation.read_text().strip()}"
    metrics = best_dir / C.METRICS_FILE
    try:
        val = json.loads(metrics.read_text()).get(C.VAL_MSE)
    except (OSError, ValueError):
        val = None
    return title + (f" (val_mse {val:.4g})" if isinstance(val, (int, float)) else "")


def study_line(task: str | None) -> tuple[float | None, str]:
    """The study's best figure and its label for the progress plot's val_mse axis; none where
    that figure is not an MSE (the study's MNIST rows give their BCE loss)."""
    row = study_best(task) if task else None
    if row is None or row.loss != "mse":
        return None, ""
    return row.val, f"study's best ({row.id}; {_study_budget(row)})"


def write_plots(board: pd.DataFrame, curve: pd.DataFrame, task: str | None,
                best_dir: Path, directory: Path, top_k: int,
                meta: dict | None = None, front: pd.DataFrame | None = None) -> list[Path]:
    study_val, study_label = study_line(task)
    written = [
        plots.learning_curves(curve, board, directory / "curves.png", top_k),
        plots.search_progress(_without_failed(curve, board), directory / "progress.png",
                              study_val=study_val, study_label=study_label,
                              budget=_our_budget(curve, meta or {})),
        plots.size_vs_quality(board, directory / "pareto.png", _study_points(board), front),
    ]
    npz = best_dir / C.RECONSTRUCTIONS_FILE
    if npz.is_file():
        written.append(plots.reconstruction_sheet(read_reconstructions(npz),
                                                  directory / "reconstructions.png",
                                                  title=_model_title(best_dir)))
    return written


def write_fronts(loaded: dict[Path, pd.DataFrame], board: pd.DataFrame, out: Path
                 ) -> tuple[list[Path], list[str], pd.DataFrame | None]:
    """The front of each multi-objective sweep (sweep.json's objectives), and which of the
    study's rows replayed among the sweeps given (`--space report`) it covers: a front model
    at most as large and at most as bad. Returns the files, the summary lines and the fronts
    together (for the Pareto plot; None when no sweep had several objectives)."""
    written: list[Path] = []
    lines: list[str] = []
    fronts = []
    names = dict(zip(loaded, sweep_names(list(loaded)), strict=True))
    rows = succeeded(board)
    rows = rows[rows["report_model"].fillna("") != ""]
    for sweep_dir, trials in loaded.items():
        objectives = read_sweep_meta(sweep_dir).get("objectives") or []
        if len(objectives) < 2:
            continue
        table = front.front_table(trials, objectives)
        fronts.append(table)
        stem = "front" if len(loaded) == 1 else f"front-{names[sweep_dir]}"
        written += _write_table(table, out / C.TABLES_DIR, stem,
                                f"Pareto front on {', '.join(objectives)} ({names[sweep_dir]})",
                                note="Healthy trials that trained their whole budget and that "
                                     "no other such trial beats on every objective.")
        lines.append(f"front of {names[sweep_dir]} on {', '.join(objectives)}: {len(table)} "
                     f"model(s)")
        if len(rows) and {C.PARAMS, C.VAL_MSE} <= set(objectives):
            covered = front.study_dominance(table, rows)
            written += _write_table(covered, out / C.TABLES_DIR, f"{stem}-vs-study",
                                    "The study's rows trained here, against the front")
            lines.append(f"the front covers {int(covered['covered'].sum())} of {len(covered)} "
                         f"study rows replayed (a front model at most as large, at most as bad)")
    together = pd.concat(fronts, ignore_index=True) if fronts else None
    return written, lines, together


def write_finalists(dirs: Sequence[Path], task: str | None, out: Path
                    ) -> tuple[list[Path], list[str]]:
    """The like-for-like table and the finalists' curves of each sweep that ran its finalists
    stage (`aesearch refit`); the RESULT line: the selected finalist's mean test MSE over the
    study's row's, trained here identically (median over the sweeps given)."""
    written: list[Path] = []
    lines: list[str] = []
    ratios = []
    for sweep_dir, name in zip(dirs, sweep_names(list(dirs)), strict=True):
        folder = finalists.finalists_dir(sweep_dir)
        if folder is None:
            continue
        runs, record = finalists.read_runs(folder)
        table = finalists.finalists_table(runs, record)
        stem = "finalists" if len(dirs) == 1 else f"finalists-{name}"
        written += _write_table(table, out / C.TABLES_DIR, stem,
                                f"Finalists at {record.get('epochs')} epochs ({name})",
                                note=finalists.table_note(record, runs, task),
                                bold=[i for i, s in enumerate(table["selected"]) if s])
        written.append(plots.finalist_curves(finalists.training_curves(folder, runs),
                                             out / C.PLOTS_DIR / f"{stem}.png"))
        ratio = finalists.finalist_vs_study(table)
        ratios.append(ratio)
        chosen = table[table["selected"].astype(bool)]
        for _, entry in chosen.iterrows():
            lines.append(f"finalists of {name}: selected on validation {entry['candidate']} "
                         f"{entry[C.NOTATION]}, test MSE {entry['test_mse_mean']:.4g} +- "
                         f"{entry['test_mse_std']:.2g} over {entry['seeds']} seeds "
                         f"({entry['verdict']} than the study's row trained here)")
            if task == "text":
                lines.append(f"RESULT text_test_rmse={entry['test_rmse_mean']:.5f}")
    if ratios:
        finite = [r for r in ratios if r == r]
        value = f"{float(pd.Series(finite).median()):.4f}" if finite else "nan"
        lines.append(f"RESULT finalist_vs_study={value}")
    return written, lines


def generate(sweep_dirs: Sequence[str | Path], out: str | Path | None = None,
             top_k: int = 5) -> Outputs:
    """Regenerate leaderboards, tables and plots from the sweep dirs' files alone."""
    dirs = list(dict.fromkeys(check_sweep_dir(d) for d in sweep_dirs))
    if not dirs:
        raise ValueError("generate needs at least one sweep directory")
    for d in dirs:
        if not trial_dirs(d) and (d / C.LEADERBOARD_FILE).is_file():
            # A sweep with URI storage keeps its trials in the bucket: rebuilding from the
            # status file alone would blank the live leaderboard, so nothing is written.
            raise ResultsError(
                f"{d} holds no trial directories, only the sweep's own files (its --storage "
                f"was elsewhere, e.g. s3://...): sync the Ray experiment into {d} to rebuild "
                f"from files; {d / C.LEADERBOARD_FILE} is left as the sweep wrote it"
            )
    loaded = {d: load_trials(d) for d in dirs}
    tasks = {d: sweep_task(d, trials) for d, trials in loaded.items()}
    written, lines = [], []
    for sweep_dir, trials in loaded.items():
        written.append(write_leaderboard(leaderboard(trials), sweep_dir / C.LEADERBOARD_FILE))
        lines += _sweep_lines(sweep_dir, trials, tasks[sweep_dir])
    out = Path(out) if out is not None else dirs[0]
    if len(dirs) == 1:
        board, curve = leaderboard(loaded[dirs[0]]), curves(dirs[0])
        best_dir = dirs[0] / C.BEST_DIR
    else:
        board = merge_trials(loaded)
        written.append(write_leaderboard(board, out / MERGED_LEADERBOARD_FILE))
        named = zip(dirs, sweep_names(dirs), strict=True)
        curve = pd.concat([curves(d).assign(sweep=name) for d, name in named], ignore_index=True)
        by_name = dict(zip(sweep_names(dirs), dirs, strict=True))
        best_sweep = board["sweep"].iloc[0] if len(board) else sweep_names(dirs)[0]
        best_dir = by_name[best_sweep] / C.BEST_DIR
    task = next((t for t in tasks.values() if t), None)
    meta = read_sweep_meta(dirs[0]) if len(dirs) == 1 else None  # merged sweeps: no one budget
    written += write_tables(board, task, out / C.TABLES_DIR, top_k)
    more, said, fronts = write_fronts(loaded, board, out)
    written += more
    lines += said
    written += write_plots(board, curve, task, best_dir, out / C.PLOTS_DIR, top_k, meta, fronts)
    lines += _best_lines(board, task, meta)
    more, said = write_finalists(dirs, task, out)
    written += more
    lines += said
    lines.append(f"Wrote {len(written)} file(s): leaderboard.csv in each sweep dir, "
                 f"{out / C.TABLES_DIR}, {out / C.PLOTS_DIR}.")
    return Outputs(board=board, task=task, out=out, written=written, summary="\n".join(lines))
