"""Data preparation at scale: peak memory, tokenization throughput, time to the first step.

    python benchmarks/data_prep.py make-corpus --source TEXT --size-mb 1000 --out big.txt
    python benchmarks/data_prep.py measure --corpus big.txt [--checkout DIR] [--tokenizer char]
        [--label NAME] [--json OUT] [--phases prepare train] [--threads 1]

``make-corpus`` writes a synthetic corpus of exactly N MB (1 MB = 10^6 bytes) from a
source text repeated with perturbations, so that it is not purely periodic: each
repetition has its paragraphs (blocks between blank lines; lines when the source has
fewer than 16 paragraphs) shuffled, and in a fraction of its lines (``--swap-fraction``,
default 10 %) two adjacent words swapped, all drawn from ``random.Random(--seed)``. A
repetition keeps the source's characters exactly (only their order changes), so the
corpus is valid UTF-8 with the source's character set; the last repetition is cut at a
character boundary (and topped up with newlines to the exact size). It is written one
repetition at a time, to a temporary file renamed at the end: memory stays at a few
copies of the source whatever the size, and a killed run leaves no half corpus.

``measure`` times a checkout's data pipeline on a corpus, each measurement in a fresh
process, twice: "cold" with a new, empty ``GM_DATA_DIR`` (no id cache, no tokenizer
cache) and "warm" with that same directory again (the caches the cold run wrote). The
corpus file itself is in the page cache in both (it is read just before): "cold" is the
id cache, not the disk.

* ``prepare``: a Python process that puts ``--checkout`` first on ``sys.path`` (so that
  an older checkout's ``gm`` is imported, not this one's; the harness checks
  ``gm.__file__``), imports ``gm.data.datamodule`` and times
  ``TextDataModule(data_dir=..., path=CORPUS, tokenizer=...).prepare()`` (the other
  arguments at their defaults): wall seconds, throughput in MB/s of corpus bytes
  (reading, hashing, splitting, building the tokenizer, encoding and writing or reading
  the id cache, all together), and the process's peak resident memory
  (``getrusage(RUSAGE_SELF).ru_maxrss``), imports included; the JSON also has the import
  time and the peak after the imports alone, to tell the data's share from the libraries'.
* ``train``: the checkout's ``train.py`` as a user runs it (``cwd`` and ``PYTHONPATH``
  the checkout) with ``model=astra_alpha data.path=CORPUS trainer.max_steps=2
  trainer.limit_val_batches=1 trainer.num_sanity_val_steps=0
  callbacks.checkpoint.every_n_train_steps=1`` (``--model``; ``data=shakespeare_spm``
  for ``--tokenizer sentencepiece``), and without the ``validate_at_start``
  and ``samples`` callbacks where the checkout's ``conf/callbacks/default.yaml`` has
  them. "First step" is the time from launching the process to the appearance of
  ``checkpoints/last.ckpt``, which the checkpoint callback writes (to a temporary file,
  renamed) at the end of step 1: interpreter start, imports, Hydra, data preparation,
  model and Lightning set-up, one forward + backward + optimizer step and the save of a
  small model's checkpoint (milliseconds). The whole 2-step run's wall time is reported
  too. Peak memory is the child's own ``ru_maxrss`` as ``os.wait4`` returns it (that
  process and any it waited for), not the harness's.

Every child runs with ``OMP_NUM_THREADS=MKL_NUM_THREADS=--threads`` (default 1), so that
a benchmark beside a training run does not fight it for cores. Each measurement prints a
markdown table row as it finishes: ``seconds`` is the preparation's time (imports not
included) or the time to the end of the first step (everything included), ``MB/s`` the
preparation's throughput, ``whole run s`` the child process's wall time from launch to
exit. ``--json`` writes them all with the machine, the date, the checkout's commit
(``+dirty`` with uncommitted changes) and the ``gm`` that was imported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000  # bytes: throughputs and sizes are in decimal megabytes
MIN_BLOCKS = 16  # fewer paragraphs than this: the lines are shuffled instead
CALLBACKS_TO_DROP = ("validate_at_start", "samples")  # newer code's step-0 work

# The preparation child: argv = checkout, corpus, data_dir, tokenizer. One JSON line out.
PREPARE_CHILD = r"""
import json, resource, sys, time
checkout, corpus, data_dir, tokenizer = sys.argv[1:5]
sys.path.insert(0, checkout)
start = time.perf_counter()
import gm
from gm.data.datamodule import TextDataModule
import_s = time.perf_counter() - start
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
dm = TextDataModule(data_dir=data_dir, path=corpus, tokenizer=tokenizer)
start = time.perf_counter()
tokenizer = dm.prepare()
prepare_s = time.perf_counter() - start
def length(ids):  # a tensor, an array or a memory map, whichever the checkout keeps
    try:
        return int(len(ids))
    except TypeError:
        return None
