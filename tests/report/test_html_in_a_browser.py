"""The HTML report as a real browser reads it: headless Chromium parses the same cells we wrote
and draws a page (skipped where Chromium is not installed)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from retrieval_cli import evaluate as evaluation
from retrieval_cli import index as indexing
from retrieval_cli.report import reporting
from retrieval_cli.store import Workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")
def test_chromium_reads_the_report_cells_and_draws_the_page(session_ws: Workspace, tiny, tmp_path: Path) -> None:  # noqa: ANN001
    porter = evaluation.evaluate(session_ws, index=indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact).artifact
    other = evaluation.evaluate(session_ws, index=indexing.build_bm25(session_ws, tiny, indexing.BM25Config(k1=1.6)).artifact).artifact
    art = reporting.report(session_ws, [porter, other], reporting.ReportConfig(baseline=porter.ref), name="browser").artifact
    page = art.file("report.html")
    dom = subprocess.run([CHROMIUM, *FLAGS, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    written = re.findall(r"<td>(.*?)</td>", page.read_text(encoding="utf-8"))
    parsed = re.findall(r"<td>(.*?)</td>", dom)
    assert parsed == written and len(parsed) > 10  # every cell, in order, as the browser parsed it
    assert "Artifacts behind each row" in dom and dom.count("<img") == page.read_text(encoding="utf-8").count("<img")
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, "--window-size=1100,900", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == (1100, 900)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")
@pytest.mark.parametrize("width", [800, 1200])
def test_the_page_fits_its_window_at_800_and_1200_px(session_ws: Workspace, tiny, tmp_path: Path, width: int) -> None:  # noqa: ANN001
    """Issue 35 item 6: a wide grid (eight measures, two long system names) scrolls inside its own
    box and the plots scale down, so the page itself never scrolls sideways; short labels keep the
    system column narrow and the key gives them in full."""
    measures = ["nDCG@10", "R@100", "R@1000", "RR@10", "P@10", "AP", "nDCG@100", "R@10"]
    config = evaluation.EvaluateConfig(measures=measures)
    porter = evaluation.evaluate(session_ws, index=indexing.build_bm25(session_ws, tiny, indexing.BM25Config()).artifact, config=config).artifact
    plain = indexing.build_bm25(session_ws, tiny, indexing.BM25Config(stemmer="none", k1=1.2, b=0.75)).artifact
    other = evaluation.evaluate(session_ws, index=plain, config=config).artifact
    fused = evaluation.evaluate(session_ws, fuse=[porter, other], config=config).artifact
    art = reporting.report(session_ws, [porter, other, fused], reporting.ReportConfig(baseline=porter.ref), name="wide").artifact
    probe = tmp_path / "probe.html"
    script = "<script>document.title=[document.documentElement.scrollWidth, window.innerWidth].join(' ')</script>"
    probe.write_text(art.file("report.html").read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--window-size={width},900", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    scroll, window = map(int, re.search(r"<title>(\d+) (\d+)</title>", dom).groups())
    assert window == width and scroll <= window, (scroll, window)  # no horizontal overflow of the page
    assert "RRF k=60 of BM25 k1…" in dom and "label</th><th>system" in dom  # a short label, and the key
