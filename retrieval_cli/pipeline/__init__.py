"""Recipes: a negative-mining comparison as a DAG of steps, run through the library functions.

``recipe`` reads and checks a recipe file; ``plan`` turns it into steps (the comparison planner);
``dag`` orders them and hashes their specs; ``locks`` records what each step last produced;
``run`` runs them; ``makefile`` writes the same DAG for make.

Reruns follow weasel's idea: each step's *spec hash* covers its recipe fragment and its inputs'
hashes, and ``<workspace>/pipelines/<recipe>/<step>.json`` records the hash and artifact the step
last produced. A step whose hash matches its lock and whose artifact still exists is done;
``status`` and ``--dry-run`` read only that.
"""

from retrieval_cli.pipeline.dag import Step
from retrieval_cli.pipeline.locks import lock_dir, pinned, step_file
from retrieval_cli.pipeline.makefile import makefile
from retrieval_cli.pipeline.plan import load, plan
from retrieval_cli.pipeline.recipe import BASELINES, SECTIONS, Recipe, parse_overrides
from retrieval_cli.pipeline.run import check, check_reads, expectation, run, status

__all__ = [
    "BASELINES", "SECTIONS", "Recipe", "Step", "check", "check_reads", "expectation", "load", "lock_dir", "makefile", "parse_overrides", "pinned", "plan", "run",
    "status", "step_file",
]