print(json.dumps({
    "gm_file": gm.__file__,
    "import_s": import_s,
    "seconds": prepare_s,
    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "import_rss_kib": rss_import,
    "train_tokens": length(getattr(dm, "train_ids", None)),
    "val_tokens": length(getattr(dm, "val_ids", None)),
    "vocab_size": getattr(tokenizer, "vocab_size", None),
}))
"""


# ---------------------------------------------------------------------------- make-corpus


def source_units(text: str) -> tuple[list[list[str]], str]:
    """The source as shuffleable units, each a list of lines, and their separator:
    paragraphs (split on blank lines) when there are at least ``MIN_BLOCKS``, else lines."""
    text = text.rstrip("\n")
    blocks = text.split("\n\n")
    if len(blocks) >= MIN_BLOCKS:
        return [block.split("\n") for block in blocks], "\n\n"
    lines = text.split("\n")
    if len(lines) < 2:
        raise SystemExit("error: the source text needs at least two lines to shuffle")
    return [[line] for line in lines], "\n"


def repetitions(text: str, seed: int, swap_fraction: float) -> Iterator[str]:
    """Endless perturbed copies of ``text``: its units shuffled, and in each line with
    probability ``swap_fraction`` two adjacent space-separated words swapped. Each copy
    has exactly the source's characters (plus one separator where the copies meet)."""
    units, sep = source_units(text)
    rng = random.Random(seed)
    while True:
        order = list(range(len(units)))
        rng.shuffle(order)
        parts = []
        for u in order:
            lines = units[u]
            draws = [rng.random() < swap_fraction for _ in lines]
            if any(draws):
                lines = [
                    swap_words(line, rng) if d else line
                    for line, d in zip(lines, draws, strict=True)
                ]
            parts.append("\n".join(lines))
        yield sep.join(parts) + sep


