"""Files lrlab writes and reads, handled so that a hostile folder cannot misuse them.

Writing (:func:`write_atomic`): every output file (report, figures, export, the demo's
files) is written whole or not at all, and never through a link:

1. the data goes to a new temporary file *in the target's folder*, named
   ``.NAME.RANDOM.tmp`` and created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (a name that
   already exists, as a file or a planted symbolic link, is never opened: another random
   name is drawn);
2. the file is flushed to disk (``fsync``) and renamed over the target. ``rename`` does not
   follow links, so **a target that is a symbolic link is replaced by the new file; the
   file the link pointed to is never written** (lrlab never changes a file outside the
   path it was given);
3. an existing regular file's permission bits carry over to the new one;
4. on any failure the temporary file is removed and the error becomes one line
   (:class:`FileWriteError`) naming the path and the fix.

Locks (:func:`open_lock_file`): opened with ``O_NOFOLLOW`` and ``O_CREAT`` (never
truncated on open), refused when the path is a link, not a regular file, or a file with
other hard links, so locking a folder can never write to a file elsewhere.

Reading (:func:`open_input`, :func:`read_input`): input files (experiment file, CSV, NPZ)
must be regular files no larger than a stated limit. A FIFO, a device such as
``/dev/zero`` or a folder is refused at once (it is opened with ``O_NONBLOCK``, so a FIFO
without a writer cannot hang the open), and so is a file over the limit, each with one line
naming the limit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lrlab.errors import LrlabError

__all__ = [
    "FileWriteError",
    "InputFileError",
    "UnsafeFileError",
    "format_size",
    "open_input",
    "open_lock_file",
    "read_input",
    "write_atomic",
]

_TEMP_ATTEMPTS = 100


class FileWriteError(LrlabError):
    """An output file cannot be written (one line: the path, the reason, the fix)."""


class UnsafeFileError(LrlabError):
    """A path lrlab would write is a link, a special file or hard-linked elsewhere."""


class InputFileError(LrlabError):
    """An input file is missing, not a regular file, or over its size limit."""


# --------------------------------------------------------------------------- writing
def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path``: whole or not at all, never through a link.

    Missing parent folders are created. See the module docstring for the steps; a reader
    never sees half a file, a failed write leaves the old file (or none) and no temporary
    file, and a symbolic link at ``path`` is replaced, its target left untouched.

    Raises:
        FileWriteError: the folder is read-only or missing and cannot be created, the disk
            is full, ``path`` is a folder, ...: one line naming ``path`` and the fix.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_atomic(Path(d) / "sub" / "a.txt", "hi").read_text()
    'hi'
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    _refuse_special(path)
    try:
        if path.is_dir() and not path.is_symlink():  # a link (to a folder too) is replaced
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = _create_temp(path)
    except OSError as err:
        raise FileWriteError(_write_message(path, err)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            _keep_mode(path, f.fileno())
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:  # also Ctrl-C: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise FileWriteError(_write_message(path, err)) from None
        raise
    _sync_folder(path.parent)
    return path


def _refuse_special(path: Path) -> None:
    """Refuse a target that is, or links to, a device, FIFO or socket (``/dev/full``,
    ``/dev/stdout``): renaming over it would replace the system's node with a file.

    >>> _refuse_special(Path("/dev/null"))
    Traceback (most recent call last):
    lrlab.fileio.FileWriteError: cannot write /dev/null: it is a character device, not a \
regular file; give the path of a file to write
    """
    for info in (_stat_or_none(os.lstat, path), _stat_or_none(os.stat, path)):
        special = info is not None and not (
            stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode)
        )
        if special:
            raise FileWriteError(
                f"cannot write {path}: it is {_kind(info.st_mode)}, not a regular file; "
                "give the path of a file to write"
            )


def _stat_or_none(how, path: Path) -> os.stat_result | None:
    try:
        return how(path)
    except OSError:
        return None


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new file ``.NAME.RANDOM.tmp`` beside ``path``, opened for writing (mode 0666 less
    the umask, like any new file); an existing name, a link included, is never opened."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_TEMP_ATTEMPTS):
        tmp = path.with_name(f".{path.name[:100]}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def _keep_mode(path: Path, fd: int) -> None:
    """An existing regular file's permission bits carry over (an executable script stays
    executable); a new file, or one replacing a link, gets 0666 less the umask."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode):
        os.fchmod(fd, stat.S_IMODE(info.st_mode))


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (best effort: some file systems cannot sync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_FIXES = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EROFS: "write to a writable folder",
    errno.EACCES: "make the folder writable or write elsewhere",
    errno.EPERM: "make the folder writable or write elsewhere",
    errno.ENOENT: "check that the folder exists",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "it is a folder; give a file name",
}


