"""Each pipeline step that builds runs in a process of its own; the runner never starts a JVM or
runs a model itself.

Lucene's JVM (pyjnius) and torch shared one process when a recipe ran in-process, and a 51-step
recipe died in training with SIGSEGV caught by the JVM's signal handler: once started, the JVM
owns the process's fault handlers and guards the main thread's stack, so a fault in native code
anywhere (torch included) becomes a JVM crash and an ``hs_err_pid`` dump in the working folder. A
step per process keeps an index or BM25-mining step's JVM out of the training step, and a step
that dies (a signal, the OOM killer, a native fault) is one line naming it; the steps it finished
are kept, and a rerun resumes.

Children are forked from multiprocessing's forkserver, a clean process that imported the package
and sentence-transformers once and never ran a model: a fork of a process whose OpenMP threads ran
(torch's) hangs in the next parallel region, and a fork of a process with a JVM inherits it. A
child gets the recipe, plans it again (planning is pure and fast) and runs its one step; it
reports back over a pipe: wait messages as they happen, then the artifact it made or reused (and
what it verified, so the run reads each artifact's checksums once, as in one process), or the
exception it raised.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from retrieval_cli.errors import RetrievalError, Terminated, on_sigterm, raise_terminated
from retrieval_cli.pipeline.recipe import Recipe
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import Artifact, BuildResult, Workspace

# What the forkserver imports once, so no step's process imports it again (sentence-transformers
# alone takes about 9 s here; the others are what evaluation, indexing and reports import). Not
# pyjnius: importing it starts the JVM.
PRELOAD = ["retrieval_cli.pipeline", "sentence_transformers", "faiss", "ir_measures", "pytrec_eval", "scipy.stats", "matplotlib"]


_KEPT = "no artifact was written for it, the steps before it are kept: rerun to resume"


class StepDied(RetrievalError):
    """A step's process ended without an answer: killed by a signal or exited (exit code 1)."""


class StepStopped(RetrievalError):
    """The run was stopped by SIGTERM while a step ran (exit code 143, as a shell reports it)."""

    exit_code = 143


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_step(recipe: Recipe, name: str, ws: Workspace, given: Mapping[str, Artifact], progress: Progress = silent) -> BuildResult:
    """Run the recipe's step ``name`` on its inputs ``given`` in a process of its own and return its
    result; the child's wait messages reach ``ws.on_wait`` here, its progress ``progress``. A child that dies raises StepDied
    naming the step; SIGTERM to this process is passed on to the child, and raises StepStopped
    once the child has cleaned up."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    receive, send = context.Pipe(duplex=False)
    job = (recipe, name, str(ws.root), ws.verify_reads, sorted(map(str, ws.verified)), {role: str(a.path) for role, a in given.items()},
           os.getcwd(), dict(os.environ))
    child = context.Process(target=_child, args=(job, send), name=f"retrieval-cli step {name}")
    stopped: list[bool] = []

    def forward() -> None:
        stopped.append(True)
        if child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)

    try:
        with on_sigterm(forward):
            with _caller_script_hidden():
                child.start()
            if stopped:  # SIGTERM came while the child started, before its pid was known: pass it on now
                os.kill(child.pid, signal.SIGTERM)
            send.close()
            answer = _listen(receive, child, ws, progress)
    except KeyboardInterrupt:  # Ctrl-C reached the child too (one process group): let it clean up
        child.join(30)
        raise
    finally:
        receive.close()
        if child.pid is not None:  # started (a failed start raises its own error, not join's)
            if child.is_alive():
                child.terminate()
            child.join()
    if stopped:
        raise StepStopped(f"step {name} was stopped by SIGTERM; {_KEPT}")
    if answer is None:
        code = child.exitcode
        how = f"signal {-code} ({signal_name(-code)})" if code is not None and code < 0 else f"exit status {code}"
        raise StepDied(f"step {name} died: {how}; {_KEPT}")
    kind, payload = answer
    if kind == "error":
        raise payload
    path, reused, verified = payload
    ws.trust(verified)
    return BuildResult(Artifact.load(Path(path)), reused=reused)


@contextmanager
def _caller_script_hidden() -> Iterator[None]:
    """Start a child without naming the caller's script: multiprocessing would run it again in the
    child to rebuild ``__main__`` (a script without an ``if __name__ == "__main__"`` guard would
    start the whole run again there), and a step needs nothing from it."""
    main = sys.modules["__main__"]
    saved = {key: main.__dict__[key] for key in ("__file__", "__spec__") if key in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            del main.__spec__


def _listen(receive: Any, child: Any, ws: Workspace, progress: Progress) -> tuple[str, Any] | None:
    """Relay the child's messages (waits, progress) until its answer; None when it died without one."""
    while True:
        if receive.poll(0.2):
            try:
                message = receive.recv()
            except EOFError:
                return None
            if message[0] == "progress":
                stage, done, total, detail = message[1]
                progress(stage, done, total, detail=detail)
                continue
            if message[0] != "wait":
                return message
            if ws.on_wait is not None:
                ws.on_wait(message[1])
        elif not child.is_alive() and not receive.poll(0):
            return None


def _child(job: tuple, send: Any) -> None:
    """The step's process: plan the recipe, run the one step, send back what it made or raised."""
    from retrieval_cli.pipeline.plan import plan

    recipe, name, root, verify_reads, verified, given_paths, cwd, environ = job
    signal.signal(signal.SIGTERM, raise_terminated)
    # The platform's default start method again, as in the runner: left at forkserver, every lock a
    # library makes (tqdm's) is a named semaphore the resource tracker then reports as leaked.
    multiprocessing.set_start_method(None, force=True)
    os.chdir(cwd)  # the runner's folder and variables now, not the forkserver's when it started
    os.environ.clear()
    os.environ.update(environ)
    try:
        ws = Workspace(Path(root), verify_reads=verify_reads, on_wait=lambda message: send.send(("wait", message)))
        ws.trust(verified)  # what the run verified already is not read again
        step = next(s for s in plan(recipe) if s.name == name)
        result = step.make(ws, {role: Artifact.load(Path(path)) for role, path in given_paths.items()}, progress=_Relay(send))
        send.send(("done", (str(result.artifact.path), result.reused, sorted(map(str, ws.verified)))))
    except Terminated:
        os._exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        os._exit(130)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the runner, as it would in-process
        send.send(("error", _portable(exc)))
    finally:
        send.close()


class _Relay:
    """The step's progress, sent to the runner: a stage at most ten times a second (and always its
    last update), so a fast loop does not flood the pipe."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int | None, *, detail: str = "") -> None:
        now = time.monotonic()
        if now - self.last.get(stage, 0.0) < 0.1 and done != total:
            return
        self.last[stage] = now
        self.send.send(("progress", (stage, done, total, detail)))


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling (a RetrievalError, an OSError: the CLI turns
    them into its one line), else a RuntimeError carrying the child's traceback."""
    try:
        copy = pickle.loads(pickle.dumps(exc))
        if type(copy) is type(exc) and str(copy) == str(exc):
            return copy
    except Exception:  # noqa: BLE001 - anything unpicklable is described instead
        pass
    text = "".join(traceback.format_exception(exc))
    return RuntimeError(f"{type(exc).__name__}: {exc}\n(in the step's process)\n{text}")
