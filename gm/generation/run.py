"""One `generate.py` call: load a trained model, sample in the asked mode, print."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch
from omegaconf import DictConfig, OmegaConf

from gm.artifacts import TrainedModel, load_trained
from gm.data.corpus import read_corpus
from gm.data.tokenizer import Tokenizer
from gm.errors import UserError
from gm.generation.generate import generate
from gm.generation.sampling import SamplingOptions
from gm.generation.stats import text_stats, words
from gm.modes import MODES
from gm.settings import SEED, Setting, check_settings


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; anything else must be available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UserError(f"device={name} is not a device name (try cpu, cuda, auto)") from e
    if device.type not in ("cpu", "cuda", "mps"):  # (xla, vulkan, meta, ...: not gm's)
        raise UserError(f"device={name} is not a device gm generates on; use cpu, cuda or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name} asked for CUDA but this machine has none; use device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device={name} asked for Apple's MPS but this machine has none; use cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"device={name}: this machine has {torch.cuda.device_count()} CUDA devices")
    return device


# generate.py's precision= values, named as Lightning names them for training.
PRECISIONS = ("32-true", "bf16-mixed", "bf16-true")


def set_precision(model: torch.nn.Module, precision: str, device: torch.device):
    """Put ``model`` in ``precision``; return the context to sample in.

    ``bf16-mixed`` runs the products in bf16 under autocast with the state and weights in
    fp32, as training's ``bf16-mixed`` does; ``bf16-true`` casts the weights (and so the
    state) to bf16. Sampling itself always works on fp32 probabilities.
    """
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16-true":
        model.to(torch.bfloat16)
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# What to do with prompt characters the model never saw: refuse, or drop them.
ON_UNKNOWN = ("error", "skip")


def encode_prompt(trained: TrainedModel, prompt: str, on_unknown: str) -> tuple[list[int], str]:
    """Prompt ids and the text they encode; characters the tokenizer never saw are an error
    or, on request, dropped with a line on stderr that names them."""
    if on_unknown not in ON_UNKNOWN:
        raise UserError(f"on_unknown must be error or skip, got {on_unknown!r}")
    missing = trained.tokenizer.unknown(prompt)
    if missing and on_unknown == "error":
        raise UserError(
            f"the prompt has characters this model never saw: {''.join(missing)!r}; "
            "remove them or pass on_unknown=skip"
        )
    if missing:
        dropped = sum(c in set(missing) for c in prompt)
        prompt = "".join(c for c in prompt if c not in set(missing))
        print(
            f"on_unknown=skip: dropped {dropped} character{'' if dropped == 1 else 's'} this "
            f"model never saw ({', '.join(map(repr, missing))}); the prompt is {prompt!r}",
            file=sys.stderr,
        )
    ids = trained.tokenizer.encode(prompt)
    if not ids:
        dropped = " after dropping the characters this model never saw" if missing else ""
        raise UserError(f"the prompt is empty{dropped}; give at least one character")
    return ids, prompt


def training_vocabulary(trained: TrainedModel, corpus: str | None) -> set[str] | None:
    """Words of the training split, for the known-word share; None when the text is unknown."""
    path = corpus or trained.corpus.get("path")
    if not path or not Path(path).is_file():
        return None
    text = read_corpus(path, encoding=trained.corpus.get("encoding", "utf-8"))
    expected = trained.corpus.get("sha256")
    if corpus is None and expected and text.sha256 != expected:
        return None  # the file changed since training: its words are not the training words
    return set(words(text.read(*trained.split_range(0, text.chars))))


# Every option generate.py reads, with its type and range (checked by gm.settings).
GENERATE_SETTINGS: dict[str, Setting] = {
    "ckpt": Setting(str),
    "prompt": Setting(str),
    "max_new_tokens": Setting(int, low=0),
    "mode": Setting(str, choices=(*MODES, "compare")),
    "temperature": Setting(float, low=0),
    "top_k": Setting(int, low=1, nullable=True),
    "top_p": Setting(float, low=0, high=1, open_low=True, nullable=True),
    "num_samples": Setting(int, low=1),
    "seed": SEED,
    "device": Setting(str),
    "precision": Setting(str, choices=PRECISIONS),
    "window": Setting(int, low=1, nullable=True),
    "on_unknown": Setting(str, choices=ON_UNKNOWN),
    "corpus": Setting(str, nullable=True),
}


def _check(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "ckpt") or cfg.ckpt is None:
        raise UserError("pass ckpt= a run directory, a .ckpt file or an exported bundle")
    check_settings(cfg, GENERATE_SETTINGS)


def run(
    cfg: DictConfig, out: TextIO = sys.stdout, prompt_text: str | None = None
) -> list[dict[str, Any]]:
    """Generate as ``cfg`` says, streaming text to ``out``; return one record per sample.

    ``prompt_text`` is the command's free-text prompt (``prompt=``, standard input or
    ``prompt_file=``); None takes ``cfg.prompt``. It is passed beside the config, never put
    into it: OmegaConf would resolve ``${oc.env:...}`` and the like inside it."""
    _check(cfg)
    prompt_string = cfg.prompt if prompt_text is None else prompt_text
    options = SamplingOptions(cfg.temperature, cfg.top_k, cfg.top_p)
    device = pick_device(cfg.device)
    trained = load_trained(cfg.ckpt)
    options.check(trained.tokenizer.vocab_size)
    # The echo is the text the model reads: with on_unknown=skip, without what it dropped.
    prompt, prompt_string = encode_prompt(trained, prompt_string, cfg.on_unknown)
    model = trained.model.to(device)
    precision = set_precision(model, cfg.precision, device)
    window = int(cfg.window or trained.seq_len)
    modes = MODES if cfg.mode == "compare" else (cfg.mode,)
    vocabulary = training_vocabulary(trained, cfg.corpus) if cfg.mode == "compare" else None

    records = []
    for sample in range(cfg.num_samples):
        for mode in modes:
            if len(modes) > 1 or cfg.num_samples > 1:
                title = f"sample {sample + 1}, " if cfg.num_samples > 1 else ""
                out.write(f"\n===== {title}{mode} =====\n")
            # The generator is seeded after loading, per sample: same seed, same text,
            # and in `compare` every mode draws from the same random stream.
            generator = torch.Generator().manual_seed(int(cfg.seed) + sample)
            out.write(prompt_string)
            out.flush()
            stream = _Stream(out, trained.tokenizer)
            start = time.perf_counter()
            with precision:
                new = generate(
                    model,
                    prompt,
                    cfg.max_new_tokens,
                    mode,
                    options,
                    generator,
                    window=window,
                    on_token=stream.write,
                )
            seconds = time.perf_counter() - start
            stream.flush()
            text = trained.tokenizer.decode(new)
            record = {
                "sample": sample,
                "mode": mode,
                "tokens": new,
                "text": text,
                "tokens_per_s": len(new) / seconds if seconds > 0 else float("inf"),
            }
            if cfg.mode == "compare":
                record.update(text_stats(text, vocabulary))
                out.write("\n" + _format_stats(record) + "\n")
            else:  # speed on stderr, so stdout stays the text alone
                print(
                    f"\n[{mode}: {len(new)} tokens, {record['tokens_per_s']:,.0f} tokens/s]",
                    file=sys.stderr,
                )
            records.append(record)
    out.write("\n")
    return records


class _Stream:
    """Writes each token's text as soon as it is complete. A character split into byte
    pieces (SentencePiece byte fallback) waits until its last byte arrives."""

    def __init__(self, out: TextIO, tokenizer: Tokenizer) -> None:
        self.out, self.tokenizer = out, tokenizer
        self.pending: list[int] = []

    def write(self, token: int) -> None:
        self.pending.append(token)
        text = self.tokenizer.decode(self.pending)
        if text.endswith("\ufffd") and len(self.pending) < 4:  # a UTF-8 character has <= 4 bytes
            return
        self.out.write(text)
        self.out.flush()
        self.pending.clear()

    def flush(self) -> None:
        if self.pending:
            self.out.write(self.tokenizer.decode(self.pending))
            self.pending.clear()
        self.out.flush()


def _format_stats(r: dict[str, Any]) -> str:
    known = (
        "n/a (training text not found)" if r["known_words"] is None else f"{r['known_words']:.1%}"
    )
    return (
        f"[{r['mode']}] {len(r['tokens'])} tokens at {r['tokens_per_s']:,.0f} tokens/s · "
        f"distinct-2 {r['distinct_2']:.3f} · distinct-3 {r['distinct_3']:.3f} · "
        f"longest repeat {r['longest_repeat']} chars · words from the training text {known}"
    )
