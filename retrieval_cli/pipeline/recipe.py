"""Recipes: a YAML file naming a dataset, how training queries are made, the mining strategies to
compare, one training budget for all of them, and how to evaluate and report. ``load`` reads and
checks one (every section, every config, the recipe's name) before any work starts."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval_cli.errors import InputError
from retrieval_cli.store import check_name

BASELINES = ("untrained", "bm25-retrieval", "hybrid")  # the baseline systems a recipe can evaluate
SECTIONS = ("name", "device", "dataset", "train_queries", "cross_encoder", "strategies", "clusters", "train", "evaluate", "evaluate_on",
            "baselines", "report")


@dataclass
class Recipe:
    """A parsed recipe: the raw sections, checked, and where it came from."""

    name: str
    path: Path
    sections: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # --set values applied to the file's


def config_from(path: Path, where: str, fragment: Any, cls: type, drop: tuple[str, ...] = ()) -> Any:
    """Build dataclass ``cls`` from a recipe fragment; unknown or mistyped fields name the place."""
    if fragment is None:
        fragment = {}
    if not isinstance(fragment, dict):
        raise InputError(f"{path}: {where}: expected a mapping, got {type(fragment).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in drop}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in fragment.items():
        if key not in fields:
            raise InputError(f"{path}: {where}: unknown field '{key}' (known: {', '.join(sorted(fields))})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):  # a nested config: sampling settings
            value = config_from(path, f"{where}.{key}", value, hint)
        value = _yaml_number(value, hint)
        if not _matches(value, hint):
            raise InputError(f"{path}: {where}.{key}: expected {_describe(hint)}, got {value!r}")
        values[key] = value
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {where}: {exc}") from None
    if hasattr(config, "check"):
        try:
            config.check()
        except InputError as exc:
            raise InputError(f"{path}: {where}: {exc}") from None
    return config


def _matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a field's annotation (the plain types configs use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)) and all(_matches(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "nothing (null)"}
    return names.get(hint, "a mapping" if dataclasses.is_dataclass(hint) or hint is dict else str(hint))


def _yaml_number(value: Any, hint: Any) -> Any:
    """PyYAML follows YAML 1.1, which reads ``2e-5`` (no dot) as text; YAML 1.2 and every reader
    of a learning rate take it as a number, so a number-typed field does too."""
    if isinstance(value, str) and not _matches(value, hint) and _matches(1.0, hint):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY.PATH=VALUE`` strings (values read as YAML) into {dotted key: value}. A value naming an
    existing file or folder is taken relative to the current directory, not the recipe's."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. train.epochs=2")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            value = text
        if isinstance(value, str) and value and Path(value).exists():
            value = str(Path(value).resolve())
        out[key.strip()] = value
    return out


def _override(raw: dict[str, Any], overrides: dict[str, Any], path: Path) -> None:
    for key, value in overrides.items():
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InputError(f"{path}: --set {key}: '{part}' is not a section")
            node = child
        node[leaf] = value


def read(path: Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe file and check its sections and name, with ``overrides`` ({"train.epochs": 2})
    applied; errors name the file and the section. ``plan.load`` also checks every config."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a recipe is a mapping of sections ({', '.join(SECTIONS)})")
    _override(raw, overrides or {}, path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise InputError(f"{path}: unknown section '{unknown[0]}' (known: {', '.join(SECTIONS)})")
    for required in ("name", "strategies"):
        if required not in raw:
            raise InputError(f"{path}: missing section '{required}'")
    if "dataset" not in raw and (raw["strategies"] or not raw.get("evaluate_on")):  # baselines alone on targets need none
        raise InputError(f"{path}: missing section 'dataset'")
    if not isinstance(raw["strategies"], dict):  # {}: baselines only (a BM25 regression)
        raise InputError(f"{path}: strategies: give named strategies (or {{}} for the baselines alone)")
    name = raw["name"]
    if not isinstance(name, str):
        raise InputError(f"{path}: name: give the recipe a name (a string), got {name!r}")
    try:  # it names lock folders and artifacts: checked before anything is written
        check_name(name)
    except InputError as exc:
        raise InputError(f"{path}: name: {exc}") from None
    return Recipe(name=name, path=path, sections=raw, overrides=dict(overrides or {}))


def baselines_of(path: Path, value: Any) -> tuple[str, ...]:
    """``baselines``: which baseline systems every target gets (all three by default); a BEIR BM25
    regression needs only ``bm25-retrieval``. The hybrid fuses the other two, so it needs both."""
    if value is None:
        return BASELINES
    if not isinstance(value, list) or not value or any(v not in BASELINES for v in value):
        raise InputError(f"{path}: baselines: give a list of {', '.join(BASELINES)}, got {value!r}")
    if "hybrid" in value and not {"untrained", "bm25-retrieval"} <= set(value):
        raise InputError(f"{path}: baselines: hybrid fuses untrained and bm25-retrieval; list both")
    return tuple(v for v in BASELINES if v in value)


def trained_ref(path: Path, label: str, key: str, value: Any, strategies: dict[str, Any]) -> str | None:
    """``trained:OTHER`` in a strategy's ``model`` or ``base``: the strategy OTHER, checked; None otherwise."""
    if not isinstance(value, str) or not value.startswith("trained:"):
        if key == "base" and value is not None:
            raise InputError(f"{path}: strategies.{label}.base: give trained:STRATEGY (the train section sets the base for all)")
        return None
    other = value.split(":", 1)[1]
    if other == label or other not in strategies:
        known = ", ".join(str(s) for s in strategies if s != label)
        raise InputError(f"{path}: strategies.{label}.{key}: trained:{other} names no other strategy (strategies: {known})")
    return other


def whole_number(path: Path, where: str, value: Any) -> int:
    """A whole number >= 0 (``train.checkpoint_steps``: a resumable checkpoint every N steps, 0 none)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"{path}: {where}: give a whole number >= 0 (0: no checkpoints), got {value!r}")
    return value


def minutes(path: Path, value: Any) -> float:
    """``train.checkpoint_minutes``: a resumable checkpoint every M minutes of training (0: none)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise InputError(f"{path}: train.checkpoint_minutes: give a number of minutes >= 0 (0: none), got {value!r}")
    return float(value)


def seeds_of(path: Path, value: Any) -> list[int]:
    """``train.seeds``: each strategy is trained once per seed, everything else equal."""
    if value is None:
        return []
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InputError(f"{path}: train.seeds: give a list of integers, e.g. [13, 14, 15], got {value!r}")
    if len(set(value)) != len(value):
        raise InputError(f"{path}: train.seeds: a seed repeats: {value}")
    return list(value)
