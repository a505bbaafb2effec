"""The runner's folders (input, output, temp) and the rule that workflow paths stay inside them."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator, Optional, Union

PathLike = Union[str, Path]

#: the longest file or folder name most file systems accept, in bytes (ext4, APFS, NTFS, btrfs: 255)
NAME_MAX = 255
#: the longest whole path Linux accepts, in bytes, with its terminating NUL
PATH_MAX = 4096


@dataclass(frozen=True)
class RunnerPaths:
    """Folders the headless IO nodes read from and write to (made absolute on creation).

    ``temp_dir`` (PreviewImage) defaults to ``<output_dir>/temp``.
    """

    input_dir: Path
    output_dir: Path
    temp_dir: Optional[Path] = None

    def __post_init__(self):
        object.__setattr__(self, "input_dir", Path(self.input_dir).expanduser().resolve())
        object.__setattr__(self, "output_dir", Path(self.output_dir).expanduser().resolve())
        temp = self.output_dir / "temp" if self.temp_dir is None else Path(self.temp_dir).expanduser().resolve()
        object.__setattr__(self, "temp_dir", temp)

    @classmethod
    def default(cls, base: Optional[PathLike] = None) -> "RunnerPaths":
        """``./input`` and ``./output`` under ``base`` (the current directory when None)."""
        root = Path.cwd() if base is None else Path(base)
        return cls(root / "input", root / "output")

    def folder(self, kind: str) -> Path:
        """The folder for a ComfyUI file type: "input", "output" or "temp"."""
        try:
            return {"input": self.input_dir, "output": self.output_dir, "temp": self.temp_dir}[kind]
        except KeyError:
            raise ValueError(f"unknown folder type {kind!r}; expected 'input', 'output' or 'temp'") from None


_paths: ContextVar[Optional[RunnerPaths]] = ContextVar("runner_paths", default=None)


def current_paths() -> RunnerPaths:
    """The folders of the run in progress (``./input``, ``./output`` outside a run)."""
    return _paths.get() or RunnerPaths.default()


@contextmanager
def use_paths(paths: Optional[RunnerPaths]) -> Iterator[RunnerPaths]:
    """Make ``paths`` (default: ``./input``, ``./output``) the folders of the code in the block."""
    paths = paths or RunnerPaths.default()
    token = _paths.set(paths)
    try:
        yield paths
    finally:
        _paths.reset(token)


def resolve_inside(base: Path, name: str, kind: str) -> Path:
    """``base / name``, refusing a ``name`` that is empty, absolute or climbs out of ``base``.

    The ValueError says which folder and what is allowed; the caller adds node and input.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{name!r} is not a file name; expected a path relative to the {kind} folder {base}")
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        raise ValueError(f"{name!r} is an absolute path; files must be named relative to the {kind} folder {base}")
    check_name_length(name, kind)  # also refuses control characters and text that is not UTF-8
    root = base.resolve()
    full = (root / name).resolve()
    if full != root and root not in full.parents:
        raise ValueError(f"{name!r} points outside the {kind} folder {root}; paths may not climb out of it with '..'")
    if len(str(full).encode("utf-8", "surrogatepass")) >= PATH_MAX:
        raise ValueError(f"{name!r} makes a path of {len(str(full).encode('utf-8', 'surrogatepass'))} bytes in the "
                         f"{kind} folder {root}; paths may have at most {PATH_MAX - 1} bytes")
    return full


def check_name_text(name: str, kind: str) -> None:
    """Refuse a name no file system path should carry: a NUL, another control character (U+0000..U+001F,
    U+007F: a newline would also break cli.py's one-path-per-line output) or text that is not valid UTF-8
    (a lone surrogate). The ValueError names the character; the caller adds node and input."""
    for char in str(name):
        if char == "\0":
            raise ValueError(f"{name!r} contains a NUL character ('\\x00'); expected a plain file name in the "
                             f"{kind} folder")
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise ValueError(f"{name!r} contains a control character ({char!r}); expected a plain file name in "
                             f"the {kind} folder")
    try:
        str(name).encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{name!r} is not valid UTF-8 text (character {error.start + 1} is a lone surrogate); "
                         f"expected a plain file name in the {kind} folder") from None


def check_name_length(name: str, kind: str, room: int = 0) -> None:
    """Refuse a relative ``name`` with a part longer than :data:`NAME_MAX` bytes (UTF-8).

    ``room`` is what the writer adds to the last part (a counter and a suffix such as ``_00001_.png``); the
    ValueError says how long the part is and what is allowed, and the caller adds node and input. A name with
    a control character or text that is not UTF-8 is refused first (:func:`check_name_text`).
    """
    check_name_text(name, kind)
    parts = [p for p in PurePosixPath(str(name).replace("\\", "/")).parts if p not in ("/", "")]
    for i, part in enumerate(parts):
        extra = room if i == len(parts) - 1 else 0
        size = len(part.encode("utf-8", "surrogatepass"))
        if size + extra > NAME_MAX:
            shown = part if len(part) <= 40 else part[:20] + "..." + part[-12:]
            added = f" plus {extra} for the counter and suffix" if extra else ""
            limit = f"{NAME_MAX - extra} bytes here ({NAME_MAX} in all)" if extra else f"{NAME_MAX} bytes"
            raise ValueError(f"{shown!r} is {size} bytes long{added}; a file or folder name in the {kind} folder may "
                             f"have at most {limit}")
