"""Model training from negatives artifacts: bi-encoders (the retrievers compared) and cross-encoder
teachers; ADORE's query encoders, trained against a frozen index's in-step negatives; their losses (bi-encoder objectives registered by name in ``objectives``), the topic-aware batch samplers and the query clusters they draw from."""

from retrieval_cli.training.adore import AdoreConfig, train_adore
from retrieval_cli.training.bi_encoder import planned_version, train_bi_encoder, training_log
from retrieval_cli.training.checkpoints import checkpoint_dir, latest_checkpoint
from retrieval_cli.training.clustering import ClusterConfig, assignments, cluster_queries, described
from retrieval_cli.training import objectives
from retrieval_cli.training.config import PRECISIONS, SAMPLERS, TOPIC_SAMPLERS, BiEncoderTrainConfig
from retrieval_cli.training.cross_encoder import CROSS_ENCODER_LOSSES, CrossEncoderTrainConfig, train_cross_encoder
from retrieval_cli.training.kinds import KINDS, config_for
from retrieval_cli.training.trainer import CHECKPOINT_MINUTES, CHECKPOINT_STEPS

__all__ = [
    "AdoreConfig", "train_adore", "CHECKPOINT_MINUTES", "CHECKPOINT_STEPS", "CROSS_ENCODER_LOSSES", "KINDS", "config_for", "PRECISIONS", "SAMPLERS", "TOPIC_SAMPLERS", "objectives",
    "BiEncoderTrainConfig", "ClusterConfig", "CrossEncoderTrainConfig", "assignments", "checkpoint_dir", "cluster_queries",
    "described", "latest_checkpoint", "planned_version", "train_bi_encoder", "train_cross_encoder", "training_log",
]
