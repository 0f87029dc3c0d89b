"""The generic DAG: steps that declare their inputs and spec, a stable topological order, and spec
hashes that cover a step's recipe fragment and its inputs' hashes (weasel's idea)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from retrieval_cli.errors import InputError
from retrieval_cli.store import Artifact, BuildResult, Workspace


@dataclass
class Step:
    """One node of the DAG: what it is, what it needs, and how to make its artifact."""

    name: str
    kind: str
    spec: dict[str, Any]
    deps: list[str]
    make: Callable[..., BuildResult]  # (workspace, inputs by step name, progress=...)
    hash: str = ""
    reads: tuple[tuple[str, Path], ...] = ()  # (recipe field, path) of the files and folders it imports


def hashed(steps: list[Step]) -> list[Step]:
    """The steps (in dependency order) with their spec hashes: a step's hash covers its spec and
    its inputs' hashes, so an edit changes the hash of the step and of everything after it."""
    hashes: dict[str, str] = {}
    for step in steps:
        text = json.dumps({"spec": step.spec, "deps": [hashes[d] for d in step.deps]}, sort_keys=True, default=str)
        step.hash = hashes[step.name] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return steps


def ordered(steps: list[Step], path: Path) -> list[Step]:
    """Topological order (stable): every step after the steps it depends on."""
    by_name = {s.name: s for s in steps}
    done: list[Step] = []
    seen: set[str] = set()

    def visit(step: Step, trail: tuple[str, ...]) -> None:
        if step.name in seen:
            return
        if step.name in trail:
            raise InputError(f"{path}: steps depend on each other in a cycle: {' -> '.join(trail + (step.name,))}")
        for dep in step.deps:
            visit(by_name[dep], trail + (step.name,))
        seen.add(step.name)
        done.append(step)

    for step in steps:
        visit(step, ())
    return done
