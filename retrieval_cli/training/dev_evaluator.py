"""The dev-split evaluator a bi-encoder is scored with each epoch: exact search over the corpus and
the same ir-measures scoring as ``evaluate``, so dev numbers and test numbers mean the same."""

from __future__ import annotations

from typing import Any

from retrieval_cli import data as datasets
from retrieval_cli.evaluate import measures as evaluation
from retrieval_cli.index import encode_texts
from retrieval_cli.progress import Progress
from retrieval_cli.training.config import BiEncoderTrainConfig


def dev_evaluator(data: datasets.Dataset, config: BiEncoderTrainConfig, progress: Progress) -> Any:
    """An evaluator scoring the model on the dev split with ir-measures (as ``evaluate`` does)."""
    import faiss
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    queries = data.split_queries(config.eval_split)
    qrels = data.split_qrels(config.eval_split)
    doc_ids = list(data.corpus)
    doc_texts = [data.doc_text(d) for d in doc_ids]
    measures = evaluation.resolve_measures(config.eval_measures, data.level(config.eval_split))
    depth = 100

    class DevEvaluator(SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.primary_metric = config.eval_measures[0]

        def __call__(self, model, output_path=None, epoch=-1, steps=-1):  # noqa: ANN001, ANN204
            qids = list(queries)
            q = encode_texts(model, [queries[i] for i in qids], 64, "dev: encode queries", progress)
            d = encode_texts(model, doc_texts, 64, "dev: encode corpus", progress)
            index = faiss.IndexFlatIP(d.shape[1])
            index.add(d)
            scores, found = index.search(q, min(depth, len(doc_ids)))
            run = {qid: [(doc_ids[j], float(s)) for j, s in zip(found[i], scores[i]) if j >= 0] for i, qid in enumerate(qids)}
            aggregate, _ = evaluation.score_run(run, qrels, measures)
            return {k: round(v, 5) for k, v in aggregate.items()}

    return DevEvaluator()
