"""ADORE (Zhan et al., SIGIR 2021, "Optimizing Dense Retrieval Model Training with Hard
Negatives"): only the query encoder trains, against negatives retrieved inside every step from a
frozen document index.

Each step encodes its queries with the current encoder (evaluation mode, no gradient: the vectors
a search would use), retrieves each one's top ``top_k`` by exact inner product from the index's
own vectors on the training device (``index.exact.TorchFlat``), drops its judged positives, and
trains on what is left: ADORE's pairwise loss (RankNet over every (positive, negative) pair of the
ranking, weighted by how much swapping the two changes MRR@``metric_cut``, as LambdaRank weighs
them) or MNRL (softmax over the positive, the retrieved negatives and the batch's other
positives). No document is encoded, so a step costs a query batch's forward and backward pass.

The model written is a sentence-transformers ``Router``: the trained query route and, untouched,
the document route of the model that built the index, so any sentence-transformers user loads it
and ``encode_document`` gives the index's vectors. Its manifest records the index; its document
fingerprint (``models.ModelSpec.documents``) is the index model's, so indexing a corpus with it
reuses that model's cached embeddings instead of encoding the corpus again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.errors import InputError, check_at_least
from retrieval_cli.progress import Progress, accepting_detail, silent
from retrieval_cli.store import Artifact, BuildResult, Versioned, unversioned
from retrieval_cli.store.foreign_writes import apply_umask, library_writes
from retrieval_cli.training.trainer import check_schedule, training_device

ADORE_LOSSES = ("adore", "mnrl")
STAGE = "train ADORE"

# What an ``inspect`` callback hears before each update: the step (from 1), the batch's query
# texts, each one's retrieved negatives (doc ids, best first) and the model as it retrieved them.
Inspect = Callable[[int, list[str], list[list[str]], Any], None]


@dataclass
class AdoreConfig(Versioned):
    """An ADORE run: the loss, how many negatives each step retrieves, and the schedule."""

    loss: str = "adore"  # adore: LambdaRank-weighted RankNet over the ranking; mnrl: softmax over positive, negatives, batch
    top_k: int = 200  # negatives retrieved per query per step (ADORE's neg_topk)
    metric_cut: int = 10  # adore: pairs are weighted by their change to MRR@cut; 0: unweighted RankNet
    split: str = "train"  # the index dataset's split whose queries and judgments train
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-6  # ADORE's own default: only the query side moves, and it starts trained
    warmup_ratio: float = 0.1
    max_seq_length: int = 64  # query tokens (ADORE: 64)
    seed: int = 13
    scale: float = 20.0  # a cosine model's scores are scale x cosine; a dot model's are raw
    device: str = unversioned("auto")

    def irrelevant(self) -> set[str]:
        return set() if self.loss == "adore" else {"metric_cut"}

    def check(self) -> None:
        if self.loss not in ADORE_LOSSES:
            raise InputError(f"ADORE loss must be one of {', '.join(ADORE_LOSSES)}, got {self.loss!r}", field="loss")
        check_at_least(self, 1, "top_k", "epochs", "batch_size")
        check_at_least(self, 0, "metric_cut")
        check_at_least(self, 8, "max_seq_length")
        check_schedule(self.learning_rate, self.warmup_ratio)
        if self.scale <= 0:
            raise InputError(f"scale must be > 0, got {self.scale}", field="scale")
        models.check_device(self.device)
        datasets.check_split_name(self.split)


@dataclass
class _Frozen:
    """The index's documents on the training device: ids, exact search, and their vectors by position."""

    doc_ids: list[str]
    search: Any  # index.exact.TorchFlat
    positions: dict[str, int]

    def vectors(self, positions: Any) -> Any:
        """The documents' vectors at ``positions`` (a long tensor of any shape), never with a gradient."""
        return self.search.rows(positions)


def check_index(index: Artifact) -> None:
    """ADORE searches exactly: the index must be a flat dense one."""
    if index.kind != "indexes" or index.config.get("kind") != "dense" or index.config.get("faiss") != "flat":
        raise InputError(f"ADORE retrieves exactly from a flat dense index; '{index.ref}' is not one (index --kind dense --faiss flat)")


def frozen_documents(index: Artifact, device: str) -> _Frozen:
    """A flat dense index's vectors on ``device`` (memory-mapped on the host, copied in chunks)."""
    import faiss

    from retrieval_cli.index.exact import TorchFlat

    check_index(index)
    flat = faiss.read_index(str(index.file("index.faiss")), faiss.IO_FLAG_MMAP_IFC)
    doc_ids = index.file("docids.txt").read_text(encoding="utf-8").splitlines()
    return _Frozen(doc_ids, TorchFlat(flat, device), {d: i for i, d in enumerate(doc_ids)})


