"""Each pipeline step in a process of its own, forked from the runner, which never starts a JVM or
a model itself.

Lucene's JVM (pyjnius) and torch shared one process when a recipe ran in-process, and a 51-step
recipe died in training with SIGSEGV in the JVM's signal handler: once started, the JVM owns the
process's signal handlers and the main thread's stack guard pages, so a fault in native code
anywhere (torch included) becomes a JVM crash and a ``hs_err_pid`` dump. A step per child keeps
the JVM of an index or BM25 mining step out of the training step's process, and a step that dies
(by a signal, the OOM killer, a native fault) is one line naming it; the steps it finished are
kept, and a rerun resumes. Fork, not spawn: a step is a closure over the plan, which a fresh
interpreter could not receive, and a fork starts without importing torch again.

The child reports back over a pipe: wait messages as they happen, then the artifact it made (or
reused) or the exception it raised.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pickle
import signal
import traceback
from pathlib import Path
from typing import Any, Callable

from retrieval_cli.errors import RetrievalError, Terminated, raise_terminated
from retrieval_cli.store import Artifact, BuildResult, Workspace


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


def run_step(name: str, make: Callable[[Workspace], BuildResult], ws: Workspace) -> BuildResult:
    """Run ``make(ws)`` in a forked child and return its result; the child's wait messages reach
    ``ws.on_wait`` here. A child killed by a signal raises
    StepDied naming the step; SIGTERM to this process is passed on to the child, and raises
    StepStopped once the child has cleaned up."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(make, ws, send), name=f"retrieval-cli step {name}", daemon=False)
    previous = signal.getsignal(signal.SIGTERM)
    stopped: list[int] = []

    def forward(signum: int, frame: Any) -> None:  # noqa: ARG001
        stopped.append(signum)
        if child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)

    in_main = _main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, forward)
    try:
        child.start()
        send.close()
        answer = _listen(receive, child, ws)
    except KeyboardInterrupt:  # Ctrl-C reached the child too (one process group): let it clean up
        child.join(30)
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        receive.close()
        if child.is_alive():
            child.terminate()
        child.join()
    if stopped:
        raise StepStopped(f"step {name} was stopped by SIGTERM; no artifact was written for it, the steps before it are kept: rerun to resume")
    if answer is None:
        code = child.exitcode
        how = f"signal {-code} ({signal_name(-code)})" if code is not None and code < 0 else f"exit status {code}"
        raise StepDied(f"step {name} died: {how}; no artifact was written for it, the steps before it are kept: rerun to resume")
    kind, payload = answer
    if kind == "error":
        raise payload
    path, reused = payload
    return BuildResult(Artifact.load(Path(path)), reused=reused)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _listen(receive: Any, child: Any, ws: Workspace) -> tuple[str, Any] | None:
    """Relay the child's messages until its answer; None when it died without one."""
    while True:
        if receive.poll(0.2):
            try:
                message = receive.recv()
            except EOFError:
                return None
            if message[0] != "wait":
                return message
            if ws.on_wait is not None:
                ws.on_wait(message[1])
        elif not child.is_alive() and not receive.poll(0):
            return None


def _child(make: Callable[[Workspace], BuildResult], ws: Workspace, send: Any) -> None:
    """The step's process: run it, send back what it made or raised, and exit."""
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        result = make(dataclasses.replace(ws, on_wait=lambda message: send.send(("wait", message))))
        send.send(("done", (str(result.artifact.path), result.reused)))
    except Terminated:
        os._exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        os._exit(130)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the runner, as it would in-process
        send.send(("error", _portable(exc)))
    finally:
        send.close()
    os._exit(0)  # no atexit handlers or inherited finalizers: they belong to the runner


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
