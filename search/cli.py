"""`aesearch`: `sweep`, `train` (one configuration), `results`, `export`, `denoise` and
`dashboard`.

`aesearch sweep|train` take the flags that `search/options.py` declares; `python search/run.py
...` and `aesearch --task ...` without a command still mean `train` with `--config` and `sweep`
without (as `ray submit cluster.yaml search/run.py -- ...` does). `results`, `export` and
`denoise` are `python -m results`, `python -m search.export` and `python -m search.denoise`;
`dashboard` serves Optuna's dashboard on a sweep's journal (`search/dashboard.py`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from search.options import SPECS, SWEEP, TRAIN, Options, Spec, flag
from spaces.errors import UserError

EPILOG = """\
commands (optional: without one, --config means train and its absence sweep):
  sweep     search a space on Ray          train     train one --config without Ray
  refit     a sweep's finalists stage      results   tables and plots of sweeps
  export    write a sweep's best/ again    denoise   clean document pages with a model
  dashboard watch a sweep in the browser (Optuna's dashboard, read only)

examples:
  python search/run.py --task mnist --config '6L,16F(3X3)' --epochs 1 --subset 2000
  aesearch sweep --task mnist-denoise --space report --max-epochs 5 --subset 5000
  aesearch sweep --task text --num-samples 40 --patch-size 96
  aesearch refit runs/mnist-default --refit-epochs 50 --repeats 3
  aesearch dashboard runs/mnist-default   # prints its URL: http://127.0.0.1:PORT/dashboard/
  ray submit clusters/aws-gpu.yaml search/run.py -- --task text --gpus-per-trial 0.5

resume: rerun the same command with --resume (same --storage and --name). Finished trials are
kept, unfinished ones continue from their last checkpoint, errored ones are retried. A finished
sweep cannot grow and a sweep's space, search and budget cannot change on resume: start a new
--name for that.
"""
GROUPS = {"run": None, "sweep": "sweep", "refit": "finalists stage (--refit; aesearch refit)",
          "where": "where", "data": "data",
          "config": "single configuration (--config)"}


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line, like every other refusal of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _text_parser(name: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the converter in "invalid <name> value"
    return convert


def _search_help(spec: Spec) -> str:
    from search.searchers import DEFAULT_SEARCH, SEARCHERS

    return (f"default: grid for --space report, {DEFAULT_SEARCH} for the others. "
            + "; ".join(f"{name}: {s.why}" for name, s in SEARCHERS.items()))


HELP: dict[str, Callable[[Spec], str]] = {"search": _search_help}


def _add(group: Any, name: str, spec: Spec, type_: Any) -> None:
    """One flag, from the option's declaration. Defaults stay with `Options`: the parser
    suppresses them, so that what it returns is exactly what was given."""
    kwargs: dict[str, Any] = {"help": HELP[name](spec) if name in HELP else spec.help}
    if type_ is bool:
        kwargs["action"] = "store_true"
    else:
        choices = spec.choice_list()
        if choices is not None:
            kwargs["choices"] = choices
        elif spec.parse is not None:
            kwargs["type"] = _text_parser(spec.parse.__name__, spec.parse)
        elif type_ in (int, float):
            kwargs["type"] = type_
        if spec.metavar:
            kwargs["metavar"] = spec.metavar
    kwargs["required"] = name == "task"
    group.add_argument(flag(name), dest=name, **kwargs)


def _types() -> dict[str, Any]:
    import typing

    hints = typing.get_type_hints(Options)
    result = {}
    for name, hint in hints.items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        result[name] = args[0] if args else hint
    return result


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The flags of `sweep` and `train` (both: without a command), one per option."""
    prog = f"aesearch {command}" if command else "search/run.py"
    parser = _Parser(prog=prog, description=__doc__, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     argument_default=argparse.SUPPRESS)
    groups = {key: parser if title is None else parser.add_argument_group(title)
              for key, title in GROUPS.items()}
    types = _types()
    for name, spec in SPECS.items():  # every flag, so that a misplaced one is named
        _add(groups[spec.group], name, spec, types[name])
    return parser


REFIT_USAGE = """\
The finalists stage of a finished sweep: retrain its --top-k best distinct configs and the
study's best row(s) at --refit-epochs, --repeats seeds each, on Ray; measure each on the
validation split and on the test split no trial saw. Rerun the same command to resume.
"""


def parse_refit(argv: Sequence[str] | None = None) -> tuple[str, dict[str, Any]]:
    """`aesearch refit SWEEP_DIR [flags]`: the sweep dir and the flags given (by option name).
    Bad values exit 2, as every other command's."""
    from search.options import REFIT_OPTIONS, check_refit

    parser = _Parser(prog="aesearch refit", description=REFIT_USAGE,
                     argument_default=argparse.SUPPRESS)
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a sweep's folder "
                        "(<storage>/<name>)")
    types = _types()
    parser.add_argument("--task", choices=SPECS["task"].choice_list(),
                        help="refuse the sweep unless it is of this task")
    for name in REFIT_OPTIONS:
        if name != "task":
            _add(parser, name, SPECS[name], types[name])
    values = vars(parser.parse_args(argv))
    sweep_dir = values.pop("sweep_dir")
    try:
        check_refit(values)
    except UserError as exc:
        parser.error(str(exc))
    return sweep_dir, values


def parse(argv: Sequence[str] | None = None,
          command: str | None = None) -> tuple[Options, set[str]]:
    """The options a command line asks for, and the names of the flags it gave."""
    values = vars(build_parser(command).parse_args(argv))
    return Options(**values), set(values)


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def run(options: Options, given: set[str]) -> int:
    """Check, then train the one configuration or run the sweep (an exit status)."""
    options.check(given)  # before anything is read or started
    if options.mode == TRAIN:
        from search.single import run_single

        return run_single(options)
    from search.launch import launch_sweep

    return launch_sweep(options)


def _other(command: str, argv: list[str]) -> int:
    if command == "results":
        from results.__main__ import main as results_main

        return results_main(argv)
    if command == "export":
        from search.export import main as export_main

        return export_main(argv)
    if command == "refit":
        from search.refit import main as refit_main

        return refit_main(argv)
    if command == "dashboard":
        from search.dashboard import main as dashboard_main

        return dashboard_main(argv)
    from search.denoise import main as denoise_main

    return denoise_main(argv)


COMMANDS = (SWEEP, TRAIN, "refit", "results", "export", "denoise", "dashboard")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and args[0] in COMMANDS else None
    if command not in (None, SWEEP, TRAIN):
        return _other(command, args)
    options, given = parse(args, command)
    from search.export import ExportError

    try:
        if command == TRAIN and options.config is None:
            raise UserError("aesearch train needs --config (a notation, study row or JSON "
                            "file); aesearch sweep searches a space")
        if command == SWEEP and options.config is not None:
            raise UserError("--config trains one configuration: use aesearch train")
        return run(options, given)
    except UserError as exc:  # anything else is a bug or a library failure: its traceback shows
        _fail(str(exc))
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C, which skips Ray's orderly stop
        print("interrupted: continue the sweep with the same command and --resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
