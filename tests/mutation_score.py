"""The mutation score per module, from a finished ``mutmut run`` (``make mutation``).

Reads mutmut's results under ``mutants/`` and ``tests/mutation_equivalent.txt``, where every
mutant the tests do not kill is listed with its reason: ``equivalent`` (it computes the
same; left out of the score) or ``unkilled`` (it differs, but not observably here; counted
as not killed). Prints a Markdown table (docs/testing.md), then every mutant that is not
killed and not listed. A mutant is killed when a test failed or timed out on it; the score
is killed / (mutants - equivalent ones).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = Path(__file__).with_name("mutation_equivalent.txt")
DETECTED = ("killed", "timeout", "segfault")


def listed_mutants(path: Path = EQUIVALENT) -> dict[str, tuple[str, str]]:
    """``KIND NAME: REASON`` per line, KIND ``equivalent`` or ``unkilled``; ``#`` comments."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            head, _, reason = line.partition(": ")
            kind, _, name = head.partition(" ")
            if kind not in ("equivalent", "unkilled"):
                raise ValueError(f"{path.name}: {line!r} is not 'equivalent|unkilled NAME: why'")
            found[name.strip()] = (kind, reason.strip())
    return found


def statuses(mutants: Path) -> dict[str, str]:
    """Every mutant's status by name, from mutmut's ``.meta`` files."""
    found = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        found.update({name: status_by_exit_code[code] for name, code in codes.items()})
    return found


def module_of(mutant: str) -> str:
    """``gm.nn.gru.xǁGRUǁforward__mutmut_3`` -> ``gm/nn/gru.py``."""
    return "/".join(mutant.split(".")[:-1]) + ".py"


def main() -> int:
    found = statuses(ROOT / "mutants")
    if not found:
        print("no mutmut results under mutants/: run `make mutation` first", file=sys.stderr)
        return 2
    listed = listed_mutants()
    unknown = sorted(set(listed) - set(found))
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors, explained = [], []
    for name, status in found.items():
        counts = by_module[module_of(name)]
        counts["mutants"] += 1
        kind, reason = listed.get(name, (None, ""))
        if status in DETECTED:
            counts["killed"] += 1
            if kind:
                survivors.append(f"{name}: killed, but listed as {kind}")
        elif kind == "equivalent":
            counts["equivalent"] += 1
        else:
            (explained if kind else survivors).append(f"{name}: {status}; {reason}".rstrip("; "))
    print("| module | mutants | equivalent | killed | not killed | score |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    total: Counter[str] = Counter()
    for module, c in sorted(by_module.items()):
        total.update(c)
        print(_row(module, c))
    print(_row("**all**", total))
    if explained:
        print("\nNot killed, for the reason listed:")
        print("\n".join(sorted(explained)))
    if survivors:
        print("\nTo look at (not killed and not listed, or listed and killed):")
        print("\n".join(sorted(survivors)))
    if unknown:
        print("\nListed but not a mutant of this run:")
        print("\n".join(unknown))
    return 1 if survivors else 0


def _row(module: str, c: Counter[str]) -> str:
    real = c["mutants"] - c["equivalent"]
    left = real - c["killed"]
    score = f"{100 * c['killed'] / real:.1f} %" if real else "-"
    return f"| {module} | {c['mutants']} | {c['equivalent']} | {c['killed']} | {left} | {score} |"


if __name__ == "__main__":
    sys.exit(main())
