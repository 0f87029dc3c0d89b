"""Arrays written as ``.npy`` through a Python file handle, and read back, a bounded chunk at a time.

The bytes equal ``np.save``'s. Numpy's own writer reports a short write on a full disk as
"N requested and M written" with no errno, and a memory-mapped write dies with SIGBUS, so every
array a build or a cache entry writes goes through here: a full disk is then an
``OSError(ENOSPC)`` naming the file, which the CLI prints as one line.

``row_chunks`` reads a memory-mapped array's rows from its file by plain reads: pages touched
through a map stay in the process's resident memory until the kernel reclaims them, so a pass over
a 1.5 GB map would count 1.5 GB beside whatever is built from it.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

CHUNK_BYTES = 64 << 20


def _rows_per_chunk(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return max(1, CHUNK_BYTES // max(1, dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))))


def row_chunks(array: np.ndarray, dtype: np.dtype | type | None = None) -> Iterator[np.ndarray]:
    """The rows of ``array`` as contiguous chunks of at most ``CHUNK_BYTES``, converted to ``dtype``.
    A memory-mapped ``.npy`` (``np.load(..., mmap_mode="r")``) is read from its file by plain
    reads, so its pages never join this process's resident memory; any other array is sliced."""
    dtype = np.dtype(dtype or array.dtype)
    rows = _rows_per_chunk(array.shape, np.dtype(array.dtype))
    if not _whole_map(array):
        for start in range(0, len(array), rows):
            yield np.ascontiguousarray(array[start:start + rows], dtype=dtype)
        return
    filename = array.filename
    row_items = int(np.prod(array.shape[1:], dtype=np.int64))
    with open(filename, "rb") as source:
        source.seek(array.offset)
        for start in range(0, len(array), rows):
            count = min(rows, len(array) - start)
            chunk = np.fromfile(source, dtype=array.dtype, count=count * row_items)
            if len(chunk) != count * row_items:
                raise OSError(errno.EIO, f"{filename} ends before its {len(array)} rows", str(filename))
            yield chunk.reshape((count, *array.shape[1:])).astype(dtype, copy=False)


def _whole_map(array: np.ndarray) -> bool:
    """Whether ``array`` is a whole memory-mapped file's data (a slice of a map keeps its parent's
    filename and offset, so only an array that ends where the file does and starts at the offset
    qualifies)."""
    filename = getattr(array, "filename", None)
    if not (isinstance(array, np.memmap) and filename and array.flags.c_contiguous):
        return False
    try:
        return array.offset + array.nbytes == os.path.getsize(filename)
    except OSError:
        return False


@contextmanager
def npy_writer(path: Path, shape: tuple[int, ...], dtype: np.dtype | type) -> Iterator[Callable[[np.ndarray], None]]:
    """A ``.npy`` of ``shape`` and ``dtype`` written row chunk by row chunk: the context gives a
    function taking the next chunk (converted to ``dtype``), so a caller that reads the rows for
    something else writes them in the same pass."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    try:
        with open(path, "wb") as out:
            np.lib.format.write_array_header_1_0(out, header) if _fits_1_0(header) else np.lib.format.write_array_header_2_0(out, header)

            def write(chunk: np.ndarray) -> None:
                out.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())

            yield write
    except OSError as exc:
        if exc.errno is None:  # a short write: the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_npy(path: Path, array: np.ndarray, dtype: np.dtype | type | None = None) -> None:
    """``np.save(path, array.astype(dtype))`` byte for byte, converting chunk by chunk (no whole
    converted copy in memory, and a memory-mapped source read by plain reads); arrays of one or
    more dimensions, of plain dtypes."""
    dtype = np.dtype(dtype or array.dtype)
    with npy_writer(path, array.shape, dtype) as write:
        for chunk in row_chunks(array, dtype):
            write(chunk)


def _fits_1_0(header: dict) -> bool:
    """Whether np.save would write format 1.0 for this header (it does unless the header is huge)."""
    import io

    try:
        np.lib.format.write_array_header_1_0(io.BytesIO(), header)
    except ValueError:
        return False
    return True
