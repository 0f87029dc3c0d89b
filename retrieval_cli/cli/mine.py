"""``retrieval-cli mine-negatives``: hard negatives for a dataset split, as a negatives artifact."""

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
    JsonOpt,
    DeviceOpt,
    LLMOpt,
    MaxFailuresOpt,
    NameOpt,
    QuietOpt,
    SelfHitsOpt,
    ShardOpt,
    WorkspaceOpt,
    from_options,
    workspace,
)
from retrieval_cli.mining import strategies
from retrieval_cli.mining.config import MiningConfig

_D = MiningConfig()  # the library's defaults are the command's


def mine_negatives_cli(
    dataset: DatasetArg = None,
    dataset_opt: DatasetOpt = None,
    strategy: Annotated[str, typer.Option(help=strategies.help_text() + " (STAR keeps random negatives beside hard ones).")] = _D.strategy,
    split: Annotated[str, typer.Option(help="Split whose queries (and positives) are mined.")] = _D.split,
    num_negatives: Annotated[Optional[int], typer.Option(help="Negatives per query \\[default: 4, or a mixture's total].")] = None,
    range_min: Annotated[int, typer.Option(help="Skip the top RANGE_MIN ranks, the likeliest unlabeled positives (STAR/ADORE); 0 keeps them.")] = _D.range_min,
    range_max: Annotated[int, typer.Option(help="Consider ranks up to RANGE_MAX.")] = _D.range_max,
    depth: Annotated[Optional[int], typer.Option(help="First-stage candidates per query \\[default: RANGE_MAX].")] = None,
    sampling: Annotated[str, typer.Option(help="top: best-ranked survivors; random: uniform among survivors (with --seed).")] = _D.sampling,
    seed: Annotated[int, typer.Option(help="Seed for random sampling and random negatives; same seed, same bytes.")] = _D.seed,
    max_score: Annotated[Optional[float], typer.Option(help="Drop candidates scoring above this (RocketQA-style denoising).")] = None,
    absolute_margin: Annotated[Optional[float], typer.Option(help="Drop candidates scoring >= positive - M (LG-ANNA margin). M >= 0.")] = None,
    relative_margin: Annotated[Optional[float], typer.Option(help="Drop candidates scoring >= positive - R*|positive| (NV-Embed TopK-PercPos: 0.05 = 95% of the positive). R in [0, 1).")] = None,
    adaptive_margin: Annotated[Optional[float], typer.Option(help="Drop candidates scoring >= positive - K x the spread (standard deviation) of the query's own candidate scores: a per-query margin (LG-ANNA's adaptive margins). K >= 0.")] = None,
    candidates: Annotated[str, typer.Option(help="First stage the cross-encoder re-scores and SimANS draws from: bm25, dense or hybrid (both, fused by reciprocal rank).")] = _D.candidates,
    simans_a: Annotated[float, typer.Option(help="SimANS: the draw's sharpness a in exp(-a (z - b)^2), z in candidate-score spreads from the positive.")] = _D.simans_a,
    simans_b: Annotated[float, typer.Option(help="SimANS: the draw's centre b (negative: below the positive's score).")] = _D.simans_b,
    model: Annotated[str, typer.Option(help="Bi-encoder for dense candidates when no dense --index is given.")] = _D.model,
    cross_encoder: Annotated[Optional[str], typer.Option("--cross-encoder", help="Cross-encoder (models/NAME, folder or hub id): re-scores candidates for the cross-encoder strategy and gives every kept negative a teacher score (RocketQA, TAS-B).")] = None,
    index: Annotated[Optional[list[str]], typer.Option("--index", help="Index artifact to take candidates from (repeatable: one bm25, one dense) \\[default: built on demand].")] = None,
    self_hits: SelfHitsOpt = _D.self_hits,
    max_positives: Annotated[Optional[int], typer.Option(help="Use at most this many positives per query (highest grades first); the other judged-relevant documents are held out: excluded as negatives and counted in the false-negative estimate, as with MS MARCO's sparse labels.")] = None,
    llm: LLMOpt = _D.llm,
    api_key_env: ApiKeyEnvOpt = _D.api_key_env,
    llm_prompt: Annotated[str, typer.Option(help="Packaged few-shot template (query.txt, negative.txt) or a path with a {query} (and optional {positive}) placeholder.")] = _D.llm_prompt,
    llm_max_tokens: Annotated[int, typer.Option(help="LLM tokens per generated negative at most.")] = _D.llm_sampling.max_tokens,
    llm_temperature: Annotated[float, typer.Option(help="LLM sampling temperature.")] = _D.llm_sampling.temperature,
    llm_max_words: Annotated[int, typer.Option(help="Reject generated negatives longer than this many words.")] = _D.llm_max_words,
    llm_min_words: Annotated[int, typer.Option(help="Reject generated negatives shorter than this many words.")] = _D.llm_min_words,
    concurrency: ConcurrencyOpt = _D.concurrency,
    max_failures: MaxFailuresOpt = _D.max_failures,
    judge: Annotated[Optional[str], typer.Option(help="An LLM (default, llama-cpp:PATH.gguf or openai:MODEL@URL, as --llm) asked whether each kept negative answers its query, read from P(yes) vs P(no) of one token; those above --judge-threshold are dropped (counted as 'judge') \\[default: no judge].")] = None,
    judge_threshold: Annotated[float, typer.Option(help="Drop (or relabel) a negative the judge calls relevant with P(yes) above this.")] = _D.judge_threshold,
    judge_relabel: Annotated[bool, typer.Option("--judge-relabel/--judge-drop", metavar="", help="Make the negatives the judge calls relevant extra positives instead of dropping them (RLHN).")] = _D.judge_relabel,
    judge_prompt: Annotated[str, typer.Option(help="The judge's few-shot template: packaged judge.txt or a path with {query} and {passage}.")] = _D.judge_prompt,
    batch_size: Annotated[int, typer.Option(help="Cross-encoder batch size.")] = _D.batch_size,
    chunk_size: Annotated[int, typer.Option(help="Queries searched together; memory grows with chunk size x depth.")] = _D.chunk_size,
    device: DeviceOpt = _D.device,
    shard: ShardOpt = None,
    name: NameOpt = None,
    workspace_path: WorkspaceOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Mine hard negatives for every query of a split that has positives.

    Filters, each drop counted once: positive, window, max-score, absolute-, relative- and
    adaptive-margin, judged relevant (any split, by id), the query's own id, a mixture's duplicates;
    then --judge over what was kept. Scores: the cross-encoder's if any, else the first stage's.
    """
    import json

    from retrieval_cli import mining
    from retrieval_cli.index import ensure
    from retrieval_cli.llm import SamplingParams
    from retrieval_cli.store import Shard

    config = from_options(
        MiningConfig, locals(), llm_sampling=SamplingParams(max_tokens=llm_max_tokens, temperature=llm_temperature, seed=seed),
    )
    ws = workspace(workspace_path)
    data = ws.resolve(dataset_ref(dataset, dataset_opt), kind="datasets")
    mining.check_split(data, config.split)  # before any index is built for it
    with console.progress(quiet) as bar:
        given = [ws.resolve(ref, kind="indexes") for ref in index or []]
        indexes = ensure(ws, data, config.engines(), given=given, model=config.model, device=config.device, progress=bar)
        if shard is not None:
            part = mining.mine_shard(ws, data, config, Shard.parse(shard), indexes=indexes, name=name, progress=bar)
            console.shard_done(part, "queries", "assemble the negatives")
            return
        result = mining.mine_negatives(ws, data, config, indexes=indexes, name=name, force=force, progress=bar)
    console.built(result, "negatives")
    stats = result.artifact.summary
    console.warnings(stats)
    if as_json:
        console.out.print_json(json.dumps(stats))
        return
    console.out.print(stats_table(stats))


def stats_table(stats: dict) -> object:
    """The statistics a researcher reads first, as a two-column table."""
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    fn = stats["false_negative_estimate"]
    rows = [
        ("queries", f"{stats['processed']} mined, {stats['skipped_without_positives']} without positives skipped"),
        ("negatives", f"{stats['negatives']} ({', '.join(f'{k} {v}' for k, v in stats['by_strategy'].items()) or 'none'}), {stats['short_of_negatives']} queries short"),
        ("dropped", ", ".join(f"{k} {v}" for k, v in stats["dropped"].items() if v) or "none"),
        ("rank", f"mean {stats['rank']['mean']}, median {stats['rank']['median']}"),
        ("score", f"mean {stats['score']['mean']}, median {stats['score']['median']}"),
    ]
    if stats["ce_score"]["mean"] is not None:
        rows.append(("cross-encoder", f"mean {stats['ce_score']['mean']}, median {stats['ce_score']['median']}"))
    rows.append(("judged / unjudged kept", f"{stats['judged_kept']} / {stats['unjudged_kept']}"))
    if fn["rate"] is None:
        rate = "n/a (no query judged beyond its positives)"
    else:
        rate = (
            f"{fn['rate']:.2%} of the negatives kept without exclusion by judgment ({fn['judged_relevant']} of "
            f"{fn['would_keep']}); {fn['eligible_rate']:.2%} of all eligible candidates; {fn['queries']} queries"
        )
    rows.append(("est. false negatives", rate))
    if "llm" in stats:
        gen = stats["llm"]
        rejected = ", ".join(f"{k} {v}" for k, v in gen["rejected"].items()) or "none"
        rows.append(("LLM", f"{gen['accepted']} of {gen['requested']} accepted, {gen['failed']} failed, rejected: {rejected}, {gen['cached']} cached, {gen['tokens_per_second'] or '-'} tokens/s"))
    if "judge" in stats:
        j = stats["judge"]
        a = j["agreement"]
        rows.append(("LLM judge", f"{j['judged']} judged, {j['dropped']} dropped, {j['relabelled']} relabelled, {j['failed']} failed (P(yes) > {j['threshold']})"))
        if a["documents"]:
            rows.append(("judge vs qrels", f"precision {a['precision']}, recall {a['recall']} of 'relevant' over {a['documents']} judged documents"))
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    return table
