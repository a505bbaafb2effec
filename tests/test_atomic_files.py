"""Writes are exclusive and atomic (walk_core/atomic_files.py): concurrent saves with one prefix, failed and
interrupted writes, SIGTERM, file systems without hard links."""
from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rwalk.walk_core import atomic_files
from rwalk.walk_core.atomic_files import write_new, write_replace
from rwalk.walk_core.runner import RunnerPaths, SaveImage, use_paths
from rwalk.walk_core.runner.io_nodes import SaveAnimatedWEBP

PROCESSES, ROUNDS, BATCH = 4, 6, 2


def names(folder: Path):
    return sorted(p.name for p in folder.iterdir())


def test_write_new_takes_the_first_free_name_and_never_overwrites(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    path = write_new([tmp_path / "a.txt", tmp_path / "b.txt"], lambda temp: temp.write_text("new"))
    assert path == tmp_path / "b.txt" and path.read_text() == "new"
    assert (tmp_path / "a.txt").read_text() == "old" and names(tmp_path) == ["a.txt", "b.txt"]
    with pytest.raises(ValueError, match="one folder"):
        write_new([tmp_path / "a.txt", tmp_path / "sub" / "c.txt"], lambda temp: temp.write_text("x"))
    assert names(tmp_path) == ["a.txt", "b.txt"]  # no temporary left by the refusal


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_write_leaves_nothing(tmp_path, error):
    def write(temp: Path):
        temp.write_bytes(b"half a fi")
        raise error

    with pytest.raises(type(error)):
        write_new([tmp_path / "x.png"], write)
    assert names(tmp_path) == []
    (tmp_path / "keep.json").write_text("old")
    with pytest.raises(type(error)):
        write_replace(tmp_path / "keep.json", write)
    assert names(tmp_path) == ["keep.json"] and (tmp_path / "keep.json").read_text() == "old"


def test_write_replace_replaces_whole_files_and_refuses_a_folder(tmp_path):
    target = tmp_path / "m.safetensors"
    write_replace(target, lambda temp: temp.write_bytes(b"one"))
    write_replace(target, lambda temp: temp.write_bytes(b"two"))
    assert target.read_bytes() == b"two" and names(tmp_path) == ["m.safetensors"]
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_replace(tmp_path, lambda temp: temp.write_bytes(b"x"))


def test_without_hard_links_the_name_is_still_claimed_exclusively(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(atomic_files.os, "link", no_links)
    (tmp_path / "a").write_text("old")
    path = write_new([tmp_path / "a", tmp_path / "b"], lambda temp: temp.write_text("new"))
    assert path.name == "b" and (tmp_path / "a").read_text() == "old" and names(tmp_path) == ["a", "b"]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_sigterm_during_a_write_leaves_nothing(tmp_path):
    """A process killed with SIGTERM mid-write (inside terminate_raises, as cli.py runs) removes its temp file."""
    module = Path(atomic_files.__file__)
    script = textwrap.dedent(f"""
        import importlib.util, sys, time
        spec = importlib.util.spec_from_file_location("atomic_files", {str(module)!r})
        atomic = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(atomic)

        def write(temp):
            temp.write_bytes(b"partial")
            print("writing", flush=True)
            time.sleep(30)

        with atomic.terminate_raises():
            atomic.write_new([{str(tmp_path / "out.png")!r}], write)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        assert any(p.name.startswith(atomic_files.TEMP_PREFIX) for p in tmp_path.iterdir())
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 128 + signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
    assert names(tmp_path) == []


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_terminate_raises_turns_sigterm_into_an_exit_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(atomic_files.Terminated) as caught:
        with atomic_files.terminate_raises():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
    assert caught.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def _pixels(process: int, item: int) -> np.ndarray:
    """A 3x4 picture whose pixels say who wrote it: [H, W, 3] in 0..1."""
    pixels = np.zeros((3, 4, 3), dtype=np.float32)
    pixels[..., 0], pixels[..., 1] = process / 255.0, item / 255.0
    pixels[0, 0, 2] = 1.0
    return pixels


def _save_many(process: int, output: str, start, node: str) -> None:
    with use_paths(RunnerPaths(Path(output) / "in", Path(output))):
        start.wait(timeout=30)  # every process saves at the same moment
        for r in range(ROUNDS):
            batch = np.stack([_pixels(process, r * BATCH + i) for i in range(BATCH)])
            if node == "png":
                SaveImage().save_images(batch, filename_prefix="same/prefix")
            else:
                SaveAnimatedWEBP().save_images(batch, fps=5.0, filename_prefix="same/prefix")


@pytest.mark.parametrize("node", ["png", "webp"])
def test_concurrent_runs_with_one_prefix_write_valid_distinct_files(tmp_path, node):
    try:
        context = multiprocessing.get_context("fork")  # the children share this process's imports: fast
    except ValueError:
        pytest.skip("needs the fork start method")
    start = context.Barrier(PROCESSES)
    children = [context.Process(target=_save_many, args=(p, str(tmp_path), start, node)) for p in range(PROCESSES)]
    for child in children:
        child.start()
    deadline = time.monotonic() + 60
    for child in children:
        child.join(timeout=max(1.0, deadline - time.monotonic()))
        assert child.exitcode == 0
    files = sorted((tmp_path / "same").iterdir())
    per_file = BATCH if node == "webp" else 1
    assert len(files) == PROCESSES * ROUNDS * BATCH // per_file  # none overwritten, no temporary left
    assert all(not f.name.startswith(".") for f in files)
    written = []
    for f in files:
        with Image.open(f) as image:
            image.verify()  # CRCs and structure
        with Image.open(f) as image:
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                rgb = np.asarray(image.convert("RGB"))
                assert (rgb[..., :2] == rgb[0, 0, :2]).all()  # one writer per file, not a mix
                written.append((int(rgb[0, 0, 0]), int(rgb[0, 0, 1])))
    expected = [(p, i) for p in range(PROCESSES) for i in range(ROUNDS * BATCH)]
    assert sorted(written) == expected  # every picture of every process is there exactly once


def test_write_replace_refuses_a_fifo_and_a_symlink(tmp_path):
    import stat
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"is a FIFO \(named pipe\); expected a regular file or a new name"):
        write_replace(fifo, lambda temp: temp.write_text("x"))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    target = tmp_path / "target.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with pytest.raises(OSError, match="is a symbolic link"):
        write_replace(link, lambda temp: temp.write_text("x"))
    assert link.is_symlink() and target.read_text() == "old"
    assert names(tmp_path) == ["link.txt", "pipe", "target.txt"]  # no temporary left


def test_written_files_get_the_normal_mode_even_from_a_0600_writer(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)

    def private(temp):
        temp.write_text("x")
        os.chmod(temp, 0o600)  # as safetensors' save_file leaves it

    new = write_new([tmp_path / "a.txt"], private)
    replaced = write_replace(tmp_path / "b.txt", private)
    for path in (new, replaced):
        assert (path.stat().st_mode & 0o777) == atomic_files.FILE_MODE == 0o666 & ~umask
