"""The dev-split evaluator a bi-encoder is scored with each epoch: exact search over the corpus and
the same ir-measures scoring as ``evaluate``, so dev numbers and test numbers mean the same."""

from __future__ import annotations

from typing import Any

from retrieval_cli import data as datasets
from retrieval_cli import models
from retrieval_cli.evaluate import measures as evaluation
from retrieval_cli.index import encode_texts
from retrieval_cli.progress import Progress
from retrieval_cli.training.config import BiEncoderTrainConfig


def dev_corpus(data: datasets.Dataset, split: str, hidden: bool) -> tuple[list[str], list[str]]:
    """(document ids, texts) the dev split searches: with ``hidden``, each dev query's positives
    without that query's text."""
    texts = {d: data.doc_text(d) for d in data.corpus}
    if hidden:
        queries = data.split_queries(split)
        for qid, judged in data.split_qrels(split).items():
            for d in judged:
                if d in texts and qid in queries:
                    texts[d] = datasets.without_query(texts[d], queries[qid])
    return list(texts), list(texts.values())


def dev_evaluator(data: datasets.Dataset, config: BiEncoderTrainConfig, progress: Progress, hidden: bool = False) -> Any:
    """An evaluator scoring the model on the dev split with ir-measures (as ``evaluate`` does).

    ``hidden``: the dev queries were cut from their positives (held-out pseudo-queries), so those
    documents are searched without the query's text, as training saw them; otherwise finding a
    title inside its own document would be all the dev split measured."""
    import faiss
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    queries = data.split_queries(config.eval_split)
    qrels = data.split_qrels(config.eval_split)
    doc_ids, doc_texts = dev_corpus(data, config.eval_split, hidden)
    measures = evaluation.resolve_measures(config.eval_measures, data.level(config.eval_split))
    depth = 100

    class DevEvaluator(SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.primary_metric = config.eval_measures[0]

        def __call__(self, model, output_path=None, epoch=-1, steps=-1):  # noqa: ANN001, ANN204
            qids = list(queries)
            # As the trained model will be indexed and searched: its prompts, its similarity.
            q = encode_texts(model, [queries[i] for i in qids], 64, "dev: encode queries", progress,
                             prompt=models.prompt_for(model, "query", config.query_prompt), role="query")
            d = encode_texts(model, doc_texts, 64, "dev: encode corpus", progress,
                             prompt=models.prompt_for(model, "document", config.document_prompt))
            index = faiss.IndexFlatIP(d.shape[1])
            index.add(d)
            scores, found = index.search(q, min(depth, len(doc_ids)))
            run = {qid: [(doc_ids[j], float(s)) for j, s in zip(found[i], scores[i]) if j >= 0] for i, qid in enumerate(qids)}
            aggregate, _ = evaluation.score_run(run, qrels, measures)
            return {k: round(v, 5) for k, v in aggregate.items()}

    return DevEvaluator()
