from __future__ import annotations

import json

import pytest

from retrieval_cli import data as datasets
from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli.mining import records as negatives
from retrieval_cli.report import reporting
from retrieval_cli.store import Workspace


def test_report_keeps_systems_that_describe_alike(session_ws: Workspace, tiny) -> None:
    index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    deep = evaluation.evaluate(session_ws, index=index).artifact
    shallow = evaluation.evaluate(session_ws, index=index, config=evaluation.EvaluateConfig(depth=5)).artifact
    none = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(stemmer="none")).artifact
    unstemmed = evaluation.evaluate(session_ws, index=none).artifact
    art = reporting.report(session_ws, [deep, shallow, unstemmed], name="alike").artifact
    grid = reporting.wide(reporting.load_table(art))
    assert len(grid) == 3
    labels = list(grid.index)
    assert f"BM25 k1=0.9 b=0.4 [{deep.name}@{deep.version[:6]}]" in labels
    assert "BM25 k1=0.9 b=0.4 stemmer=none" in labels
    recall = evaluation.metrics(shallow)["aggregate"]["R@100"]
    assert grid.loc[f"BM25 k1=0.9 b=0.4 [{shallow.name}@{shallow.version[:6]}]", ("tiny", "R@100")] == pytest.approx(recall)
    assert (art.file("report.md").read_text().count("\n| ")) == 3


def test_report_p_values_equal_scipy_on_the_per_query_values(session_ws: Workspace, tiny) -> None:
    from scipy import stats

    porter = evaluation.evaluate(session_ws, index=indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact).artifact
    plain = evaluation.evaluate(session_ws, index=indexing.build_bm25(session_ws, tiny, indexing.BM25Config(k1=0.2, b=0.0)).artifact).artifact
    loose = evaluation.evaluate(session_ws, index=indexing.build_dense(session_ws, tiny, indexing.DenseConfig()).artifact).artifact
    config = reporting.ReportConfig(baseline=porter.ref)
    art = reporting.report(session_ws, [plain, loose], config, name="compared").artifact
    table = reporting.load_table(art)
    base = evaluation.per_query(porter)["nDCG@10"]
    rows = table[(table["measure"] == "nDCG@10") & ~table["baseline"]]
    assert len(rows) == 2 and table["baseline"].sum() == 3  # the baseline joins the report
    raw = []
    for _, row in rows.iterrows():
        ev = session_ws.resolve(row["evaluation"])
        values = evaluation.per_query(ev)["nDCG@10"]
        queries = sorted(values)
        x, y = [values[q] for q in queries], [base[q] for q in queries]
        expected = stats.ttest_rel(x, y).pvalue
        assert row["p"] == pytest.approx(expected, rel=1e-9)
        assert row["improved"] == sum(a > b for a, b in zip(x, y)) and row["hurt"] == sum(a < b for a, b in zip(x, y))
        assert row["delta"] == pytest.approx(sum(x) / len(x) - sum(y) / len(y), abs=1e-6)
        raw.append(expected)
    # Holm over the two systems: the smaller p doubled, the larger kept (never below the first).
    low, high = sorted(raw)
    adjusted = sorted(rows["p_adjusted"])
    assert adjusted == pytest.approx([min(1, 2 * low), max(min(1, 2 * low), high)])
    assert "* = p < 0.05 by paired t-test, holm correction" in art.file("report.md").read_text()
    assert table[table["measure"] == "Judged@10"]["p"].isna().all()


