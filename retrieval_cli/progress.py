"""How library code reports progress without printing: a callback the caller owns.

Library functions take ``progress: Progress`` and call ``progress(stage, done, total)``;
``total`` is None when unknown. The CLI passes a rich-backed implementation, Python callers
pass nothing (silent) or their own function.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int | None) -> None: ...


def silent(stage: str, done: int, total: int | None) -> None:
    """A progress callback that ignores everything."""


def track(items: Iterable[T], stage: str, total: int | None, progress: Progress) -> Iterator[T]:
    """Yield items, reporting each one to ``progress`` under ``stage``."""
    progress(stage, 0, total)
    done = 0
    for item in items:
        yield item
        done += 1
        progress(stage, done, total)
