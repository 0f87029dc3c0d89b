"""Bi-encoder training: every loss and sampler on the tiny synthetic set, resume, dev evaluation, DDP."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, mine
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli import models, training
from retrieval_cli.errors import InputError
from retrieval_cli.mining import MiningConfig
from retrieval_cli.store import Workspace
from retrieval_cli.training import clustering

pytestmark = pytest.mark.slow

SMALL = {"batch_size": 4, "max_seq_length": 48}


@pytest.fixture(scope="module")
def negs(session_ws: Workspace, tiny):  # noqa: ANN001, ANN201
    return mine(session_ws, tiny, MiningConfig(strategy="bm25", range_max=30, num_negatives=2, range_min=0, sampling="top")).artifact


@pytest.fixture(scope="module")
def plain(session_ws: Workspace, negs):  # noqa: ANN001, ANN201
    """MNRL at SMALL with every other default: the model three tests compare against, trained once."""
    return training.train_bi_encoder(session_ws, negs, training.BiEncoderTrainConfig(**SMALL), checkpoint_steps=0).artifact


@pytest.fixture(scope="module")
def clusters(session_ws: Workspace, tiny):  # noqa: ANN001, ANN201
    return clustering.cluster_queries(session_ws, tiny, clustering.ClusterConfig(k=3)).artifact


def _margins(ws: Workspace, model_ref: str, negs) -> float:  # noqa: ANN001
    """Mean over training queries of s(q, positive) - max s(q, hard negative)."""
    from retrieval_cli.mining import records as negatives

    model = models.load_sentence_transformer(models.resolve(model_ref, ws))
    rows = negatives.rows(ws, negs, "n-tuple")[0]
    enc = lambda texts: model.encode(texts, normalize_embeddings=True)  # noqa: E731
    q, p = enc([r["anchor"] for r in rows]), enc([r["positive"] for r in rows])
    n = np.stack([enc([r["negative_1"] for r in rows]), enc([r["negative_2"] for r in rows])], axis=1)
    return float(np.mean((q * p).sum(1) - (q[:, None, :] * n).sum(2).max(1)))


@pytest.mark.parametrize("loss, sampler", [
    ("mnrl", "no-duplicates"), ("cached-mnrl", "random"), ("gist", "no-duplicates"),
    ("margin-mse", "random"), ("tas-b", "tas-balanced"), ("mw", "tas"), ("kl-distill", "random"), ("pl-distill", "random"), ("focal", "no-duplicates"),
])
def test_each_loss_and_sampler_trains_a_loadable_model(session_ws, negs, clusters, loss, sampler) -> None:  # noqa: ANN001
    config = training.BiEncoderTrainConfig(loss=loss, sampler=sampler, **SMALL)
    art = training.train_bi_encoder(session_ws, negs, config, clusters=clusters if sampler.startswith("tas") else None).artifact
    summary = art.summary
    assert summary["kind"] == "bi-encoder" and summary["steps"] >= 1
    log = training.training_log(art)
    assert [r["step"] for r in log if "loss" in r] == list(range(1, summary["steps"] + 1))  # loss per step
    assert all(math.isfinite(r["loss"]) for r in log if "loss" in r)
    if sampler == "random":  # plain batches of the n-tuple rows
        assert summary["steps"] == math.ceil(summary["examples"] / 4)
    if sampler == "tas-balanced":  # margin-labelled triplets; one per (query, positive) each epoch
        records = [json.loads(line) for line in negs.file("negatives.jsonl").read_text().splitlines()]
        assert summary["examples"] == sum(len(r["positives"]) * len(r["negatives"]) for r in records)
        units = sum(len(r["positives"]) for r in records if r["negatives"])
        assert math.ceil(units / 4) <= summary["steps"] < math.ceil(summary["examples"] / 4)
    inputs = session_ws.inputs_of(art)
    assert inputs["negatives"].version == negs.version
    assert ("clusters" in inputs) == sampler.startswith("tas")
    assert ("guide" in art.config or "guide_fingerprint" in art.config) == (loss in ("gist", "tas-b"))
    vectors = models.load_sentence_transformer(models.resolve(art.ref, session_ws)).encode(["a query"])
    assert vectors.shape == (1, 384)


def test_training_moves_positives_above_hard_negatives(session_ws, negs) -> None:  # noqa: ANN001
    config = training.BiEncoderTrainConfig(loss="mnrl", epochs=3, learning_rate=1e-4, **SMALL)
    art = training.train_bi_encoder(session_ws, negs, config, name="tiny-mnrl-3ep").artifact
    before, after = _margins(session_ws, "minilm", negs), _margins(session_ws, art.ref, negs)
    assert after > before + 0.02, (before, after)
    assert art.summary["train_loss"] == pytest.approx(
        sum(r["loss"] for r in training.training_log(art) if "loss" in r) / art.summary["steps"], rel=1e-4)


def test_dev_evaluation_each_epoch_matches_the_evaluate_command(session_ws, negs) -> None:  # noqa: ANN001
    config = training.BiEncoderTrainConfig(loss="mnrl", epochs=2, eval_split="test", **SMALL)
    art = training.train_bi_encoder(session_ws, negs, config, name="tiny-dev").artifact
    evals = [r for r in training.training_log(art) if "eval" in r]
    assert [r["epoch"] for r in evals] == [1.0, 2.0]
    assert set(evals[-1]["eval"]) >= {"nDCG@10", "R@100"}
    index = indexing.build_dense(session_ws, session_ws.inputs_of(negs)["dataset"], indexing.DenseConfig(model=art.ref)).artifact
    scored = evaluation.evaluate(session_ws, index=index, config=evaluation.EvaluateConfig(split="test")).artifact
    # The dev evaluator searches the top 100 exactly and scores with ir-measures, like evaluate.
    assert evals[-1]["eval"]["nDCG@10"] == pytest.approx(scored.summary["metrics"]["nDCG@10"], abs=2e-3)
    assert art.summary["dev"] == evals[-1]["eval"]
    # The starting model is scored on the same split before training: the untrained model's numbers.
    start = indexing.build_dense(session_ws, session_ws.inputs_of(negs)["dataset"],
                                 indexing.DenseConfig(model="minilm", max_seq_length=SMALL["max_seq_length"])).artifact  # as trained
    untrained = evaluation.evaluate(session_ws, index=start, config=evaluation.EvaluateConfig(split="test")).artifact
    assert art.summary["dev_base"]["nDCG@10"] == pytest.approx(untrained.summary["metrics"]["nDCG@10"], abs=2e-3)


class _Stop(Exception):
    pass


def test_resume_continues_at_the_saved_step_with_the_same_losses(session_ws, negs, clusters) -> None:  # noqa: ANN001
    config = training.BiEncoderTrainConfig(loss="mnrl", sampler="tas", **SMALL)

    def stop_after_step_5(stage: str, done: int, total: int | None, *, detail: str = "") -> None:
        if stage == "train bi-encoder" and done == 5:
            raise _Stop

    with pytest.raises(_Stop):
        training.train_bi_encoder(session_ws, negs, config, clusters=clusters, name="cut", checkpoint_steps=3, progress=stop_after_step_5)
    assert not session_ws.artifacts("models") or all(a.name != "cut" for a in session_ws.artifacts("models"))
    with pytest.raises(InputError, match=r"stopped at step 3 .*without --no-resume it continues, --force starts over"):
        training.train_bi_encoder(session_ws, negs, config, clusters=clusters, name="cut", checkpoint_steps=3, resume=False)
    resumed = training.train_bi_encoder(session_ws, negs, config, clusters=clusters, name="cut", checkpoint_steps=3).artifact
    assert resumed.summary["resumed_from_step"] == 3
    # The same run uninterrupted (force: trained again, not linked from "cut", which has its version).
    whole = training.train_bi_encoder(session_ws, negs, config, clusters=clusters, name="whole", checkpoint_steps=0, force=True).artifact
    assert not whole.summary.get("resumed_from_step")
    assert resumed.summary["steps"] == whole.summary["steps"]
    a = [r["loss"] for r in training.training_log(whole) if "loss" in r]
    b = [r["loss"] for r in training.training_log(resumed) if "loss" in r]
    assert len(b) == len(a)  # every step once: the log carries over the checkpoint
    assert b == pytest.approx(a, rel=1e-3, abs=1e-5)  # same batches, same RNG: no jump after step 3
    assert not training.checkpoint_dir(session_ws, "cut", resumed.version).exists()


def test_recomputing_activations_takes_the_old_name_where_transformers_has_only_that(monkeypatch) -> None:  # noqa: ANN001
    """transformers 5.17 (a CUDA machine's) has ``gradient_checkpointing_enable`` and not yet
    ``activation_checkpointing_enable``: training on its CPU failed with an AttributeError."""
    import torch
    from transformers import BertConfig, BertModel, PreTrainedModel

    bert = BertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16))
    seen: list[object] = []
    monkeypatch.delattr(PreTrainedModel, "activation_checkpointing_enable")
    monkeypatch.setattr(PreTrainedModel, "gradient_checkpointing_enable", lambda self, kwargs=None: seen.append((self, kwargs)))
    training.bi_encoder._recompute_activations(torch.nn.Sequential(bert), "tiny-bert")
    assert seen == [(bert, {"use_reentrant": False})]


def test_gradient_checkpointing_trains_the_same_model(session_ws, negs, plain) -> None:  # noqa: ANN001
    """Issue 21: recomputing activations (dropout's random state replayed) gives the same losses and
    weights as keeping them; it only changes memory, so it does not version the model."""
    kept = plain  # activations kept: SMALL's steps are below the automatic threshold
    recomputed_cfg = training.BiEncoderTrainConfig(gradient_checkpointing=True, **SMALL)
    assert training.planned_version(session_ws, negs, recomputed_cfg) == kept.version
    recomputed = training.train_bi_encoder(session_ws, negs, recomputed_cfg, name="recomputed", checkpoint_steps=0, force=True).artifact  # its version: trained, not linked
    a = [r["loss"] for r in training.training_log(kept) if "loss" in r]
    b = [r["loss"] for r in training.training_log(recomputed) if "loss" in r]
    assert len(a) == len(b) >= 3 and b == pytest.approx(a, rel=1e-5)
    assert kept.summary["gradient_checkpointing"] is False and recomputed.summary["gradient_checkpointing"] is True
    # By default a CPU recomputes once a step holds over 8,192 tokens: the default run's 32 x 5 x 256 does.
    recomputes = training.bi_encoder.recomputes_activations
    assert recomputes(training.BiEncoderTrainConfig(), "cpu", 5) and not recomputes(training.BiEncoderTrainConfig(), "cuda", 5)
    assert not recomputes(training.BiEncoderTrainConfig(**SMALL), "cpu", 4) and not recomputes(training.BiEncoderTrainConfig(gradient_checkpointing=False), "cpu", 5)
    x = models.load_sentence_transformer(models.resolve(f"models/{kept.name}", session_ws)).encode(["a river crossing"])
    y = models.load_sentence_transformer(models.resolve(f"models/{recomputed.name}", session_ws)).encode(["a river crossing"])
    assert np.abs(x - y).max() < 1e-5


def test_options_are_checked_before_any_work(session_ws, tiny, negs, clusters) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="give --clusters"):
        training.train_bi_encoder(session_ws, negs, training.BiEncoderTrainConfig(sampler="tas"))
    with pytest.raises(InputError, match="only by the tas and tas-balanced samplers"):
        training.train_bi_encoder(session_ws, negs, training.BiEncoderTrainConfig(), clusters=clusters)
    mixed = mine(session_ws, tiny, MiningConfig(strategy="bm25:1,random:1", range_max=30, range_min=0, sampling="top")).artifact
    with pytest.raises(InputError, match="no single scorer"):
        training.train_bi_encoder(session_ws, mixed, training.BiEncoderTrainConfig(loss="margin-mse"))
    with pytest.raises(InputError, match="loss must be one of"):
        training.BiEncoderTrainConfig(loss="triplet").check()
    with pytest.raises(InputError, match="batch-size must be >= 2"):
        training.BiEncoderTrainConfig(batch_size=1).check()
    # Fields a loss does not use do not change the version.
    assert training.BiEncoderTrainConfig(guide="x", margin_bins=3).versioned() == training.BiEncoderTrainConfig().versioned()


def test_torchrun_two_cpu_processes_share_the_batches(session_ws, negs, plain) -> None:  # noqa: ANN001
    single = plain  # one process
    env = {**os.environ, "RETRIEVAL_CLI_WORKSPACE": str(session_ws.root), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "retrieval_cli", "train",
        "--negatives", negs.ref, "--batch-size", "4", "--max-length", "48", "--name", "two-procs", "-q",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote model models/two-procs") + done.stderr.count("wrote model models/two-procs") == 1
    art = session_ws.resolve("models/two-procs")
    assert art.summary["processes"] == 2
    # Each step consumes a batch per process: half the steps of one process, give or take the tail.
    assert art.summary["steps"] <= math.ceil(single.summary["steps"] / 2)
    assert json.loads(art.file("training_log.jsonl").read_text().splitlines()[0])["step"] == 1
    assert models.load_sentence_transformer(models.resolve(art.ref, session_ws)).encode(["q"]).shape == (1, 384)


def _train_command(ws: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "retrieval_cli", "train", "--negatives", "long-random", "--batch-size", "4", "--max-length", "16",
            "--eval-split", "", "-w", str(ws), "--quiet", *extra]


def _latest(ws: Path) -> tuple[Path, int] | None:
    from retrieval_cli.training import latest_checkpoint

    found = [latest_checkpoint(folder) for folder in (ws / ".cache" / "checkpoints").glob("*")]
    return max((f for f in found if f), key=lambda f: f[1], default=None)


@pytest.mark.slow
def test_a_training_killed_between_time_based_checkpoints_or_stopped_by_sigterm_resumes(tmp_path: Path) -> None:
    """Issue 35 item 2: checkpoints by time as well as by steps (a CPU run of 32 steps never reached
    500), and on SIGTERM; an interrupted run loses minutes, not the run."""
    from typer.testing import CliRunner

    from retrieval_cli.cli import app

    ws = tmp_path / "ws"
    runner = CliRunner()
    assert runner.invoke(app, ["data", "synth", "--name", "long", "--documents", "200", "--test-queries", "2", "--train-queries", "160", "-w", str(ws)]).exit_code == 0
    assert runner.invoke(app, ["mine-negatives", "long", "--strategy", "random", "--num-negatives", "1", "-w", str(ws)]).exit_code == 0
    env = {**os.environ, "PYTHONFAULTHANDLER": ""}

    def until(predicate, proc) -> None:  # noqa: ANN001
        deadline = time.monotonic() + 300
        while not predicate():
            assert proc.poll() is None and time.monotonic() < deadline, "training ended before the point the test waits for"
            time.sleep(0.05)

    # Time-based only (no step checkpoints): killed with SIGKILL once the clock has saved.
    timed = _train_command(ws, "--checkpoint-steps", "0", "--checkpoint-minutes", "0.001")
    proc = subprocess.Popen(timed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    until(lambda: _latest(ws) is not None, proc)
    proc.kill()
    proc.wait()
    saved = _latest(ws)
    assert saved is not None and saved[1] >= 1
    done = subprocess.run(timed, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (model,) = Workspace(ws).artifacts("models")
    assert model.summary["resumed_from_step"] == saved[1] and model.summary["steps"] == math.ceil(model.summary["examples"] / 4)

    # SIGTERM: a checkpoint at the step it arrives, one line, exit 143; the next run resumes there.
    shutil.rmtree(model.path.parent)
    stepwise = _train_command(ws, "--checkpoint-steps", "5", "--checkpoint-minutes", "0", "--force")
    proc = subprocess.Popen(stepwise, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    until(lambda: (_latest(ws) or (None, 0))[1] >= 5, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    stopped = _latest(ws)
    assert stopped is not None and stopped[1] >= 5
    assert Workspace(ws).artifacts("models") == []
    resumed = subprocess.run(_train_command(ws, "--checkpoint-steps", "5", "--checkpoint-minutes", "0"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    (model,) = Workspace(ws).artifacts("models")
    assert model.summary["resumed_from_step"] == stopped[1] and model.summary["steps"] == math.ceil(model.summary["examples"] / 4)


def test_the_checkpoint_clock_saves_on_time_and_saves_then_stops_when_told() -> None:
    from transformers import TrainerControl

    clock = training.trainer.checkpoint_clock(0.0)  # never by time
    control = clock.on_step_end(None, None, TrainerControl())
    assert not control.should_save and not control.should_training_stop
    clock.last -= 120
    assert not clock.on_step_end(None, None, TrainerControl()).should_save  # 0 minutes: never
    timed = training.trainer.checkpoint_clock(1.0)
    assert not timed.on_step_end(None, None, TrainerControl()).should_save
    timed.last -= 61
    assert timed.on_step_end(None, None, TrainerControl()).should_save
    timed.on_save(None, None, TrainerControl())
    assert not timed.on_step_end(None, None, TrainerControl()).should_save  # the minute starts again at the save
    clock.stop()
    control = clock.on_step_end(None, None, TrainerControl())
    assert control.should_save and control.should_training_stop and clock.stopped


def test_focal_with_mixed_negatives_trains_and_versions_its_mixing(session_ws: Workspace, negs) -> None:  # noqa: ANN001
    mixed = training.BiEncoderTrainConfig(loss="focal", mix_negatives=2, **SMALL)
    art = training.train_bi_encoder(session_ws, negs, mixed, checkpoint_steps=0).artifact
    assert all(math.isfinite(r["loss"]) for r in training.training_log(art) if "loss" in r)
    assert art.config["mix_negatives"] == 2 and "mix_negatives" not in training.BiEncoderTrainConfig(**SMALL).versioned()
