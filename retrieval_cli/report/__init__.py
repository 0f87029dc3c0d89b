"""Reports: systems x datasets x measures described by their lineage (seeds folded into one row),
paired significance tests per target and across targets, and the plots a reader checks the
numbers with."""

from retrieval_cli.report.compare import across_targets, compare
from retrieval_cli.report.config import ReportConfig
from retrieval_cli.report.render import cells
from retrieval_cli.report.reporting import load_table, report
from retrieval_cli.report.table import System, build_table, describe

__all__ = ["ReportConfig", "System", "across_targets", "build_table", "cells", "compare", "describe", "load_table", "report"]
