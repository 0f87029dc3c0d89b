"""Recipes: the DAG runs end to end, reruns reuse everything, an edit reruns only its branch."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from retrieval_cli import evaluate as evaluation
from retrieval_cli import pipeline
from retrieval_cli.cli import app
from retrieval_cli.errors import InputError
from retrieval_cli.report import reporting
from retrieval_cli.store import Workspace

RECIPE = """\
name: tp
dataset:
  synth: {documents: 120, test_queries: 8, train_queries: 12, seed: 3}
strategies:
  bm25: {strategy: bm25, num_negatives: 2, range_max: 20}
  random: {strategy: random, num_negatives: 2}
train: {loss: mnrl, batch_size: 4, max_seq_length: 40, eval_split: ""}
report: {baseline: untrained}
"""


def _recipe(tmp_path: Path, text: str = RECIPE) -> pipeline.Recipe:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return pipeline.load(path)


@pytest.mark.slow
def test_recipe_runs_reuses_and_reruns_only_the_edited_branch(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    recipe = _recipe(tmp_path)
    assert {state for _, state, _ in pipeline.status(ws, recipe)} == {"missing"}
    events: list[tuple[str, str]] = []
    made = pipeline.run(ws, recipe, on_step=lambda step, state, art: events.append((step.name, state)))
    built = [name for name, state in events if state == "built"]
    assert built == [s.name for s in pipeline.plan(recipe)]  # every step made its artifact, in order
    report = made["report"]
    table = reporting.load_table(report)
    # Baselines and one trained system per strategy, each compared with the untrained model.
    assert set(table["system"].str.split(" ").str[0]) >= {"minilm", "BM25"}
    assert table["baseline"].sum() == 3 and table["p"].notna().sum() == 4 * 2  # 4 systems x (nDCG@10, R@100)
    # The hybrid baseline fuses the two baseline runs, in that order (RRF, k = 60).
    fused = ws.inputs_of(made["evaluate:hybrid"])
    assert [fused["fuse_0"].ref, fused["fuse_1"].ref] == [made["evaluate:untrained"].ref, made["evaluate:bm25-retrieval"].ref]
    assert made["evaluate:hybrid"].config["fusion"] == "rrf" and made["evaluate:hybrid"].config["rrf_k"] == 60
    assert ws.inputs_of(ws.inputs_of(ws.inputs_of(made["evaluate:bm25"])["index"])["model"])["negatives"].ref == made["mine:bm25"].ref
    assert {state for _, state, _ in pipeline.status(ws, recipe)} == {"done"}

    events.clear()
    again = pipeline.run(ws, recipe, on_step=lambda step, state, art: events.append((step.name, state)))
    assert {state for _, state in events if state != "start"} == {"reused"}
    assert again["report"].path == report.path

    edited = _recipe(tmp_path, RECIPE.replace("random: {strategy: random, num_negatives: 2}", "random: {strategy: random, num_negatives: 1}"))
    states = {step.name: state for step, state, _ in pipeline.status(ws, edited)}
    branch = {"mine:random", "train:random", "index:model-random", "evaluate:random", "report"}
    assert {name for name, state in states.items() if state == "changed"} == branch
    # One step, as make runs it: inputs that are done come from their locks, changed ones run first.
    events.clear()
    pipeline.run(ws, edited, steps=["train:random"], on_step=lambda step, state, art: events.append((step.name, state)))
    assert [name for name, state in events if state != "start"] == ["mine:random", "train:random"]
    assert {step.name for step, state, _ in pipeline.status(ws, edited) if state == "changed"} == branch - {"mine:random", "train:random"}
    events.clear()
    pipeline.run(ws, edited, on_step=lambda step, state, art: events.append((step.name, state)))
    assert {name for name, state in events if state == "built"} == branch - {"mine:random", "train:random"}
    assert evaluation.metrics(made["evaluate:bm25"]) == evaluation.metrics(ws.resolve(made["evaluate:bm25"].ref))


@pytest.mark.parametrize("text, expected", [
    (RECIPE.replace("strategies:", "strategy:"), "unknown section 'strategy'"),
    (RECIPE.replace("num_negatives: 2, range_max", "num_negative: 2, range_max"), "strategies.bm25: unknown field 'num_negative'"),
    (RECIPE.replace("loss: mnrl", "loss: hinge"), "train: field 'loss': bi-encoder loss must be one of"),
    (RECIPE.replace("baseline: untrained", "baseline: bm25x"), "report.baseline: name untrained, bm25-retrieval, hybrid or a strategy"),
    (RECIPE.replace("  random: {", "  untrained: {"), "'untrained' names a baseline system"),
    (RECIPE.replace("synth: {", "synth: [{"), "not valid YAML"),
    (RECIPE.replace("synth:", "lucene:"), "dataset: unknown source 'lucene'"),
    (RECIPE + "cross_encoder: {negatives: dense}\n", "cross_encoder.negatives: name one of the strategies"),
    (RECIPE.replace("random: {strategy: random,", "random: {strategy: dense, model: trained:nope,"), "strategies.random.model: trained:nope names no other strategy"),
    (RECIPE.replace("random: {strategy: random,", "random: {strategy: bm25, model: trained:bm25,"), "needs a dense or hybrid strategy"),
    (RECIPE.replace("random: {strategy: random,", "random: {strategy: random, base: minilm,"), "strategies.random.base: give trained:STRATEGY"),
    ("device: gpu\n" + RECIPE, "device: give auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
])
def test_bad_recipes_name_the_file_and_section(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as info:
        _recipe(tmp_path, text)
    assert "recipe.yaml" in str(info.value)


def test_a_recipes_device_plans_anywhere_and_versions_nothing(tmp_path: Path) -> None:
    """Issue 19: one `device:` for the whole recipe (a section's own wins); planned on a CPU machine
    even for a GPU, and no step's spec (what decides reruns) changes with it."""
    here = {s.name: s for s in pipeline.plan(_recipe(tmp_path))}
    gpu = {s.name: s for s in pipeline.plan(_recipe(tmp_path, "device: cuda:1\n" + RECIPE.replace("eval_split: \"\"", "eval_split: \"\", device: cpu")))}
    assert {n: s.hash for n, s in here.items()} == {n: s.hash for n, s in gpu.items()}


def test_bad_recipe_exits_2_from_the_cli(runner, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.replace("loss: mnrl", "loss: hinge"), encoding="utf-8")
    result = runner.invoke(app, ["pipeline", "run", str(path), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "r.yaml: train:" in result.output
    assert not (tmp_path / "ws").exists()


def test_missing_input_paths_stop_a_dry_run_and_a_run_before_any_work(runner, tmp_path: Path) -> None:  # noqa: ANN001
    """Paths are relative to the recipe; a wrong one is named (field and resolved path) by --dry-run."""
    (tmp_path / "beir" / "adi").mkdir(parents=True)
    path = tmp_path / "recipes" / "r.yaml"
    path.parent.mkdir()
    text = RECIPE.replace("dataset:\n  synth: {documents: 120, test_queries: 8, train_queries: 12, seed: 3}",
                          "dataset:\n  beir: ../beir/adi\ntrain_queries: {method: title}")
    path.write_text(text + "evaluate_on:\n  far: {dataset: {beir: ../shared/data/cranfield}}\n", encoding="utf-8")
    for args in (["--dry-run"], []):
        result = runner.invoke(app, ["pipeline", "run", str(path), *args, "-w", str(tmp_path / "ws")])
        line = " ".join(result.output.split())
        assert result.exit_code == 2, result.output
        assert f"r.yaml: evaluate_on.far.dataset.beir: no such file or folder {tmp_path / 'shared' / 'data' / 'cranfield'}" in line
        assert "(paths are relative to the recipe file)" in line
        assert "state" not in result.output  # the one line, not the plan's table before it (issue 35 item 8)
    assert not (tmp_path / "ws" / "datasets").exists()  # nothing was imported


ROUNDS = """\
name: rounds
dataset:
  synth: {documents: 120, test_queries: 6, train_queries: 12, seed: 3}
strategies:
  bm25: {strategy: bm25, num_negatives: 2, range_max: 20}
  round2: {strategy: dense, model: trained:bm25, base: trained:bm25, num_negatives: 2, range_min: 1, range_max: 20, sampling: top}
train: {loss: mnrl, batch_size: 4, max_seq_length: 40, eval_split: "", seeds: [13, 14]}
report: {baseline: untrained}
"""


def test_a_round_cannot_train_the_cross_encoder_teacher(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'round2' is mined once per seed \\(a round\\)"):
        _recipe(tmp_path, ROUNDS + "cross_encoder: {negatives: round2}\n")


@pytest.mark.slow
def test_round_two_mines_with_the_round_one_model_and_starts_from_it(tmp_path: Path) -> None:
    from retrieval_cli import data as datasets
    from retrieval_cli import index as indexing
    from retrieval_cli.mining import records as negatives

    ws = Workspace(tmp_path / "ws")
    recipe = _recipe(tmp_path, ROUNDS)
    names = [s.name for s in pipeline.plan(recipe)]
    assert {"mine:round2-s13", "mine:round2-s14"} <= set(names) and "mine:round2" not in names  # one round 2 per seed
    made = pipeline.run(ws, recipe, steps=["train:round2-s13", "train:round2-s14"])
    data = datasets.load(made["dataset"])
    for seed in (13, 14):
        first, mined = made[f"train:bm25-s{seed}"], made[f"mine:round2-s{seed}"]
        assert made[f"train:round2-s{seed}"].config["base"] == first.ref  # round 2 starts where round 1 ended
        dense = ws.inputs_of(mined)["dense_index"]
        assert dense.config["model"] == first.ref
        searcher = indexing.open_searcher(ws, dense)
        round1 = {r["query_id"]: [n["doc_id"] for n in r["negatives"]] for r in negatives.read(made["mine:bm25"])}
        differ = 0
        for record in negatives.read(mined):
            qid = record["query_id"]
            hits = searcher.search({qid: data.queries[qid]}, 20)[qid]
            judged = {d for split in data.qrels.values() for d, g in split.get(qid, {}).items() if g > 0}
            # By hand, from the round-1 model's own ranking: ranks 2..20 minus judged, first two.
            expected = [(r, d) for r, (d, _) in enumerate(hits, start=1) if r > 1 and d not in judged][:2]
            assert [(n["rank"], n["doc_id"]) for n in record["negatives"]] == expected
            differ += [n["doc_id"] for n in record["negatives"]] != round1[qid]
        assert differ > 0  # round 2's negatives are not round 1's
    assert made["mine:round2-s13"].version != made["mine:round2-s14"].version  # each seed's own round 1


def test_shipped_recipes_parse() -> None:
    for path in sorted((REPO / "recipes").glob("*.yaml")):
        recipe = pipeline.load(path)
        assert pipeline.plan(recipe)[-1].name == "report"


def _make_dry_run(makefile: Path, cwd: Path) -> list[str]:
    """The steps make would run (``make -n``), in its order."""
    out = subprocess.run(["make", "-n", "-f", str(makefile)], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return [line.split("--step ")[1].split()[0] for line in out.splitlines() if "--step " in line]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_makefile_targets_are_step_locks_and_edits_rerun_only_their_branch(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    recipe = _recipe(tmp_path)
    mk = tmp_path / "tp.mk"
    mk.write_text(pipeline.makefile(ws, recipe, cli="retrieval-cli", output=mk), encoding="utf-8")
    order = _make_dry_run(mk, tmp_path)
    steps = pipeline.plan(recipe)
    assert sorted(order) == sorted(s.name for s in steps)  # every step once
    for step in steps:  # and after everything it needs
        assert all(order.index(dep) < order.index(step.name) for dep in step.deps)

    # Lock files newer than the specs: make has nothing to do (it reads only times, set here
    # explicitly so a coarse file-system clock cannot decide the test).
    folder, now = pipeline.lock_dir(ws, recipe), time.time()
    for step in steps:
        os.utime(folder / f"{pipeline.step_file(step.name)}.spec", (now - 100, now - 100))
        lock = folder / f"{pipeline.step_file(step.name)}.json"
        lock.write_text("{}", encoding="utf-8")
        os.utime(lock, (now - 50, now - 50))
    assert _make_dry_run(mk, tmp_path) == []

    # Regenerating an unchanged recipe rewrites no spec; an edit rewrites only its branch's specs.
    pipeline.makefile(ws, recipe, output=mk)
    assert _make_dry_run(mk, tmp_path) == []
    edited = _recipe(tmp_path, RECIPE.replace("random: {strategy: random, num_negatives: 2}", "random: {strategy: random, num_negatives: 1}"))
    mk.write_text(pipeline.makefile(ws, edited, output=mk), encoding="utf-8")
    assert _make_dry_run(mk, tmp_path) == ["mine:random", "train:random", "index:model-random", "evaluate:random", "report"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_a_path_make_cannot_hold_is_refused_and_a_dollar_in_an_override_stays_text(runner, tmp_path: Path) -> None:  # noqa: ANN001
    """Issue 32 item 9: make has no quoting for a space in a file name, and reads $ as a variable."""
    spaced = tmp_path / "my ws"
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    result = runner.invoke(app, ["pipeline", "makefile", str(path), "-w", str(spaced), "-o", str(tmp_path / "x.mk")])
    assert result.exit_code == 2 and "the workspace" in result.output and "holds ' ', which make cannot hold" in " ".join(result.output.split())
    assert not (tmp_path / "x.mk").exists() and not spaced.exists()
    dollar = tmp_path / "cost$HOME"
    dollar.mkdir()
    (dollar / "r.yaml").write_text(RECIPE, encoding="utf-8")
    result = runner.invoke(app, ["pipeline", "makefile", str(dollar / "r.yaml"), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "holds '$'" in result.output
    mk = tmp_path / "ok.mk"
    recipe = pipeline.load(path, pipeline.parse_overrides(["train.base=org/mini$LM"]))
    mk.write_text(pipeline.makefile(Workspace(tmp_path / "ws"), recipe, output=mk), encoding="utf-8")
    out = subprocess.run(["make", "-n", "-f", str(mk)], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "--set 'train.base=\"org/mini$LM\"'" in out  # make passed the $ through as text


def test_unknown_step_names_the_steps(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no step 'mine:dense' \\(steps: dataset, index:bm25"):
        pipeline.run(Workspace(tmp_path / "ws"), _recipe(tmp_path), steps=["mine:dense"])


def test_set_overrides_fields_and_travels_into_the_makefile(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    overrides = pipeline.parse_overrides(["name=tp2", "train.epochs=3", "train.loss=mw", "report.alpha=0.01", "dataset=elsewhere"])
    assert overrides == {"name": "tp2", "train.epochs": 3, "train.loss": "mw", "report.alpha": 0.01, "dataset": str(folder.resolve())}
    del overrides["dataset"]
    recipe = pipeline.load(path, overrides)
    steps = {s.name: s for s in pipeline.plan(recipe)}
    assert recipe.name == "tp2" and steps["train:bm25"].spec["epochs"] == 3 and steps["train:bm25"].spec["loss"] == "mw"
    assert steps["train:bm25"].hash != {s.name: s for s in pipeline.plan(pipeline.load(path))}["train:bm25"].hash
    text = pipeline.makefile(Workspace(tmp_path / "ws"), recipe)
    assert "--set train.epochs=3 --set 'train.loss=\"mw\"'" in text
    with pytest.raises(InputError, match="--set train.loss.kind: 'loss' is not a section"):
        pipeline.load(path, {"train.loss.kind": 1})
    with pytest.raises(InputError, match="expected SECTION.FIELD=VALUE"):
        pipeline.parse_overrides(["train.epochs"])


@pytest.mark.parametrize("text, expected", [
    (RECIPE.replace("name: tp", 'name: "../../probe-escape"'), r"name: invalid artifact name '\.\./\.\./probe-escape'"),
    (RECIPE.replace("name: tp", "name:"), "name: give the recipe a name"),
    (RECIPE.replace("  random: {", "  'a b': {"), r"strategies\.a b: invalid artifact name 'tp-a b'"),
    (RECIPE.replace("train: {loss: mnrl,", "train: {epochs: two, loss: mnrl,"), "train.epochs: expected an integer, got 'two'"),
    (RECIPE.replace("seed: 3}", "seed: 3, documents: lots}").replace("documents: 120, ", ""), "dataset.synth.documents: expected an integer, got 'lots'"),
    (RECIPE.replace("batch_size: 4", "batch_size: 0"), "train: field 'batch_size': batch-size must be >= 1, got 0"),
    (RECIPE + 'evaluate: {measures: "nDCG@10"}\n', "evaluate.measures: expected a list of strings, got 'nDCG@10'"),
])
def test_recipe_names_and_types_are_checked_before_anything_is_written(runner, tmp_path: Path, text: str, expected: str) -> None:  # noqa: ANN001
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    for extra in (["--dry-run"], []):
        result = runner.invoke(app, ["pipeline", "run", str(path), *extra, "-w", str(tmp_path / "deep" / "ws")])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert re.search(expected, result.output.replace("\n", " ")), result.output
    assert not (tmp_path / "deep").exists() and not (tmp_path.parent / "probe-escape").exists()


def test_a_yaml_1_1_exponent_without_a_dot_is_a_number(tmp_path: Path) -> None:
    from retrieval_cli.pipeline.recipe import config_from
    from retrieval_cli.training import BiEncoderTrainConfig

    recipe = _recipe(tmp_path, RECIPE.replace("train: {loss: mnrl,", "train: {learning_rate: 3e-5, loss: mnrl,"))
    assert recipe.sections["train"]["learning_rate"] == "3e-5"  # PyYAML (YAML 1.1) reads it as text
    config = config_from(tmp_path, "train", recipe.sections["train"], BiEncoderTrainConfig)
    assert config.learning_rate == 3e-5  # the number YAML 1.2 and every reader mean


# Started by every interpreter of a pipeline run (the runner, and the forkserver its steps' processes
# fork from): training faults (SIGSEGV) or sleeps until stopped, as RC_TEST_FAULT says; the runner
# says at exit whether it ever started a JVM.
_SITECUSTOMIZE = """
import atexit, os, signal, sys, time
how = os.environ.get("RC_TEST_FAULT")
if how:
    from retrieval_cli import training
    def faulty(*args, **kwargs):
        print("training", flush=True)
        if how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(600)
    training.train_bi_encoder = faulty
    runner = os.getpid()
    def said():
        if os.getpid() == runner and "jnius_config" in sys.modules:
            print(f"runner jvm {sys.modules['jnius_config'].vm_running}", flush=True)
    atexit.register(said)
"""

ISOLATED = RECIPE.replace("  random: {strategy: random, num_negatives: 2}\n", "")


@pytest.mark.slow
def test_a_step_killed_by_a_signal_is_one_line_and_a_rerun_resumes(tmp_path: Path) -> None:
    """Issue 32 item 2: BM25 steps (a JVM) and training (torch) never share a process; a step's
    process killed by a signal, or the runner stopped by SIGTERM, ends in one line naming the step,
    and the next run resumes with what finished."""
    path = tmp_path / "recipe.yaml"
    path.write_text(ISOLATED, encoding="utf-8")
    ws = tmp_path / "ws"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
    env = {**os.environ, "PYTHONFAULTHANDLER": "", "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    command = [sys.executable, "-m", "retrieval_cli", "pipeline", "run", str(path), "-w", str(ws), "--quiet"]
    died = subprocess.run(command, capture_output=True, text=True, env={**env, "RC_TEST_FAULT": "segv"}, cwd=tmp_path, timeout=600)
    assert died.returncode == 1, died.stderr
    line = " ".join(died.stderr.split())
    assert "error: step train:bm25 died: signal 11 (SIGSEGV); no artifact was written for it, the steps before it are kept: rerun to resume" in line
    assert "Traceback" not in died.stderr and "runner jvm True" not in died.stdout  # BM25 indexing and mining ran in their own processes
    assert not list(tmp_path.glob("hs_err_pid*"))
    recipe = pipeline.load(path)
    states = {step.name: state for step, state, _ in pipeline.status(Workspace(ws), recipe)}
    assert states["mine:bm25"] == "done" and states["train:bm25"] == "missing"

    stopped = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, "RC_TEST_FAULT": "sleep"}, cwd=tmp_path)
    assert stopped.stdout.readline().strip() == "training"  # printed by the step's own process
    stopped.send_signal(signal.SIGTERM)
    out, err = stopped.communicate(timeout=120)
    assert stopped.returncode == 143
    assert "error: step train:bm25 was stopped by SIGTERM; no artifact was written for it, the steps before it are kept: rerun to resume" in " ".join(err.split())
    assert "Traceback" not in err

    resumed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    # Each step's line and, for a built one, its time and the work left: nothing else (no leaked-semaphore warning).
    assert all(line.startswith(("step ", "  built in ")) for line in resumed.stderr.splitlines()), resumed.stderr
    assert re.search(r"step train:bm25 \(about [\d.]+ (s|min|h)\)\n  built in [\d.]+ (s|min)", resumed.stderr), resumed.stderr
    cells = [[c.strip() for c in line.split("│")] for line in resumed.stdout.splitlines() if line.startswith("│ ")]
    rows = {c[1]: c[3] for c in cells if len(c) > 4}  # the status table: step, kind, state, artifact
    assert rows["mine:bm25"] == "reused" and rows["train:bm25"] == "built" and rows["report"] == "built", resumed.stdout
    assert not list((ws / ".tmp").iterdir())  # the dead and the stopped steps left nothing half-written


TWO_SPLITS = RECIPE.replace("  bm25: {strategy: bm25, num_negatives: 2, range_max: 20}\n", "") + """\
evaluate_on:
  a: {dataset: same, split: test}
  b: {dataset: same, split: train}
"""


@pytest.mark.slow
def test_a_recipe_testing_on_two_splits_of_its_own_dataset_runs_to_its_report(tmp_path: Path) -> None:
    """Issue 32 item 1: the README's "train once, test everywhere" on two splits of one import."""
    recipe = _recipe(tmp_path, TWO_SPLITS)
    made = pipeline.run(Workspace(tmp_path / "ws"), recipe)
    table = reporting.load_table(made["report"])
    targets = set(table["target"])
    assert targets == {"tp/test", "tp/train", "mean"}, targets
    cell = table[(table["target"] == "tp/train") & (table["measure"] == "nDCG@10") & table["system"].str.startswith("tp-random")].iloc[0]
    ev = Workspace(tmp_path / "ws").resolve(cell["evaluation"])
    assert evaluation.metrics(ev)["split"] == "train" and cell["value"] == pytest.approx(evaluation.metrics(ev)["aggregate"]["nDCG@10"])
    assert cell["delta"] == cell["delta"]  # compared with the untrained model on the same split


SEEDED = RECIPE.replace('eval_split: ""}', 'eval_split: "", seeds: [13, 14]}').replace("report: {baseline: untrained}", "report: {baseline: bm25}")


@pytest.mark.slow
def test_a_seeded_strategy_can_be_the_baseline(tmp_path: Path) -> None:
    """Issue 35 item 3: `report: {baseline: bm25}` in a seeded recipe. The baseline is both seeds'
    evaluations, one row; another strategy's delta is the difference of the seed means, and its
    test pairs per-query scores averaged over each side's seeds."""
    from scipy import stats

    ws = Workspace(tmp_path / "ws")
    made = pipeline.run(ws, _recipe(tmp_path, SEEDED))
    table = reporting.load_table(made["report"])
    ndcg = table[(table["measure"] == "nDCG@10") & (table["target"] == "tp")].set_index("system")
    base = [s for s in ndcg.index if s.startswith("tp-bm25")]
    other = [s for s in ndcg.index if s.startswith("tp-random")]
    assert len(base) == len(other) == 1 and ndcg.loc[base[0], "baseline"] and ndcg.loc[base[0], "seeds"] == 2

    def per_query(strategy: str) -> dict[str, float]:
        runs = [evaluation.per_query(made[f"evaluate:{strategy}-s{seed}"])["nDCG@10"] for seed in (13, 14)]
        return {q: (runs[0][q] + runs[1][q]) / 2 for q in runs[0]}

    mine, theirs = per_query("random"), per_query("bm25")
    queries = sorted(mine)
    row = ndcg.loc[other[0]]
    assert row["delta"] == pytest.approx(sum(mine.values()) / len(mine) - sum(theirs.values()) / len(theirs), abs=1e-6)
    assert row["p"] == pytest.approx(stats.ttest_rel([mine[q] for q in queries], [theirs[q] for q in queries]).pvalue, rel=1e-6)
    assert "Baseline: tp-bm25" in made["report"].summary["legend"]


def test_a_steps_own_progress_reaches_the_runner_from_its_process(tmp_path: Path) -> None:
    """Issue 35 item 4: the running step's stages (here BM25 indexing's) are heard by the runner's
    progress callback, relayed from the step's process, beside the pipeline's own count."""
    heard: list[tuple[str, int, int | None]] = []
    recipe = _recipe(tmp_path)
    pipeline.run(Workspace(tmp_path / "ws"), recipe, steps=["index:bm25"], progress=lambda stage, done, total: heard.append((stage, done, total)))
    stages = {stage for stage, _, _ in heard}
    assert "pipeline" in stages and stages - {"pipeline"}, heard
    assert heard[-1] == ("pipeline", 2, 2)  # the dataset, then the index
