"""The revision in force: last known good, guarded against force-pushes and untrusted commits.

The fetched tip of the branch becomes the revision in force only when
1. it descends from the revision in force (or an operator allowed that exact commit),
2. its signature is trusted (when verification is on), and
3. its desired state validates.
Otherwise the revision in force stays, and the refusal or the validation errors (``file:line:col``) are
reported with the tip as the "last attempted" revision. A bad tip is judged once, not at every pass.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.model.status import RevisionInfo
from reconciler.printable import escape
from reconciler.source.errors import SourceError
from reconciler.source.mirror import Mirror, check_sha
from reconciler.source.signatures import SignaturePolicy
from reconciler.source.statefile import read_json, write_json
from reconciler.source.treeread import UnreadableRevision

if TYPE_CHECKING:  # the schema loads with the first revision, not with every command that reads the state
    from reconciler.desired.load import Cluster

Loader = Callable[[Path], "Cluster"]


@dataclass(frozen=True)
class LoadedRevision:
    info: RevisionInfo
    directory: Path
    cluster: Cluster


@dataclass(frozen=True)
class SourceView:
    """What the loop acts on: the revision in force, and what happened to the newest one."""

    in_force: LoadedRevision | None
    attempted: RevisionInfo | None
    refusal: str = ""
    invalid_errors: tuple[str, ...] = ()

    @property
    def attempted_is_in_force(self) -> bool:
        return self.attempted is not None and self.in_force is not None and self.attempted.sha == self.in_force.info.sha


@dataclass
class _Judgement:
    refusal: str = ""
    errors: tuple[str, ...] = ()
    allowed_snapshot: frozenset[str] = field(default_factory=frozenset)


def format_validation_issues(exc: BaseException) -> tuple[str, ...]:
    """``path:line:col: message (hint)`` for each issue of a ValidationFailed, else the message."""
    issues = getattr(exc, "issues", None)
    if not issues:
        return (str(exc) or type(exc).__name__,)
    lines = []
    for issue in issues:
        where = str(getattr(issue, "path", "") or "?")
        line = getattr(issue, "line", None)
        col = getattr(issue, "col", None)
        if line:
            where += f":{line}"
            if col:
                where += f":{col}"
        text = f"{where}: {getattr(issue, 'message', issue)}"
        hint = getattr(issue, "hint", None)
        if hint:
            text += f" (hint: {hint})"
        lines.append(escape(text))
    return tuple(lines)


class InvalidRevision(Exception):
    """The desired state of a revision does not validate; ``errors`` are its file:line messages."""

    def __init__(self, errors: tuple[str, ...]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def default_loader(directory: Path) -> Cluster:
    """Load and validate with the project's schema; validation failures become InvalidRevision."""
    from reconciler.desired.errors import ValidationFailed  # noqa: PLC0415  (the schema only when needed)
    from reconciler.desired.load import load_cluster  # noqa: PLC0415

    try:
        return load_cluster(str(directory))
    except ValidationFailed as exc:
        raise InvalidRevision(format_validation_issues(exc)) from exc