def test_report_plots_are_written_embedded_and_agree_with_the_metrics(session_ws: Workspace, tiny) -> None:
    from retrieval_cli.report import plots

    bm25 = evaluation.evaluate(session_ws, index=indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact).artifact
    dense = evaluation.evaluate(session_ws, index=indexing.build_dense(session_ws, tiny, indexing.DenseConfig()).artifact).artifact
    art = reporting.report(session_ws, [dense], reporting.ReportConfig(baseline=bm25.ref), name="plotted").artifact
    pngs = sorted(p.name for p in (art.path / "plots").glob("*.png"))
    assert pngs == ["metrics.png", "query-deltas.png", "recall-at-k.png"]  # no trained model: no loss or mining plot
    assert all((art.path / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    page = art.file("report.html").read_text()
    assert page.count("<img") == 3 and "data:image/png;base64," in page and "paired t-test" in page
    assert "![metrics](plots/metrics.png)" in art.file("report.md").read_text()
    # The recall curve is ir-measures on the stored run: at k=100 it is the evaluation's R@100.
    assert plots.recall_at(session_ws, dense)[100] == pytest.approx(evaluation.metrics(dense)["aggregate"]["R@100"], abs=1e-9)
    # n = 2, sd = 1/sqrt(2): t(0.975, 1) * sd / sqrt(2) = 12.7062 * 0.5.
    assert plots.confidence_interval([0.0, 1.0]) == pytest.approx(12.706204736 * 0.5, rel=1e-6)


@pytest.mark.parametrize("config, expected", [
    ({"strategy": "bm25", "range_min": 0, "range_max": None}, "bm25"),
    ({"strategy": "bm25", "range_min": 5, "range_max": 100, "relative_margin": 0.05}, "bm25 (5,100] rel 0.05"),
    ({"strategy": "cross-encoder", "candidates": "bm25", "depth": 30, "range_max": 30, "absolute_margin": 0.1}, "cross-encoder/bm25@30 (0,30] abs 0.1"),
    ({"strategy": "bm25:3,random:1", "range_max": 100, "sampling": "random", "max_score": 9.5}, "bm25:3,random:1 (0,100] max 9.5 sampled"),
    ({"strategy": "random", "range_min": 0, "range_max": 100, "sampling": "random"}, "random"),  # no ranks: window and sampling say nothing
    ({"strategy": "random:1,llm:1", "range_min": 10, "range_max": 100}, "random:1,llm:1"),
])
def test_negatives_label_names_strategy_and_filters(config: dict, expected: str) -> None:
    assert negatives.label(config) == expected


def test_evaluating_again_with_other_measures_adds_columns_to_the_system(ws: Workspace, tiny) -> None:  # noqa: ANN001
    own = datasets.save(ws, datasets.load(tiny), "tiny", dict(tiny.config)).artifact
    porter = indexing.build_bm25(ws, own, indexing.BM25Config()).artifact
    plain = indexing.build_bm25(ws, own, indexing.BM25Config(stemmer="none")).artifact
    assert porter.name == plain.name and porter.version != plain.version
    first = evaluation.evaluate(ws, index=porter).artifact
    other = evaluation.evaluate(ws, index=plain).artifact
    more = evaluation.evaluate(ws, index=porter, config=evaluation.EvaluateConfig(measures=["RR@10", "nDCG@10"])).artifact
    chosen, left_out = reporting.every_evaluation(ws)
    assert {e.ref for e in chosen} == {first.ref, other.ref, more.ref} and left_out == []
    art = reporting.report(ws, chosen, reporting.ReportConfig(baseline=first.ref), name="all").artifact
    rows = json.loads(art.file("table.json").read_text())
    values = {(r["system"], r["measure"]): r for r in rows}
    assert set(values) == {("BM25 k1=0.9 b=0.4", m) for m in ("nDCG@10", "R@100", "Judged@10", "RR@10")} | {
        ("BM25 k1=0.9 b=0.4 stemmer=none", m) for m in ("nDCG@10", "R@100", "Judged@10")}
    merged = values[("BM25 k1=0.9 b=0.4", "RR@10")]
    assert merged["value"] == pytest.approx(evaluation.metrics(more)["aggregate"]["RR@10"]) and merged["evaluation"] == more.ref
    assert values[("BM25 k1=0.9 b=0.4", "R@100")]["evaluation"] == first.ref  # only the first measured it
    assert merged["baseline"] and values[("BM25 k1=0.9 b=0.4", "R@100")]["baseline"]  # one system, the baseline
    assert not values[("BM25 k1=0.9 b=0.4 stemmer=none", "nDCG@10")]["baseline"]
    assert set(merged["refs"].split(",")) == {first.ref, more.ref}


def test_markdown_and_html_show_the_same_cells_marks_and_bold(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    import html
    import re

    porter = evaluation.evaluate(session_ws, index=indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact).artifact
    plain = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(stemmer="none", k1=1.5)).artifact
    other = evaluation.evaluate(session_ws, index=plain).artifact
    art = reporting.report(session_ws, [porter, other], reporting.ReportConfig(baseline=porter.ref), name="formats").artifact
    markdown = art.file("report.md").read_text(encoding="utf-8")
    page = art.file("report.html").read_text(encoding="utf-8")

    def md_rows(text: str) -> list[list[str]]:
        return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]

    def html_rows(text: str) -> list[list[str]]:
        return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<t[hd]>(.*?)</t[hd]>", row)]
                for row in re.findall(r"<tr>(.*?)</tr>", text)]

    shown = html_rows(page)
    key = {label: system for label, system in (r for r in shown if len(r) == 2 and r != ["label", "system"])}  # the page's short labels
    in_tables = [[key.get(r[0], r[0]), *r[1:]] for r in shown if len(r) != 2]
    assert [[c.replace("**", "") for c in r] for r in md_rows(markdown)] == in_tables  # same text in every cell
    assert markdown.count("**") // 2 == page.count("<b>") > 0  # the same cells in bold
    text = page.split("<img", 1)[0]  # the tables, not the inlined PNG data
    for leftover in ("True", "False", "NaN", "<th></th>"):
        assert leftover not in text
    tests = [r for r in md_rows(markdown) if len(r) == 10 and r[0] != "system"]
    assert tests and all(re.fullmatch(r"[+-]\d\.\d{4}", r[3]) for r in tests)  # signed deltas
    p = float(tests[0][4])
    assert tests[0][4] == f"{p:.3g}"  # p-values to 3 significant digits
    assert f"- {reporting.load_table(art)['system'].iloc[0]}: {porter.ref}" in markdown  # the artifacts behind a row