def swap_words(line: str, rng: random.Random) -> str:
    """``line`` with two adjacent words (split on single spaces) swapped at random."""
    words = line.split(" ")
    if len(words) < 2:
        return line
    i = rng.randrange(len(words) - 1)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def make_corpus(
    source: Path, size_mb: float, out: Path, seed: int = 0, swap_fraction: float = 0.1
) -> str:
    """Write the synthetic corpus (see the module docstring); return one sentence saying
    what was done."""
    text = source.read_text(encoding="utf-8")
    target = round(size_mb * MB)
    _, sep = source_units(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    written = whole = 0
    with partial.open("wb") as f:
        for rep in repetitions(text, seed, swap_fraction):
            if written >= target:
                break
            data = rep.encode("utf-8")
            if written + len(data) <= target:
                f.write(data)
                written += len(data)
                whole += 1
                continue
            cut = target - written
            while cut > 0 and data[cut] & 0xC0 == 0x80:  # never inside a character
                cut -= 1
            f.write(data[:cut] + b"\n" * (target - written - cut))
            written = target
    os.replace(partial, out)
    unit = "paragraphs" if sep == "\n\n" else "lines"
    chars = "the source's" if whole else "a subset of the source's"
    times = "time" if whole == 1 else "times"
    return (
        f"Wrote {out}: {target:,} bytes ({target / MB:g} MB) of {source.name} "
        f"({len(text.encode('utf-8')):,} bytes) repeated {whole} whole {times} and a part, "
        f"each repetition with its {unit} shuffled and two adjacent words swapped in "
        f"{swap_fraction:.0%} of its lines, drawn from random.Random({seed}); valid UTF-8 "
        f"with {chars} {len(set(text))} characters."
    )


# -------------------------------------------------------------------------------- measure


def child_env(checkout: Path, data_dir: Path, threads: int) -> dict[str, str]:
    """The environment of a measured child: its own data directory, the checkout
    importable, ``threads`` threads."""
    env = os.environ.copy()
    env |= {
        "GM_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(checkout),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    return env


def commit_of(checkout: Path) -> str:
    """The checkout's short commit, ``+dirty`` when its tree has changes; ``?`` outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+dirty" if dirty else "")


def measure_prepare(
    checkout: Path, corpus: Path, data_dir: Path, tokenizer: str, threads: int
) -> dict[str, Any]:
    """One preparation in a fresh process (see the module docstring)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PREPARE_CHILD, str(checkout), str(corpus), str(data_dir), tokenizer],
        capture_output=True,
        text=True,
        cwd=data_dir,
        env=child_env(checkout, data_dir, threads),
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: the preparation failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    gm_file = Path(result["gm_file"]).resolve()
    if not gm_file.is_relative_to(checkout):
        raise SystemExit(f"error: the child imported {gm_file}, not the gm of {checkout}")
    result["wall_s"] = wall
    result["mb_per_s"] = corpus.stat().st_size / MB / result["seconds"]
    return result


def train_overrides(checkout: Path, corpus: Path, run_dir: Path, model: str, tokenizer: str):
    """``train.py``'s arguments for a 2-step run whose first step leaves ``last.ckpt``."""
    overrides = [
        f"model={model}",
        f"data.path={corpus}",
        "trainer.max_steps=2",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "callbacks.checkpoint.every_n_train_steps=1",
        f"hydra.run.dir={run_dir}",
    ]
    if tokenizer == "sentencepiece":
        overrides.insert(1, "data=shakespeare_spm")
    present = top_level_keys(checkout / "conf" / "callbacks" / "default.yaml")
    return overrides + [f"~callbacks.{name}" for name in CALLBACKS_TO_DROP if name in present]


def top_level_keys(path: Path) -> set[str]:
    """The top-level keys of a YAML file (``name:`` at the start of a line); none if absent."""
    if not path.is_file():
        return set()
    return {
        line.split(":")[0].strip()
        for line in path.read_text().splitlines()
        if line[:1] not in ("", " ", "\t", "#", "-") and ":" in line
    }


def measure_train(
    checkout: Path,
    corpus: Path,
    data_dir: Path,
    run_dir: Path,
    tokenizer: str,
    threads: int,
    model: str = "astra_alpha",
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """One 2-step training run in a fresh process (see the module docstring)."""
    cmd = [
        sys.executable,
        str(checkout / "train.py"),
        *train_overrides(checkout, corpus, run_dir, model, tokenizer),
    ]
    last = run_dir / "checkpoints" / "last.ckpt"
    log = run_dir.with_name(run_dir.name + ".log")
    with log.open("wb") as out:
        start = time.perf_counter()
        child = subprocess.Popen(
            cmd,
            cwd=checkout,
            env=child_env(checkout, data_dir, threads),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        first = None
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            now = time.perf_counter()
            if first is None and last.exists():
                first = now - start
            if pid:
                break
            if now - start > timeout:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.005)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode != 0 or first is None:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(
            f"error: the training run exited with {child.returncode}"
            f"{'' if first else ' and wrote no last.ckpt'}:\n{' '.join(cmd)}\n{tail}"
        )
    return {"seconds": first, "wall_s": wall, "peak_rss_kib": usage.ru_maxrss}


def page_in(path: Path, chunk: int = 16 * MB) -> None:
    """Read ``path`` through once, a chunk at a time, so that it sits in the page cache."""
    with path.open("rb") as f:
        while f.read(chunk):
            pass


HEADER = (
    "| label | corpus MB | tokenizer | phase | cache | seconds | MB/s | peak RSS MiB "
    "| whole run s |\n| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: |"
)


def row(label: str, corpus_bytes: int, tokenizer: str, m: dict[str, Any]) -> str:
    """One measurement as a markdown table row: ``seconds`` is the preparation's time, or
    the time to the end of the first training step."""
    rate = f"{m['mb_per_s']:.1f}" if "mb_per_s" in m else "–"
    return (
        f"| {label} | {corpus_bytes / MB:,.1f} | {tokenizer} | {m['phase']} | {m['cache']} "
        f"| {m['seconds']:.2f} | {rate} | {m['peak_rss_kib'] / 1024:,.0f} | {m['wall_s']:.2f} |"
    )


def measure(
    corpus: Path,
    checkout: Path = ROOT,
    tokenizer: str = "char",
    label: str | None = None,
    phases: tuple[str, ...] = ("prepare", "train"),
    threads: int = 1,
    model: str = "astra_alpha",
    work_dir: Path | None = None,
    keep: bool = False,
    echo: bool = True,
) -> dict[str, Any]:
    """Measure ``checkout``'s preparation and training start on ``corpus``, cold and warm;
    print a table row per measurement (``echo``) and return everything."""
    corpus, checkout = corpus.resolve(), checkout.resolve()
    if not (checkout / "gm" / "data" / "datamodule.py").is_file():
        raise SystemExit(f"error: {checkout} is not a gm checkout (no gm/data/datamodule.py)")
    if not corpus.is_file():
        raise SystemExit(f"error: no corpus at {corpus}")
    size = corpus.stat().st_size
    label = label or checkout.name
    report: dict[str, Any] = {
        "label": label,
        "machine": machine(),
        "threads": threads,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "checkout": str(checkout),
        "commit": commit_of(checkout),
        "corpus": str(corpus),
        "corpus_bytes": size,
        "tokenizer": tokenizer,
        "model": model,
        "measurements": [],
    }
    root = Path(tempfile.mkdtemp(prefix="gm-data-prep-", dir=work_dir))
    try:
        for phase in phases:
            data_dir = root / f"{phase}-data"
            data_dir.mkdir()
            for cache in ("cold", "warm"):
                page_in(corpus)  # the file in the page cache for both: "cold" is the id cache
                if phase == "prepare":
                    m = measure_prepare(checkout, corpus, data_dir, tokenizer, threads)
                    report["gm_file"] = m["gm_file"]
                else:
                    run_dir = root / f"train-{cache}"
                    m = measure_train(
                        checkout, corpus, data_dir, run_dir, tokenizer, threads, model
                    )
                m |= {"phase": phase, "cache": cache}
                report["measurements"].append(m)
                if echo:
                    print(row(label, size, tokenizer, m), flush=True)
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-corpus", help="write a synthetic corpus of N MB")
    make.add_argument("--source", type=Path, required=True, help="the UTF-8 text to repeat")
    make.add_argument("--size-mb", type=float, required=True, help="size in MB (10^6 bytes)")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument(
        "--swap-fraction", type=float, default=0.1, help="lines with two adjacent words swapped"
    )
    meas = sub.add_parser("measure", help="preparation and training start, cold and warm")
    meas.add_argument("--corpus", type=Path, required=True)
    meas.add_argument("--checkout", type=Path, default=ROOT, help="the gm checkout to measure")
    meas.add_argument("--tokenizer", choices=["char", "sentencepiece"], default="char")
    meas.add_argument("--label", help="the table's first column (default: the checkout's name)")
    meas.add_argument("--json", type=Path, help="also write every figure here")
    meas.add_argument("--phases", nargs="+", choices=["prepare", "train"], default=None)
    meas.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the children")
    meas.add_argument("--model", default="astra_alpha")
    meas.add_argument("--work-dir", type=Path, help="where the temporary data dirs go")
    meas.add_argument("--keep", action="store_true", help="keep the data dirs and run logs")
    args = parser.parse_args(argv)
    if args.command == "make-corpus":
        if args.size_mb <= 0 or not 0 <= args.swap_fraction <= 1:
            parser.error("--size-mb must be positive and --swap-fraction within [0, 1]")
        print(make_corpus(args.source, args.size_mb, args.out, args.seed, args.swap_fraction))
        return
    print(
        f"{machine()} (this process); children with OMP_NUM_THREADS={args.threads}; "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{args.checkout.resolve()} at {commit_of(args.checkout.resolve())}\n",
        flush=True,
    )
    print(HEADER, flush=True)
    report = measure(
        args.corpus,
        args.checkout,
        args.tokenizer,
        args.label,
        tuple(args.phases or ("prepare", "train")),
        args.threads,
        args.model,
        args.work_dir,
        args.keep,
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
