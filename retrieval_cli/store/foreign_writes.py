"""Files written by libraries that are not Python's file objects (safetensors, torch.save inside
the trainer's checkpoints, Lucene): their disk-full errors become the OSError every command turns
into one line, and their files get the modes the user's umask asks for."""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DISK_FULL_BYTES = 4 << 20  # a write that failed on a filesystem with less free than this ran out of space
# How the libraries word ENOSPC: safetensors' Rust error ("os error 28", StorageFull), torch.save's
# stream writer ("file write failed"), anyone's strerror.
_NO_SPACE_WORDS = ("os error 28", "StorageFull", os.strerror(errno.ENOSPC))


def disk_full(path: Path) -> bool:
    """Whether the filesystem holding ``path`` (or its nearest existing parent) is all but full."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free < DISK_FULL_BYTES


def no_space(path: Path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@contextmanager
def library_writes(path: Path) -> Iterator[None]:
    """Around a library's writes into ``path``: an error that says the disk is full (in the
    library's own words, or any write failure on a full disk) is raised as OSError(ENOSPC, path)."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:
        text = str(exc)
        if any(word in text for word in _NO_SPACE_WORDS) or ("write" in text.lower() and disk_full(path)):
            raise no_space(path) from exc
        raise


def apply_umask(folder: Path) -> None:
    """Give the files under ``folder`` the mode the process's umask asks for: safetensors writes
    ``model.safetensors`` 0600 whatever the umask, so a group workspace could not share models."""
    mask = os.umask(0)
    os.umask(mask)
    for path in [folder, *Path(folder).rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
