"""One driver per sweep name: a lock file in the sweep folder, held with `fcntl.flock` for the
driver's life, so that the kernel releases it when the driver dies, however it dies."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from search.options import InputError

LOCK_FILE = ".driver.lock"


class NameLock:
    """An exclusive `fcntl.flock` on <folder>/.driver.lock for as long as the driver runs.

    The kernel drops the lock when the process dies, however it dies, so a crashed driver never
    blocks the next one. A second driver on the same name is refused with the holder's pid.
    If the folder did not exist before and holds nothing else when the lock is released (the
    run was refused or failed early), the lock file and the folder are removed again.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.path = folder / LOCK_FILE
        self._fd: int | None = None
        self._created = False

    def __enter__(self) -> NameLock:
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise InputError(f"--name {self.name}: another driver (pid {holder}) is running "
                                 f"on it in {self.folder}; wait for it, or choose another "
                                 f"--name") from None
            try:  # a releasing driver may have removed the file we opened: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        try:
            if self._created and [p.name for p in self.folder.iterdir()] == [LOCK_FILE]:
                self.path.unlink()  # still holding the lock: no one else can be using it
                self.folder.rmdir()
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None