def test_one_system_on_two_splits_of_one_dataset_is_two_columns_everywhere(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    """The field's "train once, test everywhere" (dl19 and dev of one import): every table, plot,
    CSV and test keys a value by (dataset, split, measure), and names the split."""
    import pandas as pd

    bm25 = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    flat = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(k1=0.2, b=0.0)).artifact
    runs = {(index.ref, split): evaluation.evaluate(session_ws, index=index, config=evaluation.EvaluateConfig(split=split)).artifact
            for index in (bm25, flat) for split in ("test", "train")}
    base = runs[(bm25.ref, "test")]
    art = reporting.report(session_ws, list(runs.values()), reporting.ReportConfig(baseline=base.ref),
                           baselines=[runs[(bm25.ref, "train")]], name="two-splits").artifact
    table = reporting.load_table(art)
    grid = reporting.wide(table)
    assert [c for c in grid.columns if c[1] == "nDCG@10"] == [("tiny/test", "nDCG@10"), ("tiny/train", "nDCG@10"), ("mean", "nDCG@10")]
    for (index, split), ev in runs.items():
        label = "BM25 k1=0.9 b=0.4" if index == bm25.ref else "BM25 k1=0.2 b=0.0"
        assert grid.loc[label, (f"tiny/{split}", "nDCG@10")] == pytest.approx(evaluation.metrics(ev)["aggregate"]["nDCG@10"])
    # Each split is compared with the baseline on that split, by hand.
    for split in ("test", "train"):
        row = table[(table["target"] == f"tiny/{split}") & (table["measure"] == "nDCG@10") & ~table["baseline"]].iloc[0]
        mine, theirs = (evaluation.metrics(runs[(i.ref, split)])["aggregate"]["nDCG@10"] for i in (flat, bm25))
        assert row["delta"] == pytest.approx(mine - theirs, abs=1e-9)
    mean = table[(table["target"] == "mean") & (table["measure"] == "nDCG@10") & ~table["baseline"]].iloc[0]
    assert mean["delta"] == pytest.approx(table[(table["measure"] == "nDCG@10") & ~table["baseline"] & (table["target"] != "mean")]["delta"].mean())
    assert "| system | tiny/test nDCG@10 | tiny/test R@100 |" in art.file("report.md").read_text()
    assert "on tiny/test, tiny/train" in art.summary["legend"]
    assert list(pd.read_csv(art.file("report.csv"), header=[0, 1], index_col=0).columns[:2]) == [("tiny/test", "nDCG@10"), ("tiny/test", "R@100")]
    assert {"metrics.png", "recall-at-k.png", "query-deltas.png"} <= {p.name for p in (art.path / "plots").iterdir()}


def test_a_baseline_on_another_split_is_refused_and_a_partial_one_gives_no_mean_delta(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    from retrieval_cli.errors import InputError

    bm25 = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    flat = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(k1=0.2, b=0.0)).artifact
    on_train = evaluation.evaluate(session_ws, index=bm25, config=evaluation.EvaluateConfig(split="train")).artifact
    system = evaluation.evaluate(session_ws, index=flat).artifact
    with pytest.raises(InputError, match=r"baseline '.*' is evaluated on tiny/train and no other evaluation is \(they are on tiny/test\)"):
        reporting.report(session_ws, [system], reporting.ReportConfig(baseline=on_train.ref), name="refused")
    # A baseline on one of two targets: the other target and the mean show no delta.
    system_train = evaluation.evaluate(session_ws, index=flat, config=evaluation.EvaluateConfig(split="train")).artifact
    art = reporting.report(session_ws, [system, system_train], reporting.ReportConfig(baseline=on_train.ref), name="partial").artifact
    table = reporting.load_table(art)
    others = table[~table["baseline"] & (table["measure"] == "nDCG@10")].set_index("target")
    assert others.loc["tiny/test", "delta"] != others.loc["tiny/test", "delta"]  # NaN: nothing to compare with there
    assert others.loc["tiny/train", "delta"] == pytest.approx(
        evaluation.metrics(system_train)["aggregate"]["nDCG@10"] - evaluation.metrics(on_train)["aggregate"]["nDCG@10"], abs=1e-9)
    assert others.loc["mean", "delta"] != others.loc["mean", "delta"] and others.loc["mean", "value"] == pytest.approx(
        (others.loc["tiny/test", "value"] + others.loc["tiny/train", "value"]) / 2)


