"""Option aliases shared by every command, defined once (spaCy's cli/_util.py idea)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from retrieval_cli.artifacts import WORKSPACE_ENV, Workspace

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("--workspace", "-w", envvar=WORKSPACE_ENV, help="Artifact workspace folder \\[default: ./artifacts]."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Rebuild even if an identical artifact exists.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
NameOpt = Annotated[Optional[str], typer.Option("--name", "-n", help="Artifact name \\[default: derived from inputs].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ShardOpt = Annotated[Optional[str], typer.Option(
    "--shard", help="Do shard I/N of the work (0 <= I < N) into the workspace cache and stop; the same command "
    "without --shard assembles the shards into the artifact an unsplit run makes (same version, same bytes).",
)]

# LLM generation (generate-queries --method llm, mine-negatives --strategy llm)
LLMOpt = Annotated[str, typer.Option("--llm", help="LLM: default (packaged Gemma 3 270M GGUF, in-process), llama-cpp:PATH.gguf, or openai:MODEL@URL.")]
ApiKeyEnvOpt = Annotated[str, typer.Option(help="Environment variable holding the API key for openai: (never recorded).")]
ConcurrencyOpt = Annotated[int, typer.Option(help="Parallel requests for openai: backends.")]
MaxFailuresOpt = Annotated[float, typer.Option(help="Fail when more than this share of LLM requests fail (finished ones stay cached).")]


# Set once by the root command's --no-verify (cli/__init__.py); every workspace a command opens uses it.
VERIFY_READS = ["auto"]


def workspace(path: Path | None) -> Workspace:
    """The workspace a command works in; it says on stderr when it waits for another build."""
    from retrieval_cli.cli import console

    ws = Workspace(path) if path else Workspace()
    ws.verify_reads = VERIFY_READS[0]
    ws.on_wait = lambda message: console.err.print(f"[dim]{message}[/]", highlight=False)
    return ws


def shard_arg(text: str) -> tuple[int, int]:
    """``--shard I/N`` (0 <= I < N) as (I, N)."""
    from retrieval_cli.errors import InputError

    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must be I/N, e.g. 0/4, got {text!r}", field="shard") from None
    if not (n >= 1 and 0 <= i < n):
        raise InputError(f"--shard {text}: need 0 <= I < N", field="shard")
    return i, n
