"""`aesearch dashboard SWEEP_DIR`: Optuna's dashboard on a sweep's journal, read only.

The dashboard (the `optuna-dashboard` package) shows each trial's parameters, learning curve,
state and user attributes (`search.journal`: finished, stopped by ASHA, collapsed, diverged,
failed), the history of the best value, parameter importances. It is served from this process
with Python's WSGI server, as `optuna_dashboard.run_server` does; built here from
`optuna_dashboard.wsgi` so that `--port 0` can bind a free port and print its URL before
serving (run_server would pick one and never say which).

The journal is opened read only. The dashboard has buttons that write (tell a trial, rename or
delete the study, save a note); in a running sweep's journal a trial told from there would make
the searcher's own `tell` fail, so every write is refused instead, and the sweep never notices
the dashboard.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend

from search import journal
from search.union_storage import UnionStorage
from spaces.errors import UserError

DEFAULT_HOST = "127.0.0.1"
MAX_PORT = 65535

# Every BaseStorage method that writes (Optuna 5.1): the read-only journal refuses each.
WRITES = ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
          "create_new_trial", "set_trial_param", "set_trial_state_values",
          "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr")


class DashboardError(UserError):
    """The dashboard cannot serve as asked (no such folder, a port in use)."""


class ReadOnlyError(RuntimeError):
    """A write the dashboard tried on the sweep's journal."""


class ReadOnlyJournal(JournalStorage):
    """A `JournalStorage` that reads the journal as it grows and refuses every write."""


def _refuse(self: ReadOnlyJournal, *args: Any, **kwargs: Any) -> NoReturn:
    raise ReadOnlyError("aesearch dashboard is read only: it never writes a sweep's journal")


for _name in WRITES:
    setattr(ReadOnlyJournal, _name, _refuse)


def read_only_storage(path: Path) -> ReadOnlyJournal:
    return ReadOnlyJournal(JournalFileBackend(str(path)))


class _QuietHandler(WSGIRequestHandler):
    """No line per request on the terminal."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def storage_of(sweep_dirs: Sequence[Path]) -> BaseStorage:
    """The sweeps' journals, read only: one sweep's as it is, several as one union (each its
    own study). Raises `JournalError` for a missing or damaged journal, naming it, and
    `DashboardError` for a folder that is not there."""
    storages = []
    for sweep_dir in sweep_dirs:
        if not sweep_dir.is_dir():
            raise DashboardError(f"{sweep_dir}: no such sweep folder")
        path = journal.journal_path(sweep_dir)
        journal.check(path, torn_tail_ok=True)  # a record being written now is not damage
        storages.append((str(sweep_dir), read_only_storage(path)))
    if len(storages) == 1:
        return storages[0][1]
    return UnionStorage(storages)


def serve(sweep_dirs: Path | Sequence[Path], host: str = DEFAULT_HOST,
          port: int = 0) -> WSGIServer:
    """A server of the dashboard of the sweeps in `sweep_dirs`, bound but not yet serving
    (call `serve_forever`). Raises `JournalError` for a missing or damaged journal and
    `DashboardError` for a folder or address that cannot be used."""
    import optuna_dashboard

    dirs = [sweep_dirs] if isinstance(sweep_dirs, Path) else list(sweep_dirs)
    app = optuna_dashboard.wsgi(storage_of(dirs))
    try:
        return make_server(host, port, app, handler_class=_QuietHandler)
    except OSError as exc:
        raise DashboardError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): give "
                             f"another --port, or --port 0 for a free one") from None


def url(server: WSGIServer, host: str) -> str:
    return f"http://{host}:{server.server_port}/dashboard/"


class _Parser(argparse.ArgumentParser):
    """Errors on one line, exit 2, as every other refusal of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aesearch dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dirs", type=Path, nargs="+", metavar="SWEEP_DIR",
                        help="a sweep's folder (<storage>/<name>), running or not; several "
                        "are served together, each its own study (e.g. a search beside the "
                        "grid replay of the study's rows)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"the address to listen on (default {DEFAULT_HOST}, this machine "
                        f"only; 0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=0,
                        help="the port (default 0: a free one, printed)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the dashboard until Ctrl-C; 2 (one line naming the file) for a sweep folder
    without a readable journal or a bad --host/--port."""
    args = _parser().parse_args(argv)
    try:
        if not 0 <= args.port <= MAX_PORT:
            raise DashboardError(f"--port must be between 0 and {MAX_PORT}, got {args.port}")
        if not args.host.strip():
            raise DashboardError("--host is empty: give an address such as 127.0.0.1")
        dirs = [d.expanduser() for d in args.sweep_dirs]
        server = serve(dirs, args.host, args.port)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"dashboard: {url(server, args.host)}", flush=True)
    journals = ", ".join(str(journal.journal_path(d)) for d in dirs)
    print(f"read only, from {journals}; Ctrl-C stops the dashboard (never the sweep)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