def test_one_baseline_per_target_compares_two_systems_on_every_target_and_the_mean_by_hand(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    """Issue 35 item 1: a baseline per target (dataset and split), given on the CLI by repeating
    --baseline; the mean cell's delta is the mean of the per-target deltas, computed here by hand.
    Two systems as baselines of one target are refused."""
    from typer.testing import CliRunner

    from retrieval_cli.cli import app
    from retrieval_cli.errors import InputError

    bm25 = indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact
    flat = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(k1=0.2, b=0.0)).artifact
    ev = {(i.ref, split): evaluation.evaluate(session_ws, index=i, config=evaluation.EvaluateConfig(split=split)).artifact
          for i in (bm25, flat) for split in ("test", "train")}
    result = CliRunner().invoke(app, [
        "report", ev[(flat.ref, "test")].ref, ev[(flat.ref, "train")].ref, "--baseline", ev[(bm25.ref, "test")].ref,
        "--baseline", ev[(bm25.ref, "train")].ref, "-n", "per-target", "-w", str(session_ws.root)])
    assert result.exit_code == 0, result.output
    table = reporting.load_table(session_ws.resolve("reports/per-target"))
    deltas = []
    for split in ("test", "train"):
        value = lambda index: evaluation.metrics(ev[(index.ref, split)])["aggregate"]["nDCG@10"]  # noqa: E731
        deltas.append(value(flat) - value(bm25))
        row = table[(table["target"] == f"tiny/{split}") & (table["measure"] == "nDCG@10") & ~table["baseline"]].iloc[0]
        assert row["delta"] == pytest.approx(deltas[-1], abs=1e-9)
    mean = table[(table["target"] == "mean") & (table["measure"] == "nDCG@10") & ~table["baseline"]].iloc[0]
    assert mean["delta"] == pytest.approx(sum(deltas) / 2, abs=1e-9)
    stemless = evaluation.evaluate(session_ws, index=indexing.build_bm25(session_ws, tiny, indexing.BM25Config(stemmer="none")).artifact).artifact
    with pytest.raises(InputError, match="two baselines on tiny"):
        reporting.report(session_ws, [ev[(flat.ref, "test")]], reporting.ReportConfig(baseline=ev[(bm25.ref, "test")].ref),
                         baselines=[stemless], name="two-bases")


def test_the_tests_table_columns_are_declared_once_for_markdown_and_html() -> None:
    """A compared row's cells come from render.TEST_COLUMNS, in its order, in both formats."""
    import pandas as pd

    from retrieval_cli.report import render

    row = pd.Series({"system": "s", "target": "t", "measure": "nDCG@10", "delta": 0.0123, "p": 0.0312, "p_adjusted": 0.0624,
                     "significant": False, "improved": 3, "hurt": 1, "seeds_better": float("nan"), "wins": 2, "ties": 1, "losses": 0})
    assert [c.cell(row) for c in render.TEST_COLUMNS] == ["s", "t", "nDCG@10", "+0.0123", "0.0312", "0.0624", "3", "1", "", "2/1/0"]
    assert render.TESTS_HEADER == [c.header for c in render.TEST_COLUMNS]


def test_the_per_query_delta_plot_has_one_panel_per_target(session_ws: Workspace, tiny) -> None:  # noqa: ANN001
    """Issue 35 item 6: one small panel per target (3.3 inches of 110 dpi each, up to three a
    line), not every target's lines in one plot."""
    import struct

    made = []
    for split in ("test", "train"):
        for k1 in (0.9, 1.7):
            index = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(k1=k1)).artifact
            made.append(evaluation.evaluate(session_ws, index=index, config=evaluation.EvaluateConfig(split=split)).artifact)
    baselines = [made[0], made[2]]  # k1=0.9 on each split
    art = reporting.report(session_ws, made, reporting.ReportConfig(baseline=baselines[0].ref), name="panels", baselines=baselines[1:]).artifact
    header = art.file("plots/query-deltas.png").read_bytes()[:24]
    assert struct.unpack(">II", header[16:24])[0] == round(2 * 3.3 * 110)
