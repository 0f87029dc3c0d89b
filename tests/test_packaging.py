"""The package as users install it: a built wheel, not the editable checkout, runs the CLI and finds
its default prompts (package data)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.slow
def test_a_built_wheel_runs_the_cli_and_loads_the_default_prompt(tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)]
    subprocess.run(build, check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = wheels.glob("retrieval_cli-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, text=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import retrieval_cli, retrieval_cli.llm as llm\n"
        "print(retrieval_cli.__file__)\n"
        "print(llm.load_prompt('query.txt', '{passage}'))\n"
    )
    # Outside the checkout, with the wheel's folder first on the path: the installed copy answers.
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    where, prompt = out.stdout.split("\n", 1)
    assert Path(where).is_relative_to(target)
    assert prompt.rstrip("\n") == (REPO / "retrieval_cli" / "prompts" / "query.txt").read_text(encoding="utf-8").rstrip()
    script = target / "bin" / "retrieval-cli"
    helped = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "mine-negatives" in helped.stdout and "pipeline" in helped.stdout
