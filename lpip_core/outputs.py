"""A command's outputs, planned before any work and held against a second writer.

Every file a command will write and every folder it will fill is checked first, so that nothing is
lost (an input replaced, an earlier result overwritten unasked, files dropped among the inputs) and
no work is thrown away (a run of hours that fails only when it writes). A failed check is a
ValueError of one line that starts with the option and the path.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

NAME_MAX = 255  # bytes in one file name, where the file system does not say
PATH_MAX = 4096


@dataclass(frozen=True)
class Output:
    """One path a command writes: a file (replaced atomically) or a folder it creates and fills."""

    option: str  # how the user named it: "-o", "--log-dir"
    path: Path
    folder: bool = False


def plan_outputs(outputs: Sequence[Output], inputs: Iterable[str | os.PathLike] = (), *,
                 overwrite: bool = False) -> None:
    """Refuse, before any work, an output that: is one of the inputs or lies inside an input folder;
    exists without `overwrite` (files; a folder may exist); is a folder where a file is written or
    anything but a folder where a folder is filled; has a name too long for its file system; lies
    where nothing can be written. Nothing is created: the probe file of a writable place is removed."""
    sources = [(Path(p), Path(p).resolve()) for p in inputs]
    identities = {_identity(p): p for p, _ in sources if _identity(p)}
    probed: dict[Path, str | None] = {}
    for out in outputs:
        where = f"{out.option} {out.path}"
        _check_length(out.path, where)
        resolved = out.path.resolve()
        for given, source in sources:
            same = resolved == source or identities.get(_identity(out.path)) == given
            if same and not source.is_dir():
                raise ValueError(f"{where}: writing it would replace the input {given} (choose another path)")
            if (same or source in resolved.parents) and source.is_dir():
                raise ValueError(f"{where}: {'is' if same else 'lies inside'} the input folder {given}; its files would be mixed with "
                                 "the inputs (choose a path outside it)")
        _check_kind(out, where, overwrite)
        folder = out.path if out.folder else out.path.parent
        if folder not in probed:
            probed[folder] = _unwritable(folder)
        if probed[folder]:
            raise ValueError(f"{where}: cannot write there ({probed[folder]})")


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode): the same file under another name (a hard link) is still the input."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _check_kind(out: Output, where: str, overwrite: bool) -> None:
    try:
        mode = out.path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise ValueError(f"{where}: cannot use it ({e.strerror or e})") from None
    if out.folder:
        if not stat.S_ISDIR(mode):
            raise ValueError(f"{where}: exists and is not a folder")
    elif stat.S_ISDIR(mode):
        raise ValueError(f"{where}: is a folder; give the path of a file to write")
    elif not stat.S_ISREG(mode):
        raise ValueError(f"{where}: exists and is not a regular file (a pipe, device or socket)")
    elif not overwrite:
        raise ValueError(f"{where}: exists; pass --overwrite to replace it")


def _check_length(path: Path, where: str) -> None:
    """Every name and the whole path within the file system's limits (atomic writes keep their
    temporary names short, files.atomic_output)."""
    existing = _nearest_existing(path.absolute())
    name_max = _pathconf(existing, "PC_NAME_MAX", NAME_MAX)
    for part in path.absolute().parts:
        if len(os.fsencode(part)) > name_max:
            raise ValueError(f"{where}: the name {part[:20]}... is {len(os.fsencode(part))} bytes long; this file "
                             f"system takes at most {name_max}")
    path_max = _pathconf(existing, "PC_PATH_MAX", PATH_MAX)
    if len(os.fsencode(str(path.absolute()))) >= path_max:
        raise ValueError(f"{where}: the path is longer than this system's limit of {path_max} bytes")


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:  # lexists: False, not an error, on a too-long name
        path = path.parent
    return path


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):  # AttributeError: no pathconf (Windows)
        return default


def _unwritable(folder: Path) -> str | None:
    """Why nothing can be written in `folder` (or, while it does not exist, in the folder that would
    hold it), or None: a probe file is created and removed, since permissions alone do not tell
    (root, read-only mounts, ACLs)."""
    existing = _nearest_existing(folder.absolute())
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        return e.strerror or str(e)
    return None


@contextlib.contextmanager
def exclusive(folder: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold `folder` for this process: a second process that asks for it while it is held gets a
    one-line ValueError. The hold is an flock on the folder itself (no lock file to leave behind), so
    the system releases it when the process ends, however it ends. Where flock does not exist
    (Windows) nothing is held."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValueError(f"{what}: another process is writing there now (wait for it to finish, or choose "
                                 "another path)") from None
            raise
        yield
    finally:
        os.close(fd)