def retrieve_negatives(query_vectors: Any, frozen: _Frozen, positives: list[set[int]], k: int) -> tuple[list[list[int]], list[list[int]]]:
    """Each query's top ``k`` non-positive documents by inner product (positions, best first),
    and the 1-based rank each of its positives has in the same search (0: not within reach)."""
    wanted = k + max((len(p) for p in positives), default=0)
    _, found = frozen.search.search(query_vectors.detach().float().cpu().numpy(), wanted)
    negatives, ranks = [], []
    for row, judged in zip(found, positives):
        ranking = [int(p) for p in row if p >= 0]
        negatives.append([p for p in ranking if p not in judged][:k])
        ranks.append([ranking.index(p) + 1 if p in ranking else 0 for p in sorted(judged)])
    return negatives, ranks


def pair_weights(positive_ranks: Any, negative_ranks: Any, cut: int) -> Any:
    """|1/r_pos - 1/r_neg| with 1/r = 0 past ``cut``: how much swapping the two changes MRR@cut
    (ADORE's metric weights); all ones when ``cut`` is 0."""
    import torch

    if cut == 0:
        return torch.ones(len(positive_ranks), len(negative_ranks))

    def gain(ranks: Any) -> Any:
        ranks = torch.as_tensor(ranks, dtype=torch.float32)
        return torch.where(ranks <= cut, 1.0 / ranks, torch.zeros_like(ranks))

    return (gain(positive_ranks)[:, None] - gain(negative_ranks)[None, :]).abs()


def adore_loss(positive_scores: Any, negative_scores: Any, weights: Any) -> Any:
    """One query's pairwise loss: mean over (positive i, negative j) of w_ij log(1 + e^(s_j - s_i))."""
    import torch.nn.functional as F

    margins = negative_scores[None, :] - positive_scores[:, None]
    return (weights.to(margins.device) * F.softplus(margins)).sum() / margins.numel()


def _queries(data: datasets.Dataset, split: str, frozen: _Frozen) -> list[tuple[str, set[int]]]:
    """(query text, positions of its judged positives in the index) for every query with one."""
    level = data.level(split)
    rows = []
    for qid, text in data.split_queries(split).items():
        judged = {frozen.positions[d] for d, grade in data.split_qrels(split)[qid].items() if grade >= level and d in frozen.positions}
        if judged:
            rows.append((text, judged))
    if not rows:
        raise InputError(f"dataset '{data.name}' split '{split}' has no query with a judged positive in the index's corpus")
    return rows


def _embed(model: Any, texts: list[str], prompt: str, cosine: bool, device: str) -> Any:
    """Query vectors as ``encode_query`` makes them, with the gradient (the model's mode decides dropout)."""
    import torch.nn.functional as F

    from sentence_transformers.util import batch_to_device

    features = batch_to_device(model.tokenize([prompt + t for t in texts]), device)
    vectors = model(features)["sentence_embedding"]
    return F.normalize(vectors, dim=-1) if cosine else vectors


def _step_loss(config: AdoreConfig, q: Any, frozen: _Frozen, judged: list[set[int]], negatives: list[list[int]], ranks: list[list[int]],
               scale: float) -> Any:
    """The batch's loss from its query vectors ``q`` (with gradient) and what was retrieved."""
    import torch
    import torch.nn.functional as F

    device = q.device
    if config.loss == "mnrl":  # softmax over its positive, its negatives and the batch's other positives
        width = max(len(n) for n in negatives)
        padded = torch.tensor([n + [0] * (width - len(n)) for n in negatives], device=device)
        missing = torch.tensor([[j >= len(n) for j in range(width)] for n in negatives], device=device)
        own_hard = (scale * torch.einsum("bd,bkd->bk", q, frozen.vectors(padded))).masked_fill(missing, float("-inf"))
        in_batch = scale * q @ frozen.vectors(torch.tensor([min(p) for p in judged], device=device)).T  # column i: query i's positive
        return F.cross_entropy(torch.cat([in_batch, own_hard], dim=1), torch.arange(len(judged), device=device))
    total = q.new_zeros(())
    for i, (positives, hard, hard_ranks) in enumerate(zip(judged, negatives, ranks)):
        ordered = sorted(positives)
        pos = scale * frozen.vectors(torch.tensor(ordered, device=device)) @ q[i]
        neg = scale * frozen.vectors(torch.tensor(hard, device=device)) @ q[i]
        reach = len(hard) + len(ordered) + 1  # a positive the search did not reach ranks past every retrieved document
        weights = pair_weights([r or reach for r in hard_ranks], _negative_ranks(hard_ranks, len(hard)), config.metric_cut)
        total = total + adore_loss(pos, neg, weights)
    return total / len(judged)


def reciprocal_rank(positive_ranks: list[int], cut: int = 10) -> float:
    """1 / the best rank of a query's positives within ``cut`` (0 when none is)."""
    reached = [r for r in positive_ranks if 0 < r <= cut]
    return 1.0 / min(reached) if reached else 0.0


