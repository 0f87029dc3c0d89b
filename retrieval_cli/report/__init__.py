"""Reports: systems x datasets x measures described by their lineage, paired significance tests,
and the plots a reader checks the numbers with."""

from retrieval_cli.report.reporting import (
    ReportConfig,
    System,
    build_table,
    cells,
    compare,
    describe,
    load_table,
    report,
)

__all__ = ["ReportConfig", "System", "build_table", "cells", "compare", "describe", "load_table", "report"]
