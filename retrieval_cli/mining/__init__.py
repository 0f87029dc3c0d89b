"""Hard-negative mining: the config, the filters, the scorers, the statistics, LLM-written
negatives, the chunked and resumable run, and the negatives artifact's records and exports."""

from retrieval_cli.mining.config import (
    DEFAULT_NEGATIVES,
    FILTERS,
    FIRST_STAGES,
    SAMPLINGS,
    STRATEGIES,
    MiningConfig,
    parse_strategy,
)
from retrieval_cli.mining.filters import (
    Candidate,
    QueryContext,
    Selection,
    random_candidates,
    relative_threshold,
    select,
)
from retrieval_cli.mining.run import (
    EVALUATION_SPLITS,
    check_split,
    mine_negatives,
    mine_shard,
    planned_version,
    split_warnings,
)

__all__ = [
    "DEFAULT_NEGATIVES", "EVALUATION_SPLITS", "FILTERS", "check_split", "split_warnings", "FIRST_STAGES", "SAMPLINGS", "STRATEGIES", "Candidate", "MiningConfig", "QueryContext",
    "Selection", "mine_negatives", "mine_shard", "parse_strategy", "planned_version", "random_candidates", "relative_threshold", "select",
]
