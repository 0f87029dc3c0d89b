"""Which config a training kind takes, made from a command's option values: the one place that
knows the bi-encoder's and the cross-encoder's fields, the option names they share under another
field name (``max_length``, ``measure``), and which options only one kind reads. Defaults live on
the config dataclasses: an option left unset (None) takes its kind's default."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from retrieval_cli.errors import InputError
from retrieval_cli.training.adore import AdoreConfig
from retrieval_cli.training.config import BiEncoderTrainConfig
from retrieval_cli.training.cross_encoder import CrossEncoderTrainConfig

KINDS: dict[str, type] = {"bi-encoder": BiEncoderTrainConfig, "cross-encoder": CrossEncoderTrainConfig, "adore": AdoreConfig}

# An option's name where a kind's field has another: the CLI's --max-length is a bi-encoder's
# max_seq_length (recipes accept either name), --measure its dev measures.
RENAMES = {("bi-encoder", "max_length"): "max_seq_length", ("bi-encoder", "measure"): "eval_measures", ("adore", "max_length"): "max_seq_length"}


def field_of(kind: str, option: str) -> str | None:
    """The ``kind``'s config field an option sets, or None when the kind has none."""
    field = RENAMES.get((kind, option), option)
    return field if field in {f.name for f in dataclasses.fields(KINDS[kind]) if f.init} else None


def config_for(kind: str, options: Mapping[str, Any]) -> BiEncoderTrainConfig | CrossEncoderTrainConfig:
    """The ``kind``'s config from option values (option name -> value; None: the default). An
    option given that the kind does not read is an error naming it."""
    if kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}", field="kind")
    values: dict[str, Any] = {}
    foreign = []
    for option, value in options.items():
        if value is None:
            continue
        field = field_of(kind, option)
        if field is None:
            foreign.append(f"--{option.replace('_', '-')}")
        else:
            values[field] = list(value) if isinstance(value, (list, tuple)) else value
    if foreign:
        raise InputError("; ".join(
            f"{option} applies to --kind {' or '.join(k for k in KINDS if k != kind and field_of(k, option[2:].replace('-', '_')))} only"
            for option in foreign
        ))
    return KINDS[kind](**values)
