"""One config path: every option of a command that builds a config sets one of its fields, every
field has an option (or is named here as made from others, or set where it is not a CLI matter),
and an option's default is its field's (None: the field's default). Renaming a field without its
option, or typing a default twice and letting one drift, fails here."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from retrieval_cli import evaluate, mining, training
from retrieval_cli.cli import cluster, evaluate as evaluate_cli, generate, index, mine, report, train
from retrieval_cli.derive.pseudo_queries import QueryGenConfig
from retrieval_cli.index.config import BM25Config, DenseConfig
from retrieval_cli.report.config import ReportConfig
from retrieval_cli.training.clustering import ClusterConfig
from retrieval_cli.training.kinds import RENAMES, field_of

WHERE = ("dataset", "dataset_opt", "workspace_path", "name", "force", "quiet", "shard", "as_json")  # what every command may take

# command -> (configs, options that are not fields, fields that are not options, option -> field)
COMMANDS = {
    mine.mine_negatives_cli: ([mining.MiningConfig], {"index", "llm_max_tokens", "llm_temperature"}, {"llm_sampling"}, {}),
    index.index_cli: ([BM25Config, DenseConfig], {"kind"}, set(), {}),
    train.train_cli: ([training.BiEncoderTrainConfig, training.CrossEncoderTrainConfig, training.AdoreConfig],
                      {"negatives_ref", "index_ref", "kind", "clusters", "checkpoint_steps", "checkpoint_minutes", "resume"}, set(),
                      {option: field for (_, option), field in RENAMES.items()}),  # and each kind's own name: see below
    evaluate_cli.evaluate_cli: ([evaluate.EvaluateConfig], {"index", "run", "fuse"}, set(), {"measure": "measures"}),
    generate.generate_queries_cli: ([QueryGenConfig], {"max_tokens", "temperature"}, {"sampling"}, {}),
    cluster.cluster_queries_cli: ([ClusterConfig], {"show"}, set(), {}),
    report.report_cli: ([ReportConfig], {"evaluations", "all_"}, {"suites"}, {}),  # suites: a recipe's evaluate_on
}


@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda c: c.__name__)
def test_every_option_sets_a_field_and_every_field_has_an_option(command) -> None:  # noqa: ANN001
    configs, not_fields, not_options, renamed = COMMANDS[command]
    options = set(inspect.signature(command).parameters) - set(WHERE)
    fields = set().union(*({f.name for f in dataclasses.fields(c) if f.init} for c in configs))
    setting = {renamed.get(o, o) for o in options - not_fields}
    assert setting <= fields, f"options with no field: {sorted(o for o in options - not_fields if renamed.get(o, o) not in fields)}"
    if command is train.train_cli:  # an option sets the field of its name in the kind that has one (--max-length: both)
        setting |= {field for kind in training.KINDS for o in options - not_fields if (field := field_of(kind, o))}
    assert fields - not_options <= setting, f"fields with no option: {sorted(fields - not_options - setting)}"


@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda c: c.__name__)
def test_an_options_default_is_its_fields(command) -> None:  # noqa: ANN001
    configs, not_fields, _, renamed = COMMANDS[command]
    for option, parameter in inspect.signature(command).parameters.items():
        if option in not_fields or parameter.default is None or option == "fusion":  # fusion applies with --fuse alone
            continue
        for config in configs:
            field = {f.name: f for f in dataclasses.fields(config)}.get(renamed.get(option, option))
            if field is not None and field.default is not dataclasses.MISSING:
                assert parameter.default == field.default, (command.__name__, option, parameter.default, config.__name__, field.default)


def test_a_training_option_the_kind_does_not_read_is_refused_by_name() -> None:
    from retrieval_cli.errors import InputError

    with pytest.raises(InputError, match="--sampler applies to --kind bi-encoder only; --scale applies to --kind bi-encoder or adore only"):
        training.config_for("cross-encoder", {"sampler": "tas", "scale": 10.0, "epochs": 2})
    config = training.config_for("bi-encoder", {"max_length": 128, "measure": ["nDCG@10"], "epochs": None})
    assert (config.max_seq_length, config.eval_measures, config.epochs) == (128, ["nDCG@10"], training.BiEncoderTrainConfig().epochs)
    assert training.config_for("cross-encoder", {"max_length": 96}).max_length == 96