def _negative_ranks(positive_ranks: list[int], count: int) -> list[int]:
    """The ranks of a query's first ``count`` negatives in the search that also ranked its positives."""
    taken = set(r for r in positive_ranks if r)
    ranks, rank = [], 0
    while len(ranks) < count:
        rank += 1
        if rank not in taken:
            ranks.append(rank)
    return ranks


def _router(trained: Any, document_model: Any) -> Any:
    """The asymmetric model others load: the trained query route, the index model's document route."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Router

    router = Router.for_query_document(query_modules=list(trained), document_modules=list(document_model))
    return SentenceTransformer(modules=[router], device="cpu", similarity_fn_name=trained.similarity_fn_name)


def _train(config: AdoreConfig, spec: models.ModelSpec, frozen_of: Callable[[str], _Frozen], data: datasets.Dataset, folder: Path,
           progress: Progress, inspect: Inspect | None) -> dict[str, Any]:
    """The training loop; writes the Router model to ``folder/model`` and returns the summary."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    device = training_device(config.device)
    torch.manual_seed(config.seed)
    model = models.load_sentence_transformer(spec, device=device, progress=progress)
    model.max_seq_length = config.max_seq_length
    cosine = models.similarity(model, spec.name) == "cosine"
    scale = config.scale if cosine else 1.0
    prompt = models.prompt_for(model, "query")
    frozen = frozen_of(device)
    rows = _queries(data, config.split, frozen)
    per_epoch = math.ceil(len(rows) / config.batch_size)
    total = per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    order_rng = torch.Generator().manual_seed(config.seed)
    report = accepting_detail(progress)
    step, log = 0, []
    for _ in range(config.epochs):
        order = torch.randperm(len(rows), generator=order_rng).tolist()
        for start in range(0, len(order), config.batch_size):
            batch = [rows[i] for i in order[start:start + config.batch_size]]
            texts, judged = [t for t, _ in batch], [p for _, p in batch]
            model.eval()
            with torch.no_grad():
                negatives, ranks = retrieve_negatives(_embed(model, texts, prompt, cosine, device), frozen, judged, config.top_k)
            step += 1
            if inspect is not None:
                inspect(step, texts, [[frozen.doc_ids[p] for p in n] for n in negatives], model)
            mrr = sum(reciprocal_rank(r) for r in ranks) / len(batch)  # of the ranking the step trains on, before its update
            model.train()
            loss = _step_loss(config, _embed(model, texts, prompt, cosine, device), frozen, judged, negatives, ranks, scale)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            log.append({"step": step, "loss": round(float(loss.detach()), 6), "train_mrr10": round(mrr, 4), "learning_rate": schedule.get_last_lr()[0]})
            report(STAGE, step, total, detail=f"loss {log[-1]['loss']:.4f} · batch MRR@10 {mrr:.3f}")
    model.eval()
    document_model = models.load_sentence_transformer(spec, device="cpu")
    with library_writes(folder / "model"):
        _router(model.to("cpu"), document_model).save(str(folder / "model"))
    apply_umask(folder / "model")
    with open(folder / "training_log.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(r) + "\n" for r in log)
    return {"kind": "adore", "steps": step, "queries": len(rows), "documents": len(frozen.doc_ids), "final_loss": log[-1]["loss"],
            "train_mrr10_first_step": log[0]["train_mrr10"], "train_mrr10_last_step": log[-1]["train_mrr10"], "device": device}


def train_adore(
    ws: Any, index: Artifact, config: AdoreConfig, *, name: str | None = None, force: bool = False, progress: Progress = silent,
    inspect: Inspect | None = None,
) -> BuildResult:
    """Train the query encoder of ``index``'s model against negatives retrieved from ``index``
    in every step, on the queries and judgments of its dataset's ``config.split``. ``inspect``
    (tests, analysis) hears each step's retrieved negatives before the update."""
    config.check()
    dataset = ws.inputs_of(index).get("dataset")
    if dataset is None:
        raise InputError(f"index '{index.ref}' names no dataset to take training queries from")
    check_index(index)
    base = str(index.config["model"])
    spec = models.resolve(base, ws)
    data = datasets.load(dataset, lazy_corpus=True, splits=[config.split])  # queries and judgments only: no passage is read
    data.split_qrels(config.split)  # a missing split is one line, before any work
    return ws.build(
        "models", name or f"{index.name}-adore", config, {"dataset": dataset, "index": index},
        lambda folder: {**_train(config, spec, lambda device: frozen_documents(index, device), data, folder, progress, inspect),
                        "documents_fingerprint": spec.documents},
        resolved={"base": base, "base_fingerprint": spec.fingerprint}, force=force,
    )
