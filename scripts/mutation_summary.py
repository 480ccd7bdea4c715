"""Figures of the last mutation run (mutants/*.meta), with the survivors docs/mutation.md lists as equivalent.

A survivor is equivalent when it behaves exactly like the original; docs/mutation.md names each one in a table
row that starts with its name in backquotes, followed by the reason. Exit status 1 when a survivor is neither
killed nor listed there, so the run says plainly what is left to do.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
DOC = ROOT / "docs" / "mutation.md"

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "type check",
          None: "not checked"}


def equivalent_names() -> set[str]:
    if not DOC.is_file():
        return set()
    return set(re.findall(r"^\|\s*`([\w.]+__mutmut_\d+)`\s*\|", DOC.read_text(), flags=re.MULTILINE))


def main(argv: list[str]) -> int:
    """``argv``: optionally the folder of a run's results (a copy of mutants/), to compare two runs."""
    where = Path(argv[0]) if argv else MUTANTS
    metas = sorted(where.rglob("*.py.meta"))
    if not metas:
        print(f"mutation: no results under {where}; run scripts/mutation first", file=sys.stderr)
        return 1
    listed = equivalent_names()
    by_file: dict[str, Counter[str]] = {}
    survivors: list[str] = []
    equivalent: list[str] = []
    for meta in metas:
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        counts: Counter[str] = Counter()
        for name, code in sorted(codes.items(), key=lambda kv: _natural(kv[0])):
            status = STATUS.get(code, "suspicious")
            if status == "survived" and name in listed:
                status = "equivalent"
                equivalent.append(name)
            elif status == "not checked":
                pass
            elif status not in {"killed", "timeout"}:
                survivors.append(f"{name} ({status})")
            counts[status] += 1
        by_file[meta.relative_to(where).as_posix().removesuffix(".meta")] = counts
    total: Counter[str] = sum(by_file.values(), Counter())
    width = max(len(f) for f in by_file)
    columns = ("killed", "timeout", "equivalent", "survived", "not checked")
    print(f"{'module':<{width}}  mutants  " + "  ".join(columns))
    for path, c in (*by_file.items(), ("total", total)):
        print(f"{path:<{width}}  {sum(c.values()):7}  " + "  ".join(f"{_left(c, k):{len(k)}}" for k in columns))
    checked = sum(total.values()) - total["not checked"]
    relevant = checked - total["equivalent"]
    rate = 100.0 * (total["killed"] + total["timeout"]) / relevant if relevant else 100.0
    print(f"kill rate of non-equivalent mutants checked: {rate:.1f}% ({total['killed'] + total['timeout']}/{relevant}; "
          "a timeout counts as killed)")
    if total["not checked"]:
        print(f"{total['not checked']} mutants were not checked: the run stopped before them (see --limit)")
    stale = sorted(listed - set(equivalent))
    if stale:
        print(f"listed as equivalent in {DOC.name} but not a survivor of this run: {', '.join(stale)}")
    if survivors:
        print("not killed (see `.venv/bin/mutmut show NAME`):")
        for line in survivors:
            print(f"  {line}")
        return 1
    return 0


def _left(counts: Counter[str], column: str) -> int:
    """Statuses other than these columns (no tests, suspicious, skipped) count as survived."""
    if column != "survived":
        return counts[column]
    return sum(v for k, v in counts.items() if k not in ("killed", "timeout", "equivalent", "not checked"))


def _natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("_")
    return stem, int(number) if number.isdigit() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