def _write_message(path: Path, err: OSError) -> str:
    reason = err.strerror or type(err).__name__
    fix = _FIXES.get(err.errno or 0, "check the path and the disk")
    return f"cannot write {path}: {reason}; {fix}"


# --------------------------------------------------------------------------- locks
def open_lock_file(path: str | Path) -> int:
    """Open (creating it if needed) the lock file ``path`` for reading and writing.

    ``O_NOFOLLOW | O_CREAT`` without ``O_TRUNC``: a symbolic link at ``path`` is refused
    instead of followed, and nothing is truncated by opening. After opening, the file must
    be a regular file with no other hard link (else writing to it would change a file
    elsewhere). Returns the file descriptor (close-on-exec).

    Raises:
        UnsafeFileError: ``path`` is a link, not a regular file, or hard-linked.
        OSError: any other reason the file cannot be opened (read-only folder, full disk).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     fd = open_lock_file(Path(d) / ".lock")
    ...     os.close(fd)
    ...     os.symlink(Path(d) / "elsewhere", Path(d) / ".lock2")
    ...     open_lock_file(Path(d) / ".lock2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrlab.fileio.UnsafeFileError: ....lock2 is a symbolic link; lrlab does not write ...
    """
    path = Path(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP or path.is_symlink():
            raise UnsafeFileError(
                f"{path} is a symbolic link; lrlab does not write through links: "
                "remove it and run again"
            ) from None
        raise
    info = os.fstat(fd)
    problem = (
        "is not a regular file"
        if not stat.S_ISREG(info.st_mode)
        else f"has {info.st_nlink - 1} other hard link(s)"
        if info.st_nlink > 1
        else None
    )
    if problem:
        os.close(fd)
        raise UnsafeFileError(f"{path} {problem}; remove it and run again")
    return fd


# --------------------------------------------------------------------------- reading
@contextlib.contextmanager
def open_input(
    path: str | Path,
    *,
    limit: int,
    what: str,
    hint: str = "",
    error: type[LrlabError] = InputFileError,
) -> Iterator[BinaryIO]:
    """Open the input file ``path`` for reading (binary), refusing what cannot be read safely.

    ``what`` names the file in messages (``"CSV file"``); ``limit`` is the largest size in
    bytes, checked when the file is opened; ``hint`` is added to the over-the-limit message
    (how to do without). The file object is seekable (``np.load`` and ``zipfile`` need it).
    ``error`` is the exception class raised (a loader's own, e.g. ``DatasetError``).

    Raises:
        InputFileError (or ``error``): missing or unreadable, not a regular file (a FIFO,
            ``/dev/zero``, a folder), or larger than ``limit``: one line naming the path
            and the limit.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise error(f"cannot read {what} {path}: {reason}; check the path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{path} is {_kind(info.st_mode)}, not a regular file; give a regular file "
                f"as the {what}"
            )
        if info.st_size > limit:
            raise error(
                f"{what} {path} is {_size_over(info.st_size, limit)}, over the limit of "
                f"{format_size(limit)}{'; ' + hint if hint else ''}"
            )
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_input(
    path: str | Path,
    *,
    limit: int,
    what: str,
    hint: str = "",
    error: type[LrlabError] = InputFileError,
) -> bytes:
    """All bytes of the input file ``path`` (see :func:`open_input` for the checks).

    For the experiment file, for example:
    ``read_input(path, limit=1 << 20, what="experiment file").decode("utf-8")``.

    >>> read_input("/dev/zero", limit=1 << 20, what="experiment file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrlab.fileio.InputFileError: /dev/zero is a character device, not a regular file; ...
    """
    with open_input(path, limit=limit, what=what, hint=hint, error=error) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise error(
            f"{what} {path} is over the limit of {format_size(limit)}{'; ' + hint if hint else ''}"
        )
    return data


def _kind(mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "a special file")


def _size_over(size: int, limit: int) -> str:
    """``size`` as :func:`format_size` does, in bytes when that rounds to the limit."""
    shown = format_size(size)
    return f"{size:,} bytes" if shown == format_size(limit) else shown


def format_size(n: int) -> str:
    """``n`` bytes in the largest unit that keeps it at least 1 (binary units).

    >>> format_size(512), format_size(1 << 20), format_size(3 * (1 << 29))
    ('512 bytes', '1 MiB', '1.5 GiB')
    """
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"
