"""Bi-encoder training objectives, one module per loss, each registered by name
(``objectives.registry``): the config, the CLI, recipes and the trainer find a loss there."""

from retrieval_cli.training.objectives import cached_mnrl, focal, gist, kl_distill, mann_whitney, margin_mse, mnrl, plackett_luce, tas_b  # noqa: F401 - registers
from retrieval_cli.training.objectives.registry import OPTIONAL_FIELDS, Objective, contrast, get, names, register

__all__ = ["OPTIONAL_FIELDS", "Objective", "contrast", "get", "names", "register"]
