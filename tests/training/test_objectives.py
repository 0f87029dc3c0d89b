"""The registry of bi-encoder objectives: a loss is one module that registers itself, and the
config, its version, the CLI's help and the training rows read it there."""

from __future__ import annotations

import pytest

from retrieval_cli.errors import InputError
from retrieval_cli.mining import records
from retrieval_cli.training import BiEncoderTrainConfig, objectives
from retrieval_cli.training.objectives import registry


def test_every_objective_takes_rows_the_records_make_and_reads_only_known_fields() -> None:
    assert set(objectives.names()) >= {"mnrl", "cached-mnrl", "gist", "margin-mse", "tas-b", "mw", "kl-distill", "pl-distill", "focal"}
    for name in objectives.names():
        objective = objectives.get(name)
        assert objective.rows in records.FORMATS, name
        assert objective.uses <= objectives.OPTIONAL_FIELDS, name
        assert objective.teacher == objective.rows.endswith(("-scores", "-teacher")), name  # a teacher's rows carry its scores


def test_an_unknown_loss_names_the_close_matches() -> None:
    with pytest.raises(InputError, match=r"field 'loss': bi-encoder loss must be one of .*, got 'mrnl'; did you mean mnrl\?"):
        BiEncoderTrainConfig(loss="mrnl").check()


def test_a_new_objective_is_one_registration_that_every_reader_sees(monkeypatch) -> None:  # noqa: ANN001
    """What a new loss module does (register one Objective): the config accepts it, versions only
    the optional fields it reads, checks its batch size, and builds it; the CLI's help lists it."""
    built = []
    new = registry.Objective(name="test-loss", summary="a loss for this test", rows="n-tuple",
                             build=lambda model, config, similarity, guide: built.append((similarity, config.scale)) or "loss",
                             uses=frozenset({"scale"}), in_batch=True)
    monkeypatch.setitem(registry.REGISTRY.variants, new.name, new)
    config = BiEncoderTrainConfig(loss="test-loss", scale=10.0)
    config.check()
    assert "scale" in config.versioned() and not {"guide", "inbatch_weight"} & set(config.versioned())
    with pytest.raises(InputError, match="batch-size must be >= 2"):
        BiEncoderTrainConfig(loss="test-loss", batch_size=1).check()
    assert config.objective.build(None, config, "cosine", None) == "loss" and built == [("cosine", 10.0)]


def test_the_train_commands_help_lists_every_registered_loss(runner) -> None:  # noqa: ANN001
    from retrieval_cli.cli import app

    text = " ".join(runner.invoke(app, ["train", "--help"]).output.split())
    for name in objectives.names():
        assert f"{name} ({objectives.get(name).summary.split()[0]}" in text.replace("│ ", ""), name
