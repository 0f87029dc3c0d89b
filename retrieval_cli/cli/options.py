"""Option aliases shared by every command, defined once (spaCy's cli/_util.py idea)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer

from retrieval_cli.store import WORKSPACE_ENV, Workspace


def _open_workspace(ctx: click.Context, _param: click.Parameter, path: str | None) -> "Workspace":
    """--workspace's callback: the command gets the Workspace itself, opened with the root
    command's State (found in the Typer context). An empty value (``-w ""``, which a Path would
    read as the current folder) and a file are refused in one line."""
    from retrieval_cli.errors import InputError

    if path is not None and not path.strip():
        raise InputError("the workspace is empty: name a folder ('.' for the current one)", field="workspace")
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise InputError(f"workspace {path} is a file, not a folder", field="workspace")
    return workspace(Path(path) if path is not None else None, ctx)


def existing(ws: "Workspace") -> "Workspace":
    """A workspace a command only reads (listing, gc): one that does not exist is named, not
    listed as empty (a mistyped -w would otherwise look like a workspace with nothing in it)."""
    from retrieval_cli.errors import InputError

    if not ws.root.is_dir():
        raise InputError(f"no workspace at {ws.root} (nothing was ever written there; -w or {WORKSPACE_ENV} names it)", field="workspace")
    return ws


WorkspaceOpt = Annotated[
    Optional[str],
    typer.Option(
        "--workspace", "-w", envvar=WORKSPACE_ENV, callback=_open_workspace,
        help="Artifact workspace folder \\[default: ./artifacts].",
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", metavar="", help="Rebuild even if an identical artifact exists.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="No progress bars.")]
NameOpt = Annotated[Optional[str], typer.Option("--name", "-n", help="Artifact name \\[default: derived from inputs].")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print JSON instead of a table.")]
ShardOpt = Annotated[Optional[str], typer.Option(
    "--shard", help="Do shard I/N of the work (0 <= I < N) into the workspace cache and stop; the same command "
    "without --shard assembles the shards into the artifact an unsplit run makes (same version, same bytes).",
)]

# LLM generation (generate-queries --method llm, mine-negatives --strategy llm)
LLMOpt = Annotated[str, typer.Option("--llm", help="LLM: default (packaged Gemma 3 270M GGUF, in-process), llama-cpp:PATH.gguf, or openai:MODEL@URL.")]
ApiKeyEnvOpt = Annotated[str, typer.Option(help="Environment variable holding the API key for openai: (never recorded).")]
ConcurrencyOpt = Annotated[int, typer.Option(help="Parallel requests for openai: backends.")]
SelfHitsOpt = Annotated[str, typer.Option(help="Documents whose id equals the query id, in mining and evaluation alike: drop, keep, or auto (drop when queries are corpus documents, as BEIR does for ArguAna/Quora).")]
# Where models run, and the prompts put before their inputs (every command that loads a model)
DeviceOpt = Annotated[str, typer.Option(help="Where models run: auto (a CUDA GPU when present, then MPS, else CPU), cpu, cuda, cuda:N or mps.")]
PrecisionOpt = Annotated[str, typer.Option(help="Inference precision: fp32, or fp16 / bf16 on a GPU (faster; vectors move by ~1e-3, so it versions the index).")]
QueryPromptOpt = Annotated[str, typer.Option(help="Text put before each query (e.g. 'query: ' for E5) \\[default: the model's own query prompt, if any].")]
DocumentPromptOpt = Annotated[str, typer.Option(help="Text put before each document (e.g. 'passage: ') \\[default: the model's own document prompt, if any].")]
MaxFailuresOpt = Annotated[float, typer.Option(help="Fail when more than this share of LLM requests fail (finished ones stay cached).")]


@dataclass
class State:
    """What the root command's options set for every subcommand (kept in the Typer context)."""

    verify_reads: str = "auto"  # --no-verify: "none"


def workspace(path: "Path | Workspace | None", ctx: click.Context | None = None) -> Workspace:
    """The workspace a command works in (``--workspace`` already made it one); it says on stderr
    when it waits for another build."""
    from retrieval_cli.cli import console

    if isinstance(path, Workspace):
        return path
    found = ctx.find_object(State) if ctx is not None else None
    return Workspace(
        path or Workspace().root, verify_reads=(found or State()).verify_reads,
        on_wait=lambda message: console.err.print(f"[dim]{message}[/]", highlight=False),
    )


DatasetArg = Annotated[Optional[str], typer.Argument(help="Dataset reference (datasets/NAME\\[@VERSION] or NAME), or give it as -d.", show_default=False)]
DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", "-d", help="Dataset reference: the same as the argument (every command takes -d).")]


def dataset_ref(argument: str | None, option: str | None) -> str:
    """The dataset a command works on, given as its argument or as -d/--dataset (once)."""
    from retrieval_cli.errors import InputError

    if argument and option and argument != option:
        raise InputError(f"give the dataset once: the argument says '{argument}', --dataset '{option}'", field="dataset")
    ref = argument or option
    if not ref:
        raise InputError("which dataset? give it as the argument or as -d/--dataset (datasets/NAME or NAME)", field="dataset")
    return ref


def from_options(cls: type, values: dict[str, Any], **fixed: Any) -> Any:
    """A library config dataclass from a command's option values: options left unset (None) take
    the dataclass's own default, so the library alone says what the defaults are."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    given = {k: v for k, v in values.items() if k in names and v is not None}
    return cls(**{**given, **fixed})
