"""Files written whole: aside, then moved into place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: the process's umask (reading it means setting it, so it is read once, here)
UMASK = os.umask(0o022)
os.umask(UMASK)


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(f)`` into a temporary file beside ``path``, then moved onto it: a process reading
    ``path`` meanwhile sees the old file or the new one, never half of one, and a write that
    fails leaves nothing. The file gets the mode of any new file (0666 less the umask), not the
    temporary file's 0600, so that others sharing the folder can read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~UMASK)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
