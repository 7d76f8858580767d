"""Output files that appear whole or not at all.

:func:`atomic_output` yields a binary file object; its bytes become visible at ``path`` only when the ``with`` block
ends without an exception. On Linux the file is created unnamed in the target folder (``O_TMPFILE``) and linked into
place at the end, so not even ``SIGKILL`` can leave a partial or temporary file behind. Elsewhere a hidden
``.NAME.*.partial`` file in the same folder is renamed into place, and removed on any exception (Ctrl-C and, in the CLI,
``SIGTERM`` arrive as exceptions). Permissions follow the process umask (``0o666 & ~umask``), like any new file.

:func:`check_output_path` says before any work is done whether a path can be written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError


def check_output_path(path: str | os.PathLike, what: str = "output", example: str = "video.mp4",
                      suffixes: tuple[str, ...] = ()) -> Path:
    """Check that ``path`` can be written (its folder may not exist yet: it is created on writing) and, when
    ``suffixes`` are given, ends in one of them. Leaves nothing behind (the write probe is an unnamed file).

    Raises:
        InputError: ``path`` is a folder (or ends in a separator), has another suffix, a parent is a file, or the
            nearest existing folder cannot be written.
    """
    text = os.fspath(path)
    path = Path(path)
    if path.is_dir() or text.endswith((os.sep, "/")):
        raise InputError(f"{what} {path} is a folder; give a file name such as {path / example}.")
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{what} {path}: the file name must end in {' or '.join(suffixes)} "
                         f"(e.g. {path.with_suffix(suffixes[0]).name}).")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} {path}: {parent} is a file, not a folder. Choose another output path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: the folder {parent} is not writable. Choose another output path.")
    try:  # what access() cannot tell (read-only mounts, /proc, quotas): create and drop an unnamed file
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise InputError(f"{what} {path}: files cannot be written in {parent} ({exc.strerror}). "
                         "Choose another output path.") from exc
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _unnamed(path: Path) -> Iterator[BinaryIO]:
    fd = os.open(path.parent, os.O_TMPFILE | os.O_RDWR, 0o666)  # mode & ~umask, like open()
    with os.fdopen(fd, "w+b") as file:
        yield file
        file.flush()
        try:
            _link(f"/proc/self/fd/{file.fileno()}", path)
        except OSError:  # e.g. overlay file systems refuse to link unnamed files: copy into a renamed file instead
            file.seek(0)
            with _renamed(path) as out:
                shutil.copyfileobj(file, out, 1 << 24)


def _link(source: str, path: Path) -> None:
    try:
        os.link(source, path, follow_symlinks=True)
    except FileExistsError:  # replace an old file: link beside it, then rename over it (atomic)
        side = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        os.link(source, side, follow_symlinks=True)
        try:
            os.replace(side, path)
        except BaseException:
            side.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def _renamed(path: Path) -> Iterator[BinaryIO]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w+b") as file:
            yield file
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A writable, seekable binary file whose content replaces ``path`` only if the block completes.

    The parent folder is created if needed. Raises what the file system raises (``OSError``: no space, no
    permission).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _unnamed if hasattr(os, "O_TMPFILE") and _supports_tmpfile(path.parent) else _renamed
    with writer(path) as file:
        yield file


def _supports_tmpfile(folder: Path) -> bool:
    """Some file systems (and all non-Linux systems) have no unnamed files; probed in ``folder`` on every call."""
    try:
        os.close(os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600))
    except OSError:
        return False
    return os.path.exists("/proc/self/fd")


def save_safetensors(tensors: dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """``safetensors.torch.save_file`` through :func:`atomic_output`: whole or not at all, with the umask's
    permissions (the Rust writer creates files 0600). Returns the path.

    Raises:
        OSError: the file system refused the write.
    """
    from safetensors.torch import save

    with atomic_output(path) as file:
        file.write(save(tensors, metadata=metadata))
    return Path(path)
