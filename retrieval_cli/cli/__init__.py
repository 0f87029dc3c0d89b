"""The ``retrieval-cli`` command: thin Typer wrappers over the library, one module per command."""

from __future__ import annotations

import os
import signal
import sys
import threading

import click
import typer
from typer.core import TyperGroup

from retrieval_cli.cli import console
from retrieval_cli.errors import RetrievalError, Terminated, raise_terminated


class _Group(TyperGroup):
    """Turns expected errors into one red line and their exit code, never a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, raise_terminated)
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `... --help | head`: the reader left; say nothing, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except RetrievalError as exc:
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # disk full, permission denied, ...: the build already removed its temporary folder
            if os.environ.get("RETRIEVAL_CLI_DEBUG"):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            console.error(f"{where}{exc.strerror or exc} (no artifact was written; set RETRIEVAL_CLI_DEBUG=1 for a traceback)")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.error("interrupted; no artifact was written for the step in progress")
            raise typer.Exit(130) from None
        except Terminated:
            console.error("stopped by SIGTERM; no artifact was written for the step in progress (the same command resumes)")
            raise typer.Exit(143) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Experiment runner for retrieval benchmarks: mine negatives, train, index, evaluate, report.",
)

@app.callback()
def _root(
    ctx: typer.Context,
    no_verify: bool = typer.Option(
        False, "--no-verify", envvar="RETRIEVAL_CLI_NO_VERIFY", metavar="",
        help="Skip checksum checks of the artifacts a command reads (on by default: checksums up to 256 MiB, sizes beyond).",
    ),
) -> None:
    """Experiment runner for retrieval benchmarks: mine negatives, train, index, evaluate, report."""
    from retrieval_cli.cli.options import State

    ctx.obj = State(verify_reads="none" if no_verify else "auto")


from retrieval_cli.cli import (  # noqa: E402  (registers commands)
    artifacts,
    cluster,
    data,
    evaluate,
    generate,
    index,
    mine,
    negatives,
    pipeline,
    report,
    train,
)

app.add_typer(data.app, name="data")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(negatives.app, name="negatives")
app.add_typer(pipeline.app, name="pipeline")
app.command("generate-queries")(generate.generate_queries_cli)
app.command("mine-negatives")(mine.mine_negatives_cli)
app.command("cluster-queries")(cluster.cluster_queries_cli)
app.command("train")(train.train_cli)
app.command("index")(index.index_cli)
app.command("evaluate")(evaluate.evaluate_cli)
app.command("report")(report.report_cli)


def main() -> None:
    app()
