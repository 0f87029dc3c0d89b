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
