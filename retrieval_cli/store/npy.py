"""Arrays written as ``.npy`` through a Python file handle, a bounded chunk at a time.

The bytes equal ``np.save``'s. Numpy's own writer reports a short write on a full disk as
"N requested and M written" with no errno, and a memory-mapped write dies with SIGBUS, so every
array a build or a cache entry writes goes through here: a full disk is then an
``OSError(ENOSPC)`` naming the file, which the CLI prints as one line.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

CHUNK_BYTES = 64 << 20


def write_npy(path: Path, array: np.ndarray, dtype: np.dtype | type | None = None) -> None:
    """``np.save(path, array.astype(dtype))`` byte for byte, converting chunk by chunk (no whole
    converted copy in memory); arrays of one or more dimensions, of plain dtypes."""
    dtype = np.dtype(dtype or array.dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(array.shape)}
    rows = max(1, CHUNK_BYTES // max(1, dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))))
    try:
        with open(path, "wb") as out:
            np.lib.format.write_array_header_1_0(out, header) if _fits_1_0(header) else np.lib.format.write_array_header_2_0(out, header)
            for start in range(0, len(array), rows):
                out.write(np.ascontiguousarray(array[start:start + rows], dtype=dtype).tobytes())
    except OSError as exc:
        if exc.errno is None:  # a short write: the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def _fits_1_0(header: dict) -> bool:
    """Whether np.save would write format 1.0 for this header (it does unless the header is huge)."""
    import io

    try:
        np.lib.format.write_array_header_1_0(io.BytesIO(), header)
    except ValueError:
        return False
    return True
