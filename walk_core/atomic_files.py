"""Every file the pack writes goes through here: no reader sees half a file, no writer overwrites another's.

The bytes first go to a hidden temporary file in the destination folder (``.rwalk-<random>.part``), which is
flushed and fsynced; only a complete file is then given its final name:

- :func:`write_new` claims the first free name among the candidates *exclusively* (a hard link, which fails
  when the name exists, so concurrent runs with one filename prefix each get their own counter);
- :func:`write_replace` replaces one named file atomically (``os.replace``), for files the pack rewrites on
  purpose (a trained model's checkpoints, ``cli.py convert -o``).

Whatever stops a write -- an exception, KeyboardInterrupt, or SIGTERM inside :func:`terminate_raises` (which
``cli.py`` uses) -- removes the temporary file, so a failed write leaves nothing behind. Only a hard kill
(SIGKILL, power loss) can leave a ``.rwalk-*.part`` file; it never carries a final name.

Stdlib only: the tests load this file on its own in short-lived processes.
"""
from __future__ import annotations

import errno
import itertools
import logging
import os
import secrets
import signal
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

TEMP_PREFIX = ".rwalk-"
TEMP_SUFFIX = ".part"
MAX_TAKEN = 100_000  # write_new gives up after this many names already taken
#: errno values of a file system without hard links (FAT, some network and FUSE mounts)
_NO_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.EOPNOTSUPP,
             getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}

Writer = Callable[[Path], None]


def _read_umask() -> int:
    """The process umask (read once at import: os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: the mode every written file gets: 0o666 less the umask (as open() would give), whatever the writer used --
#: safetensors' save_file writes through its own 0600 temporary, which a rename would otherwise keep
FILE_MODE = 0o666 & ~_read_umask()


class Terminated(SystemExit):
    """SIGTERM arrived inside :func:`terminate_raises`; exits with status 128 + SIGTERM like the default action."""


@contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` so ``finally`` blocks (and temp-file cleanup) run.

    Only the main thread can install signal handlers; elsewhere (inside ComfyUI's worker thread) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def handler(signum, frame):
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _sync_folder(folder: Path) -> None:
    """Make the new directory entry durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _temporary(folder: Path, write: Writer) -> Iterator[Path]:
    """A complete, fsynced temporary file in ``folder`` written by ``write(path)``; removed on leaving."""
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
    try:
        while True:  # a name of our own, never another writer's temporary
            try:
                os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                break
            except FileExistsError:
                temp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
        write(temp)
        try:
            os.chmod(temp, FILE_MODE)
        except OSError:  # a file system without modes (FAT, some network mounts)
            pass
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        yield temp
    finally:
        _remove(temp)


def _claim(temp: Path, final: Path) -> bool:
    """Give ``temp``'s content the name ``final`` unless that name exists; True when claimed."""
    try:
        os.link(temp, final)
        return True
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in _NO_LINKS:
            raise
    # no hard links here: reserve the name exclusively, then move the complete file onto the reservation
    try:
        os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        return False
    try:
        os.replace(temp, final)
    except BaseException:
        _remove(final)
        raise
    return True


def write_new(candidates: Iterable[Path | str], write: Writer) -> Path:
    """Write a new file with ``write(path)`` and name it the first of ``candidates`` not yet taken.

    All candidates must lie in one folder (made if missing). Never overwrites a file, also against other
    processes writing the same names at the same time. Returns the name claimed.
    """
    names = iter(Path(c) for c in candidates)
    first = next(names, None)
    if first is None:
        raise ValueError("write_new: no candidate file name given")
    folder = first.parent
    with _temporary(folder, write) as temp:
        taken = 0
        for final in itertools.chain((first,), names):
            if final.parent != folder:
                raise ValueError(f"write_new: {final} is not in {folder}; expected every candidate in one folder")
            if _claim(temp, final):
                _sync_folder(folder)
                return final
            taken += 1
            if taken >= MAX_TAKEN:
                break
    raise FileExistsError(f"{first}: {taken} candidate names in {folder} are all taken; choose another name")


def not_regular_file(path: Path | str) -> str:
    """Why ``path`` may not be replaced by a written file ('' when it is a regular file or a new name).

    A device, FIFO or socket would be silently turned into a regular file by a rename, and a symbolic link
    into a file in its place, so each is refused by name.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return ""
    except OSError:
        return ""  # e.g. a name too long: the write itself reports it
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return ""
    if stat.S_ISLNK(mode):
        return ("is a symbolic link; expected a regular file or a new name (name the link's target instead, "
                "so the link is not replaced by a file)")
    kinds = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISSOCK, "a socket"))
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"is {what}; expected a regular file or a new name"


def write_replace(path: Path | str, write: Writer) -> Path:
    """Write ``path`` with ``write(temporary path)`` and move it into place atomically (replacing any file).

    Readers see the old file or the new one, never a mix; a failed write leaves the old file as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{path} is a folder; expected a file name", str(path))
    problem = not_regular_file(path)
    if problem:
        raise OSError(errno.EEXIST, f"{path} {problem}", str(path))
    with _temporary(path.parent, write) as temp:
        os.replace(temp, path)
        _sync_folder(path.parent)
    return path


def write_text_replace(path: Path | str, text: str, encoding: str = "utf-8") -> Path:
    """:func:`write_replace` for a text file."""
    return write_replace(path, lambda temp: temp.write_text(text, encoding=encoding))
