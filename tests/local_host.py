"""This host as a test machine: processes from /proc, files put back, a throwaway sshd.

Linux only (/proc); everything here acts only on what the caller names or started.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest


@contextmanager
def restored(*paths: Path) -> Iterator[None]:
    """On exit, put back each file's exact bytes and mode, or its absence."""
    saved = {p: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) if p.exists() else None
             for p in paths}
    try:
        yield
    finally:
        for path, before in saved.items():
            if before is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(before[0])
                path.chmod(before[1])


def process_table() -> list[tuple[int, str, int]]:
    """(pid, name, parent pid) of every live process, from /proc (zombies left out)."""
    table = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        name = line[line.index("(") + 1:line.rindex(")")]
        state, ppid = line[line.rindex(")") + 2:].split()[:2]
        if state != "Z":
            table.append((int(entry.name), name, int(ppid)))
    return table


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def descendants(root: int, table: list[tuple[int, str, int]] | None = None) -> list[int]:
    """Children, grandchildren, ... of `root` (those reparented to init already are lost)."""
    children: dict[int, list[int]] = {}
    for pid, _, ppid in table or process_table():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def terminate(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM the given processes (ours), SIGKILL whichever outlives `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with suppress(ProcessLookupError):  # already gone
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        live = {pid for pid, _, _ in process_table()}
        while (pids := [p for p in pids if p in live]) and time.monotonic() < deadline:
            time.sleep(0.2)
            live = {pid for pid, _, _ in process_table()}
        if not pids:
            return


def port_open(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def keygen(path: Path) -> None:
    """A passphrase-less ed25519 key pair: `path` and `path`.pub."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "aesearch-test",
                    "-f", str(path)], check=True, capture_output=True)


@contextmanager
def ssh_server(workdir: Path, public_key: str, home: Path) -> Iterator[None]:
    """root@127.0.0.1:22 accepting `public_key`: our own sshd, or the system's if 22 is taken.

    Our sshd reads the key from `workdir` (StrictModes off: it lives under /tmp), so nothing of
    root's changes; with the system's sshd the key is appended to root's authorized_keys for
    the duration of the test. The `local` provider has no SSH port setting: 22 it is.
    """
    if port_open(22):
        ssh_dir = home / ".ssh"
        made_dir = not ssh_dir.exists()
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        authorized = ssh_dir / "authorized_keys"
        try:
            with restored(authorized):
                with authorized.open("a") as f:
                    f.write(public_key)
                authorized.chmod(0o600)
                yield
        finally:
            if made_dir:
                ssh_dir.rmdir()
        return

    sshd = Path("/usr/sbin/sshd")
    if not sshd.is_file():
        pytest.fail(f"{sshd} not found: install openssh-server (.ci/run does, as root)")
    host_key = workdir / "ssh_host_ed25519_key"
    keygen(host_key)
    (workdir / "authorized_keys").write_text(public_key)
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        "Port 22", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"PidFile {workdir / 'sshd.pid'}", f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "StrictModes no", "MaxSessions 64", "MaxStartups 64",
    ]) + "\n")
    privsep = Path("/run/sshd")  # sshd refuses to start without its privilege-separation dir
    made_privsep = not privsep.exists()
    privsep.mkdir(mode=0o755, parents=True, exist_ok=True)
    with (workdir / "sshd.log").open("w") as log:
        proc = subprocess.Popen([str(sshd), "-D", "-e", "-f", str(config)],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not port_open(22):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {(workdir / 'sshd.log').read_text()}")
            time.sleep(0.2)
        yield
    finally:
        sessions = descendants(proc.pid)  # connections still open (ssh ControlPersist)
        terminate([proc.pid])
        proc.wait()
        terminate(sessions)
        if made_privsep:
            privsep.rmdir()