class GitSource:
    """Decides which revision is in force. Not thread-safe: the loop alone calls :meth:`evaluate`."""

    def __init__(self, mirror: Mirror, state_dir: Path, *, subdir: str = "", policy: SignaturePolicy | None = None,
                 loader: Loader = default_loader) -> None:
        self.mirror = mirror
        self.subdir = subdir
        self.policy = policy or SignaturePolicy()
        self._loader = loader
        self._state_file = state_dir / "source.json"
        self._revisions = state_dir / "revisions"
        self._in_force: LoadedRevision | None = None
        self._judged: dict[str, _Judgement] = {}
        self._seen: dict[str, float] = {}
        self._restored = False

    # -- persistence ---------------------------------------------------------------------------
    def _restore(self, now: float) -> None:
        self._restored = True
        data = read_json(self._state_file)
        if not isinstance(data, dict) or not isinstance(data.get("in_force"), dict):
            return
        try:
            info = RevisionInfo.model_validate(data["in_force"])
            check_sha(info.sha)
            directory, cluster = self._load_export(info.sha)
            self._in_force = LoadedRevision(info, directory, cluster)
        except (SourceError, InvalidRevision, OSError, ValueError):
            # A cached revision that no longer loads (after an upgrade, say) is simply not in force.
            self._in_force = None

    def _persist(self) -> None:
        data: dict[str, object] = {"in_force": self._in_force.info.model_dump() if self._in_force else None}
        write_json(self._state_file, data)

    def _export_root(self, sha: str) -> Path:
        dest = self._revisions / sha
        return dest / self.subdir if self.subdir else dest

    def _export(self, sha: str, *, fresh: bool = False) -> Path:
        root = self._export_root(sha)
        if root.is_dir() and not fresh:
            return root
        return self.mirror.export(sha, self.subdir, self._revisions / sha)

    def _load_export(self, sha: str) -> tuple[Path, Cluster]:
        """The revision's files, loaded. An export left by an earlier run is trusted only while it loads: one that
        does not (torn by a power loss before exports were made durable, or changed on disk) is written again from
        git's objects, which are what counts, and loaded once more."""
        reused = self._export_root(sha).is_dir()
        directory = self._export(sha)
        try:
            return directory, self._loader(directory)
        except (InvalidRevision, OSError):
            if not reused:
                raise
        directory = self._export(sha, fresh=True)
        return directory, self._loader(directory)

    def _prune(self, keep: Iterable[str]) -> None:
        keep_set = set(keep)
        if not self._revisions.is_dir():
            return
        for entry in self._revisions.iterdir():
            if entry.name not in keep_set:
                shutil.rmtree(entry, ignore_errors=True)

    # -- decisions -----------------------------------------------------------------------------
    @property
    def in_force(self) -> LoadedRevision | None:
        return self._in_force

    def load_in_force(self, now: float = 0.0) -> LoadedRevision | None:
        """The revision in force as the last run left it (no fetch, no judging of newer commits)."""
        if not self._restored:
            self._restore(now)
        return self._in_force

    def first_seen(self, sha: str, now: float) -> float:
        return self._seen.setdefault(sha, now)

    def evaluate(self, now: float, allowed: frozenset[str] = frozenset()) -> SourceView:
        """Judge the fetched tip against the revision in force. Raises SourceError on git trouble."""
        if not self._restored:
            self._restore(now)
        tip = self.mirror.tip()
        current = self._in_force
        if tip is None:
            return SourceView(current, None)
        seen_at = self.first_seen(tip, now)
        if current is not None and tip == current.info.sha:
            return SourceView(current, current.info)
        attempted = self.mirror.info(tip, seen_at)
        judged = self._judged.get(tip)
        if judged is not None and (judged.errors or judged.allowed_snapshot == allowed):
            return SourceView(current, attempted, judged.refusal, judged.errors)
        verdict, loaded = self._judge(tip, current, allowed)
        if loaded is None:
            self._judged[tip] = verdict
            return SourceView(current, attempted, verdict.refusal, verdict.errors)
        self._in_force = LoadedRevision(attempted, loaded[0], loaded[1])
        self._persist()
        self._judged.clear()
        self._prune([tip])
        return SourceView(self._in_force, attempted)

    def _judge(self, tip: str, current: LoadedRevision | None,
               allowed: frozenset[str]) -> tuple[_Judgement, tuple[Path, Cluster] | None]:
        if current is not None and tip not in allowed and not self.mirror.is_ancestor(current.info.sha, tip):
            return _Judgement(
                refusal=(f"revision {tip[:12]} does not descend from the revision in force {current.info.sha[:12]} "
                         f"(force-push or rollback); not applied until allowed with "
                         f"`reconciler allow-revision {tip}`"),
                allowed_snapshot=allowed), None
        verdict = self.policy.verify(self.mirror.git, self.mirror.path, tip)
        if not verdict.trusted:
            return _Judgement(refusal=f"signature check refused revision {tip[:12]}: {escape(verdict.reason)}",
                              allowed_snapshot=allowed), None
        try:
            directory, cluster = self._load_export(tip)
        except UnreadableRevision as exc:
            # Judged like an invalid revision: refused once, with the reason in status, not retried forever.
            shutil.rmtree(self._revisions / tip, ignore_errors=True)
            return _Judgement(errors=exc.reasons, allowed_snapshot=allowed), None
        except SourceError as exc:
            raise SourceError(f"cannot export revision {tip[:12]}: {exc}") from exc
        except InvalidRevision as exc:
            shutil.rmtree(self._revisions / tip, ignore_errors=True)
            return _Judgement(errors=exc.errors, allowed_snapshot=allowed), None
        return _Judgement(allowed_snapshot=allowed), (directory, cluster)
