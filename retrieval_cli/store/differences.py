"""What tells two artifacts apart: the config fields and inputs that differ (``artifacts diff``,
the ``differs`` column of ``artifacts list``), and a one-line summary of an artifact's settings
(``artifacts lineage``)."""

from __future__ import annotations

import json
from typing import Any, Mapping

from retrieval_cli.store.artifact import Artifact

# Recorded for reproducibility, not chosen by the user: left out of a settings line.
_NOISE = ("fingerprint", "content", "prompt_text", "run_file", "measures_resolved", "components")


def _flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config mappings as dotted keys (``sampling.temperature``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(a: Artifact, b: Artifact) -> list[tuple[str, Any, Any]]:
    """(field, value in a, value in b) for every config field and input that differs; inputs as
    ``input.ROLE`` with their references."""
    left = {**_flat(a.config), **{f"input.{k}": v for k, v in a.manifest.get("inputs", {}).items()}}
    right = {**_flat(b.config), **{f"input.{k}": v for k, v in b.manifest.get("inputs", {}).items()}}
    missing = object()
    rows = []
    for key in sorted(set(left) | set(right)):
        x, y = left.get(key, missing), right.get(key, missing)
        if x != y:
            rows.append((key, None if x is missing else x, None if y is missing else y))
    return rows


def settings_line(config: Mapping[str, Any], width: int = 70) -> str:
    """The config's short scalar settings as ``key=value`` pairs, cut to about ``width`` characters:
    what a reader of a lineage tree wants beside each reference."""
    parts = []
    for key, value in _flat(config).items():
        if any(n in key for n in _NOISE) or isinstance(value, (list, dict)) or value is None:
            continue
        text = json.dumps(value) if isinstance(value, str) and (" " in value or not value) else str(value)
        if len(text) > 24:
            continue
        parts.append(f"{key}={text}")
    line = " ".join(parts)
    return line if len(line) <= width else line[: width - 1].rsplit(" ", 1)[0] + " …"
