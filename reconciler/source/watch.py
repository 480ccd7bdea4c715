"""Notice new commits in a repository on this machine at once (inotify through watchdog).

Only ref changes matter: a commit, push or force-push into a local repository ends with a ref file
renamed into ``refs/`` or a rewritten ``packed-refs``. Object writes are ignored, so a large push
wakes the daemon once, when its ref moves, not for every object.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver


def local_git_dir(url: str) -> Path | None:
    """The git directory of ``url`` when it is a repository on this machine, else None."""
    if url.startswith("file://"):
        url = url[len("file://"):]
    if "://" in url or (":" in url.split("/")[0] and not url.startswith("/")):
        return None
    path = Path(url)
    if (path / ".git").is_dir():
        return path / ".git"
    if (path / "HEAD").is_file() and (path / "refs").is_dir():
        return path
    return None


class _RefEvents(FileSystemEventHandler):
    def __init__(self, git_dir: Path, on_change: Callable[[], None]) -> None:
        self._refs = str(git_dir / "refs") + os.sep
        self._packed = str(git_dir / "packed-refs")
        self._on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(raw) if raw else ""
            if not path or path.endswith(".lock"):
                continue
            if path.startswith(self._refs) or path == self._packed:
                self._on_change()
                return


class RefWatcher:
    """Calls ``on_change`` (from watchdog's thread) whenever a ref of the local repository moves."""

    def __init__(self, git_dir: Path, on_change: Callable[[], None]) -> None:
        self.git_dir = git_dir
        self._handler = _RefEvents(git_dir, on_change)
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        observer = Observer()
        observer.daemon = True
        observer.schedule(self._handler, str(self.git_dir / "refs"), recursive=True)
        observer.schedule(self._handler, str(self.git_dir), recursive=False)
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
