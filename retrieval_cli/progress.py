"""How library code reports progress without printing: a callback the caller owns.

Library functions take ``progress: Progress`` and call ``progress(stage, done, total)``;
``total`` is None when unknown. Long loops may add ``detail=`` (training: loss and steps/s);
callbacks accept and may ignore it. The CLI passes a rich-backed implementation, Python callers
pass nothing (silent) or their own function.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int | None, *, detail: str = "") -> None: ...


def silent(stage: str, done: int, total: int | None, *, detail: str = "") -> None:
    """A progress callback that ignores everything."""


def accepting_detail(progress: Progress) -> Progress:
    """``progress`` itself if it takes ``detail=``, else a wrapper dropping it (three-argument callbacks)."""
    import inspect

    try:
        parameters = inspect.signature(progress).parameters.values()
    except (TypeError, ValueError):
        return progress
    if any(p.name == "detail" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return progress

    def without_detail(stage: str, done: int, total: int | None, *, detail: str = "") -> None:
        progress(stage, done, total)  # type: ignore[call-arg]

    return without_detail
