"""The file layer of results folders: every file written atomically, the temporaries of killed
writers cleaned up safely, and tables and figures as bytes.

A file is written under a temporary name in its own folder, ``.<name>.<host>-<pid>.<random>.tmp``,
and renamed into place, so no final name ever holds half a file. A writer killed before its rename
leaves its temporary behind; a later writer on the same machine removes it once that process no
longer runs, and never touches the temporaries of live writers or of other machines.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

SCRATCH = ".scratch."  # how the name of a scratch folder begins
TEMPORARY = re.compile(r"\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>[1-9][0-9]{0,9})\.[a-z0-9_]+\.tmp")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def svg_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()


def png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    writer = f"{_host_tag()}-{os.getpid()}"  # read by remove_stale_temporaries
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{writer}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def scratch_folder(parent: Path) -> Iterator[Path]:
    """A private folder inside ``parent`` (made if missing) for a run's spilled history; removed on exit.

    Its name is a temporary name of this process, so a later writer removes it if this process is
    killed first (:func:`remove_stale_temporaries`). ``parent`` itself is removed on exit when it
    was made here and is left empty (the run failed before writing anything).
    """
    made = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(
        tempfile.mkdtemp(dir=parent, prefix=f".scratch.{_host_tag()}-{os.getpid()}.", suffix=".tmp")
    )
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made and not any(parent.iterdir()):
            parent.rmdir()


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files that killed writers of this host left in ``folder`` (not below it).

    A temporary file of :func:`atomic_write` (or folder of :func:`scratch_folder`) is stale when the
    process named in it no longer runs: it was killed before its rename. Files of live writers, of
    other hosts (a shared folder), and every other file are left alone.

    Returns:
        The files removed.
    """
    folder, removed = Path(folder), []
    if not folder.is_dir():
        return removed
    for entry in os.scandir(folder):
        if not _stale(entry):
            continue
        if entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)  # another writer may have removed it first
        elif entry.name.startswith(SCRATCH) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            continue  # a folder with a temporary's name that qsim did not make
        removed.append(Path(entry.path))
    return removed


def _stale(entry: os.DirEntry) -> bool:
    found = TEMPORARY.fullmatch(entry.name)
    if found is None or found["host"] != _host_tag() or entry.is_symlink():
        return False
    return not _running(int(found["pid"]))


def _host_tag() -> str:
    # A pid names a process only on its own host; 8 hex digits keep the file name short.
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _running(pid: int) -> bool:
    if os.name == "nt":  # there os.kill ends the process: never guess, keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or not a pid: keep the file
        pass
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
