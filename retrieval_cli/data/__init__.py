"""Datasets: the Dataset model, strict readers of BEIR and TREC-DL files, dataset artifacts,
imports, public BEIR downloads and the project's synthetic collection."""

from retrieval_cli.data.artifacts import QRELS_HEADER, content_hash, levels_config, load, save, store, write_beir
from retrieval_cli.data.corpus_file import CorpusFile
from retrieval_cli.data.dataset import (
    SELF_HITS,
    Dataset,
    check_split_name,
    drop_self_hits,
    hidden_query_splits,
    levels_record,
    split_counts,
    split_level,
    without_query,
)
from retrieval_cli.data.fetch import BEIR_MD5, BEIR_URL, BEIR_URL_ENV, fetch_beir
from retrieval_cli.data.imports import SplitFiles, import_beir, import_msmarco, import_trec_dl
from retrieval_cli.data.readers import (
    beir_files,
    read_beir,
    read_jsonl_records,
    read_lines,
    read_qrels_tsv,
    read_trec_dl,
)

__all__ = [
    "BEIR_MD5", "BEIR_URL", "BEIR_URL_ENV", "QRELS_HEADER", "CorpusFile", "Dataset", "SplitFiles", "import_msmarco", "beir_files", "check_split_name",
    "SELF_HITS", "content_hash", "drop_self_hits", "fetch_beir", "hidden_query_splits", "without_query", "levels_config", "levels_record", "split_level", "import_beir", "import_trec_dl", "load", "read_beir", "read_jsonl_records", "read_lines",
    "read_qrels_tsv", "read_trec_dl", "save", "split_counts", "store", "write_beir",
]
