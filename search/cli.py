"""`python search/run.py`: one configuration (`--config`), or a sweep on local Ray or a cluster."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from search.precision import AUTO, PRECISIONS
from spaces import REGISTRY
from spaces.errors import UserError

EPILOG = """\
examples:
  python search/run.py --task mnist --config '6L,16F(3X3)' --epochs 1 --subset 2000
  python search/run.py --task mnist-denoise --space report --max-epochs 5 --subset 5000
  python search/run.py --task text --num-samples 40 --patch-size 96
  ray submit clusters/aws-gpu.yaml search/run.py -- --task text --gpus-per-trial 0.5

resume: rerun the same command with --resume (same --storage and --name). Finished trials are
kept, unfinished ones continue from their last checkpoint, errored ones are retried. A finished
sweep cannot grow and a sweep's space, search and budget cannot change on resume: start a new
--name for that.
"""


def _shape(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 420x540, got {text!r}"
        ) from None
    return height, width


def _duration(text: str) -> float:
    """Seconds from '90', '90s', '20m', '1h30m'."""
    import re

    match = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*"
                         r"(?:(\d+(?:\.\d+)?)s?)?\s*", text.lower())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"expected a duration such as 20m, 1h30m or 90s, "
                                         f"got {text!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"the duration must be positive, got {text!r}")
    return total


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line, like every other refusal of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="search/run.py", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", required=True, choices=tuple(REGISTRY),
                   help="what the autoencoder learns: " + "; ".join(
                       f"{name}: {spec.description}" for name, spec in REGISTRY.items()))
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's status tables, the workers' output and TensorFlow's "
                        "start-up lines (by default: one line per trial and a progress line)")
    g = p.add_argument_group("sweep")
    g.add_argument("--space", choices=("default", "study-axes", "report"), default="default",
                   help="default: conv models a short search can win in (spaces/default.py); "
                        "study-axes: every axis the study tried; report: replay the study's "
                        "table rows")
    g.add_argument("--search", choices=("optuna", "grid", "random"),
                   help="default: grid for --space report, optuna (TPE) for the others")
    g.add_argument("--scheduler", choices=("asha", "fifo"),
                   help="default: fifo for report (replay every row fully), asha for the others")
    g.add_argument("--num-samples", type=int,
                   help="trials to sample (full; default 20), or repeats of each row (report; 1)")
    g.add_argument("--max-epochs", type=int,
                   help="epochs per trial and ASHA's max_t "
                        "(default: the study's: 50 for MNIST, 25 for text)")
    g.add_argument("--grace-period", type=int, default=1,
                   help="ASHA: reports before a trial can stop")
    g.add_argument("--report-images", type=int,
                   help="training examples between two reports, ASHA's unit (default: "
                        "automatic, several reports an epoch; the run prints it)")
    g.add_argument("--budget-epochs", type=float,
                   help="end the sweep once its trials together trained this many epochs")
    g.add_argument("--time-budget", type=_duration,
                   help="end the sweep after this long, e.g. 20m, 1h30m, 90s; running "
                        "trials stop, and the leaderboard, best/ and tables are complete")
    g.add_argument("--checkpoint-every", type=int, default=1, help="checkpoint every k epochs")
    g.add_argument("--rows", type=lambda t: tuple(r.strip() for r in t.split(",") if r.strip()),
                   help="--space report: replay only these study rows, e.g. text/3.3/4,text/3.3/5")
    g.add_argument("--warm-start", choices=("report",),
                   help="give Optuna the study's best rows as first points (off by default)")
    g.add_argument("--refit", action="store_true",
                   help="text: retrain the best config on all labelled pages before export")
    g.add_argument("--seed", type=int, default=0, help="sampler, initialisation and data seed")
    g.add_argument("--max-params", type=int,
                   help="refuse configs with more parameters (default: the task's, "
                        "10M for MNIST, 5M for text)")
    g.add_argument("--max-activation-mb", type=float,
                   help="refuse configs whose activations for one batch exceed this "
                        "(default: the task's, 2048 for MNIST, 8192 for text)")
    g = p.add_argument_group("where")
    g.add_argument("--storage", default="runs",
                   help="experiment storage: a path, or a URI all nodes reach (s3://, gs://)")
    g.add_argument("--name", help="sweep name (default: TASK-SPACE, or TASK-single for --config)")
    g.add_argument("--resume", action="store_true", help="restore the sweep --storage/--name")
    g.add_argument("--address",
                   help="Ray cluster: 'local' for a new local Ray, 'auto', or host:port. "
                        "Default: RAY_ADDRESS, else the cluster this machine belongs to, "
                        "else local")
    g.add_argument("--cpus-per-trial", type=float,
                   help="CPUs per trial, also TensorFlow's thread count (sweep default 1; "
                        "--config default: all)")
    g.add_argument("--gpus-per-trial", type=float,
                   help="fractions allowed; default 1 if the cluster has GPUs, else 0")
    g.add_argument("--max-concurrent", type=int, help="at most this many trials at once")
    g.add_argument("--precision", choices=PRECISIONS, default=AUTO,
                   help="training precision: auto (the default) trains in mixed_bfloat16 on "
                        "CPUs with AMX, where trials trained 1.0-1.9x faster, and in float32 "
                        "elsewhere, GPUs included")
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", help="folder with mnist.npz and/or the documents "
                                      "(default: SEARCH_DATA_DIR; MNIST downloads through Keras)")
    g.add_argument("--subset", type=int, help="limit training examples (images or pages)")
    g.add_argument("--val-subset", type=int, help="limit validation images or pages")
    g.add_argument("--noise", type=float, default=0.5, help="mnist-denoise noise factor")
    g.add_argument("--val-fraction", type=float, default=0.2, help="text: held-out pages")
    g.add_argument("--patch-size", type=int, help="text: train on random square patches")
    g.add_argument("--patches-per-page", type=int, default=8)
    g.add_argument("--resize", type=_shape, help="text: resize pages, e.g. 420x540 (the study's)")
    g = p.add_argument_group("single configuration (--config)")
    g.add_argument("--config", help="train one config: the study's notation "
                                    "('4L,32,32,64,128F(3X3)'),"
                                    " a study row id ('text/3.3/5'), or a config JSON file")
    g.add_argument("--pool", default="0", help="pooling+upsampling pairs, e.g. '2+2'")
    g.add_argument("--dropout", default="0", help="dropout layers, e.g. '2 (p=0.2)'")
    g.add_argument("--batchnorm", default="0", help="batch-normalization layers")
    g.add_argument("--loss", choices=("mse", "bce", "mae"))
    g.add_argument("--optimizer", choices=("adam", "sgd", "rmsprop"))
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--epochs", type=int)
    return p


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from search.checks import check_args, given_flags
    from search.export import ExportError

    try:
        check_args(args, given_flags(parser, argv))  # before anything is read or started
        if args.config is not None:
            from search.single import run_single

            return run_single(args)
        from search.launch import launch_sweep

        return launch_sweep(args)
    except UserError as exc:  # anything else is a bug or a library failure: its traceback shows
        _fail(str(exc))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C, which skips Ray's orderly stop
        print("interrupted: continue the sweep with the same command and --resume",
              file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
