"""Work run in a forked child process, its answer (or its error) sent back pickled through a pipe.

Used for the build's background validation (``publish.Validation``) and for the second half of
the dumps (``dumps.write_dumps``): the child has everything this process had, so nothing but the
answer is pickled. Only where ``os.fork`` exists; the callers fall back to doing the work here.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import Any


class ChildDied(RuntimeError):
    """The child ended without sending an answer (killed, out of memory...)."""


class Forked:
    """``work()`` run in a forked child process: ``result()`` is what it returned, or raises what
    it raised. The child leaves no trace of this process's exit handlers or buffers (``_exit``)."""

    def __init__(self, work: Callable[[], Any]) -> None:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (its work is what the tests check)
            status = 0
            try:
                os.close(read)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                try:
                    payload = pickle.dumps((True, work()), protocol=5)
                except BaseException as exc:  # noqa: BLE001 - sent to the parent
                    try:
                        payload = pickle.dumps((False, exc), protocol=5)
                    except Exception:  # noqa: BLE001 - an error that cannot be pickled: its text
                        payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")), protocol=5)
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(payload)
            except BaseException:  # noqa: BLE001 - nothing may unwind into the parent's code
                status = 1
            finally:
                os._exit(status)
        os.close(write)
        self.pid, self._read = pid, read

    def result(self) -> Any:
        with os.fdopen(self._read, "rb") as pipe:
            payload = pipe.read()
        _pid, status = os.waitpid(self.pid, 0)
        if not payload:
            raise ChildDied(f"the child process ended without an answer (wait status {status})")
        ok, value = pickle.loads(payload)
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self._read)
        except OSError:
            pass


__all__ = ["ChildDied", "Forked"]
