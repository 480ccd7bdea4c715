"""Start the read-only commands a pass is sure to ask for before the caller needs their answers.

A fresh `reconciler plan` spends most of its time importing and validating the desired state, then
waits for `vgs` and `lvs`. Started here first, in background threads (a waiting subprocess holds no
lock the imports need), the reports are ready, or nearly, when the observer asks. Each answer is given
once, to the first ``run`` of the very same argv with the same timeout and no input; every other call
goes straight to the inner host. Only for read-only commands: an answer may be a moment old.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from reconciler.host.base import DEFAULT_TIMEOUT, CommandResult, Host, HostWrapper


class _Pending:
    def __init__(self, host: Host, argv: tuple[str, ...], timeout: float) -> None:
        self.result: CommandResult | None = None
        self.error: BaseException | None = None
        # Not a daemon thread: the interpreter waits for it (at most the command's timeout) at exit.
        self.thread = threading.Thread(target=self._run, args=(host, argv, timeout), name="prefetch")
        self.thread.start()

    def _run(self, host: Host, argv: tuple[str, ...], timeout: float) -> None:
        try:
            self.result = host.run(argv, timeout=timeout)
        except BaseException as exc:  # handed to the caller of run(), as if it had run there
            self.error = exc

    def take(self) -> CommandResult:
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None  # noqa: S101  (set whenever no error was)
        return self.result


class PrefetchingHost(HostWrapper):
    """``inner`` with ``argvs`` already started, each with ``timeout``."""

    def __init__(self, inner: Host, argvs: Sequence[Sequence[str]], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(inner)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pending = {tuple(argv): _Pending(inner, tuple(argv), timeout) for argv in argvs}

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        pending = None
        if stdin is None and timeout == self._timeout:
            with self._lock:
                pending = self._pending.pop(tuple(argv), None)
        if pending is not None:
            return pending.take()
        return self._inner.run(argv, timeout=timeout, stdin=stdin)
