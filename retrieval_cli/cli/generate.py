"""``retrieval-cli generate-queries``: pseudo training queries from the corpus (title or ICT)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from retrieval_cli.cli import console
from retrieval_cli.cli.options import (
    DatasetArg,
    DatasetOpt,
    dataset_ref,
    ApiKeyEnvOpt,
    ConcurrencyOpt,
    ForceOpt,
    LLMOpt,
    MaxFailuresOpt,
    NameOpt,
    DeviceOpt,
    QuietOpt,
    ShardOpt,
    WorkspaceOpt,
    workspace,
)

from retrieval_cli.derive.pseudo_queries import QueryGenConfig

_D = QueryGenConfig()  # the options' defaults are the config's

def generate_queries_cli(
    dataset: DatasetArg = None,
    dataset_opt: DatasetOpt = None,
    method: Annotated[str, typer.Option(help="title: the title is the query (title → body); ict: one sentence of the passage is the query (inverse cloze, Lee et al. 2019); llm: an LLM writes a query for the passage (\"Don't Retrieve, Generate\").")] = _D.method,
    split: Annotated[str, typer.Option(help="Split to put the generated queries in.")] = _D.split,
    max_queries: Annotated[Optional[int], typer.Option(help="Sample at most this many queries (with --seed).")] = None,
    min_words: Annotated[int, typer.Option(help="Skip titles / sentences shorter than this.")] = _D.min_words,
    seed: Annotated[int, typer.Option(help="Seed for sentence choice, sampling and LLM decoding.")] = _D.seed,
    hide_query: Annotated[bool, typer.Option("--hide-query/--keep-query", metavar="", help="title, ict: training positives leave out the text the query was cut from (ICT-style), so training is not string matching; chosen on Cranfield's LLM-written dev split (recipes/results/mining-defaults.md).")] = _D.hide_query,
    dev_queries: Annotated[int, typer.Option(help="Hold this many queries out as split 'dev', which train scores each epoch: choose settings there, never on evaluation queries.")] = _D.dev_queries,
    dev_method: Annotated[str, typer.Option(help="Who writes the dev queries: the same method [default], or llm (an LLM writes one query per held-out document, a dev split that copies nothing).")] = _D.dev_method,
    llm: LLMOpt = _D.llm,
    api_key_env: ApiKeyEnvOpt = _D.api_key_env,
    prompt: Annotated[str, typer.Option(help="Packaged few-shot template (query.txt, negative.txt) or a path with a {passage} placeholder.")] = _D.prompt,
    passage_words: Annotated[int, typer.Option(help="The passage is cut to this many words in the prompt.")] = _D.passage_words,
    max_tokens: Annotated[int, typer.Option(help="LLM tokens per query at most.")] = _D.sampling.max_tokens,
    temperature: Annotated[float, typer.Option(help="LLM sampling temperature.")] = _D.sampling.temperature,
    max_words: Annotated[int, typer.Option(help="Reject generated queries longer than this.")] = _D.max_words,
    concurrency: ConcurrencyOpt = _D.concurrency,
    max_failures: MaxFailuresOpt = _D.max_failures,
    device: DeviceOpt = _D.device,
    shard: ShardOpt = None,
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Make a new dataset whose SPLIT holds pseudo-queries, each with its source document as positive."""
    from retrieval_cli.derive import pseudo_queries as generation

    ws = workspace(workspace_path)
    source = ws.resolve(dataset_ref(dataset, dataset_opt), kind="datasets")
    from retrieval_cli.llm import SamplingParams
    from retrieval_cli.store import Shard

    config = generation.QueryGenConfig(
        method=method, split=split, max_queries=max_queries, min_words=min_words, seed=seed, hide_query=hide_query, dev_queries=dev_queries, dev_method=dev_method,
        llm=llm,
        api_key_env=api_key_env, prompt=prompt, passage_words=passage_words, max_words=max_words, concurrency=concurrency, max_failures=max_failures,
        sampling=SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed), device=device,
    )
    with console.progress(quiet) as bar:
        if shard is not None:
            part = generation.generate_shard(ws, source, config, Shard.parse(shard), progress=bar)
            console.err.print(
                f"shard {part.shard}: {part.units} prompts, {part.computed} completed now, the rest from the cache "
                f"({part.where}); run the command without --shard to write the dataset", highlight=False,
            )
            return
        result = generation.generate_queries(ws, source, config, name=name, force=force, progress=bar)
    console.built(result, "dataset")
    made = result.artifact.summary.get("splits", {}).get(split, {})
    console.out.print(f"{made.get('queries', 0)} {method} queries with {made.get('relevant', 0)} positives in split '{split}'", highlight=False)
    if dev_queries:
        dev = result.artifact.summary.get("splits", {}).get("dev", {}).get("queries", dev_queries)
        writer = f"{dev_method or method} " if dev_method and dev_method != method else ""
        console.out.print(f"{dev} {writer}queries held out as split 'dev' (train scores it each epoch)", highlight=False)
    copied = result.artifact.summary.get("overlap")
    if copied:
        console.out.print(
            f"{copied['verbatim']:.0%} of the queries appear word for word in their positive "
            f"(mean word overlap {copied['word_overlap']:.0%}); "
            + ("training hides them from their positives" if copied["hidden"] else "they stay in the positives (--keep-query)"),
            highlight=False,
        )
        if copied["verbatim"] >= 0.5 and not copied["hidden"]:
            console.err.print(
                "[yellow]warning:[/] training on these is partly string matching, and hard negatives mined for them "
                "are often unlabeled positives on a topical collection; see recipes/results/cross-benchmark.md",
                highlight=False,
            )
    gen = result.artifact.summary.get("llm")
    if gen:
        rejected = ", ".join(f"{k} {v}" for k, v in gen["rejected"].items()) or "none"
        console.out.print(
            f"LLM: {gen['requested']} requested, {gen['accepted']} accepted, {gen['failed']} failed, rejected: {rejected}; "
            f"{gen['cached']} from cache, {gen['tokens_per_second'] or '-'} tokens/s",
            highlight=False,
        )
