"""The model card (``README.md``) written into every trained model folder: how the model was made
(base model, negatives and their filters, loss, sampler, seed, data, dev numbers, software, the
command), so a model shared from here says it. sentence-transformers' own card generator is not
used: it scans the training data with its own progress bars and knows nothing of the lineage.
``SentenceTransformer(folder)`` and ``CrossEncoder(folder)`` load the folder as before; the card
is not one of the files a model's fingerprint hashes."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Mapping

from retrieval_cli.store import Artifact, Versioned, software_versions

CARD = "README.md"
# Config fields whose train flag is not --field-name.
FLAGS = {"learning_rate": "--lr", "max_seq_length": "--max-length", "eval_measures": "--measure"}


def train_command(negatives: Artifact, kind: str, config: Versioned, defaults: Versioned, name: str) -> str:
    """The ``retrieval-cli train`` command that makes this model: the settings that differ from the
    defaults, plus base, loss and seed always."""
    words = ["retrieval-cli", "train", "--negatives", negatives.ref, "--kind", kind]
    given, default = config.versioned(), defaults.versioned()
    for field, value in given.items():
        if value == default.get(field) and field not in ("base", "loss", "seed"):
            continue
        flag = FLAGS.get(field, "--" + field.replace("_", "-"))
        for item in value if isinstance(value, list) else [value]:
            words += [flag, "" if item is None else str(item)]
    words += ["--name", name]
    return " ".join(shlex.quote(w) for w in words)


def _rows(mapping: Mapping[str, Any]) -> list[str]:
    return [f"| {key} | {json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value} |" for key, value in mapping.items()]


def write_model_card(
    folder: Path,
    *,
    ref: str,
    kind: str,
    base: str,
    config: Mapping[str, Any],
    negatives: Artifact,
    dataset: Artifact,
    facts: Mapping[str, Any],
    command: str,
    software: Mapping[str, str] | None = None,
) -> Path:
    """Write ``folder/README.md`` for the model artifact ``ref`` (``kind``: bi-encoder or
    cross-encoder) trained from ``negatives`` (mined on ``dataset``); ``facts`` are the training's
    own numbers (examples, steps, losses, dev metrics)."""
    library = "sentence-transformers"
    front = ["---", f"library_name: {library}", *( [f"base_model: {base}"] if base.count("/") == 1 and not Path(base).exists() else []),
             "tags:", f"- {library}", "- retrieval-cli", f"- {kind}", "---", ""]
    strategy = negatives.config.get("strategy", "?")
    lines = [
        *front,
        f"# {ref}",
        "",
        f"A {kind} fine-tuned by retrieval-cli from **{base}** on hard negatives mined by **{strategy}**"
        f" (`{negatives.ref}`) from `{dataset.ref}`.",
        "",
        "## How it was made",
        "",
        "```bash",
        command,
        "```",
        "",
        "| setting | value |",
        "|---|---|",
        *_rows({k: v for k, v in config.items() if not k.endswith("fingerprint")}),
        "",
        "## Training data",
        "",
        f"- dataset: `{dataset.ref}` ({json.dumps(dataset.summary.get('splits', dataset.summary), ensure_ascii=False)})",
        f"- negatives: `{negatives.ref}`",
        "",
        "| negatives setting (strategy and filters) | value |",
        "|---|---|",
        *_rows(negatives.config),
        "",
        "## Training",
        "",
        "| fact | value |",
        "|---|---|",
        *_rows({k: v for k, v in facts.items() if k not in ("dev", "dev_base")}),
        "",
    ]
    if facts.get("dev"):
        base_dev = facts.get("dev_base") or {}
        lines += ["## Dev metrics", "", "| measure | trained | base model |", "|---|---|---|"]
        lines += [f"| {m} | {v} | {base_dev.get(m, '')} |" for m, v in facts["dev"].items()]
        lines.append("")
    lines += [
        "## Software",
        "",
        *[f"- {package}: {version}" for package, version in software_versions(software).items()],
        "",
        "## Use",
        "",
        "```python",
        *(["from sentence_transformers import SentenceTransformer", "model = SentenceTransformer(\"PATH/TO/THIS/FOLDER\")"]
          if kind == "bi-encoder" else
          ["from sentence_transformers import CrossEncoder", "model = CrossEncoder(\"PATH/TO/THIS/FOLDER\")"]),
        "```",
        "",
        f"The lineage, step by step: `retrieval-cli artifacts lineage {ref}`.",
        "",
    ]
    path = folder / CARD
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
