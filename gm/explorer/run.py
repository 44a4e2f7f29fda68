"""``python -m gm.explore ckpt=RUN_OR_BUNDLE``: the explorer's page for a trained model.

    python -m gm.explore ckpt=outputs/astra_gamma/2026-11-28_10-00-00
    python -m gm.explore ckpt=RUN text_file=hamlet.txt layer=0 out=hamlet.html
    python -m gm.explore ckpt=RUN ngram=NGRAM_RUN   # the n-gram's surprisal as a layer too

The text is the start of the run's own validation split (``chars=`` characters, 10,000 by
default), or ``text=`` / ``text_file=`` (taken as typed, never parsed). ``layer=`` picks the
recurrent layer whose units the page shows (-1, the last, by default). The page is written
to ``out=`` (``explore.html``); a file there that is not an explorer page is never replaced.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gm.artifacts import TrainedModel, load_trained
from gm.atomic import write_bytes_atomic
from gm.data.corpus import read_corpus
from gm.errors import UserError
from gm.explorer.features import best_units, text_features
from gm.explorer.gates import saturation, saturation_figure
from gm.explorer.page import page_data, render
from gm.explorer.trace import trace
from gm.figures import save
from gm.generation.prompt import read_prompt_file
from gm.settings import Setting, check_values

EXPLORE_SETTINGS: dict[str, Setting] = {
    "ckpt": Setting(str),
    "text_file": Setting(str, nullable=True),
    "ngram": Setting(str, nullable=True),
    "out": Setting(str),
    "layer": Setting(int, low=-64, high=63),
    "chars": Setting(int, low=2, high=1_000_000),
}
DEFAULTS: dict[str, Any] = {
    "text_file": None,
    "ngram": None,
    "out": "explore.html",
    "layer": -1,
    "chars": 10_000,
}
_PAGE_START = '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>gm explorer'


def parse(argv: list[str]) -> tuple[dict[str, Any], str | None]:
    """``key=value`` arguments as settings (numbers as numbers), and ``text=`` as typed."""
    settings, text = dict(DEFAULTS), None
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise UserError(f"{arg!r} is not KEY=VALUE; see python -m gm.explore --help")
        if key == "text":
            text = value
            continue
        if key not in EXPLORE_SETTINGS:
            raise UserError(
                f"unknown setting {key}; gm.explore takes text, {', '.join(EXPLORE_SETTINGS)}"
            )
        kind = EXPLORE_SETTINGS[key].kind
        try:
            settings[key] = int(value) if kind is int else value
        except ValueError:
            settings[key] = value  # refused by the settings rule, by name
    if "ckpt" not in settings:
        raise UserError("give ckpt=RUN_OR_BUNDLE: the trained model to explore")
    check_values(settings, EXPLORE_SETTINGS)
    return settings, text


def validation_text(trained: TrainedModel, chars: int) -> str:
    """The first ``chars`` characters of the model's own validation split."""
    path = trained.corpus.get("path")
    if not path or not Path(path).is_file():
        raise UserError(
            f"{trained.source} records no corpus that is still here ({path}); give text= or "
            "text_file="
        )
    corpus = read_corpus(path, encoding=trained.corpus.get("encoding", "utf-8"))
    start, end = trained.split_range(1, corpus.chars)
    return "".join(corpus.chunks(start, min(end, start + chars)))


def explore(settings: dict[str, Any], text: str | None = None) -> Path:
    """Write the page ``settings`` describe; return its path."""
    out = Path(settings["out"]).expanduser()
    if out.exists() and not _is_page(out):
        raise UserError(f"{out} exists and is not an explorer page; choose another out=")
    figure_path = out.parent / f"{out.stem}_gates.png"  # beside the page, which shows it
    if figure_path.exists() and not out.exists():  # (a page's own figure is replaced with it)
        raise UserError(f"{figure_path} exists and is no explorer page's; choose another out=")
    trained = load_trained(settings["ckpt"])
    if text is None and settings["text_file"]:
        text = read_prompt_file(Path(settings["text_file"]).expanduser())
    if text is None:
        text = validation_text(trained, settings["chars"])
    text = text[: settings["chars"]]
    traced = trace(trained, text)
    baseline = None
    if settings["ngram"]:
        ngram = load_trained(settings["ngram"])
        if ngram.tokenizer.fingerprint != trained.tokenizer.fingerprint:
            raise UserError(f"{settings['ngram']} has another vocabulary than {settings['ckpt']}")
        baseline = trace(ngram, text, modes=("stateful",)).nll["stateful"]
    layer, best = None, {}
    if traced.layers:
        count = len(traced.layers)
        if not -count <= settings["layer"] < count:
            raise UserError(f"layer={settings['layer']}: the model has {count} layers")
        layer = settings["layer"] % count
        h = traced.layers[layer]["h"]
        # A token's features are its last character's; its activation the state after it.
        ends = [end - 1 for _, end in traced.spans[: len(h)]]
        features = {k: v[ends] for k, v in text_features(text).items()}
        best = best_units(h, [text[e] for e in ends], features)
    gates = saturation(traced.layers)
    figure = None
    if any(gates):
        figure = figure_path.name
        title = f"gate saturation: {trained.name or trained.source}"
        save(saturation_figure(gates, title), figure_path)
    vocabulary = [trained.tokenizer.decode([i]) for i in range(trained.tokenizer.vocab_size)]
    data = page_data(
        traced,
        vocabulary,
        layer,
        best,
        baseline,
        name=trained.name or str(trained.source),
        gates=gates,
        figure=figure,
    )
    write_bytes_atomic(out, render(data).encode("utf-8"))
    return out


def _is_page(path: Path) -> bool:
    """Whether ``path`` is a page this command wrote (the only file it replaces)."""
    try:
        with path.open("rb") as f:
            return f.read(len(_PAGE_START)) == _PAGE_START.encode()
    except OSError:
        return False


def main(argv: list[str] | None = None) -> None:
    from gm.cli import run_or_exit

    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    settings, text = run_or_exit(parse, argv)
    out = run_or_exit(explore, settings, text)
    print(f"explorer: {out}")
