"""A trained model's files: find a run's checkpoint, load it, and write, verify and read
bundles.

A bundle is a directory with

    model.safetensors   the weights
    config.yaml         model family and shape, tokenizer kind and file, training summary
    tokenizer.json      the tokenizer (or the SentencePiece model)
    SHA256SUMS          a checksum for each file above

Every file a bundle uses (the weights, config.yaml and the tokenizer file config.yaml
names) must be a plain file of the bundle directory itself, not a path or a link leading
out of it, and must be listed in SHA256SUMS with a matching digest; the loaded tokenizer
must have the fingerprint and vocabulary size config.yaml records, and that vocabulary
must be the model's. A bundle directory is made like any ``mkdir``: its permissions follow
the umask.

Training writes one into ``<run>/export`` when it ends (``replace_bundle``, so a failed
re-export keeps the old one); ``python -m gm.export`` makes one from any run or checkpoint.
A run directory is found by its own contents only: checkpoint paths in ``metrics.json`` are
read relative to the run and never lead out of it, so a copied run loads its own weights.

Nothing here unpickles code: checkpoints load with ``torch.load(weights_only=True)``,
bundles are safetensors plus YAML read with ``yaml.safe_load``, and the model class comes
from ``gm.models.MODEL_CLASSES``, never from a string in the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import secrets
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from gm.data.corpus import split_bounds
from gm.data.streams import SEQ_LEN, StreamBatches
from gm.data.tokenizer import Tokenizer, load_tokenizer, tokenizer_from_state
from gm.errors import UserError
from gm.models import MODEL_SETTINGS, build_model
from gm.run import Run, RunRecord, job_order, run_of
from gm.settings import Setting, check_values

FORMAT = "gm-bundle/1"
SUMS = "SHA256SUMS"

# Every field of a checkpoint's hyperparameters or a bundle's config.yaml that loading
# reads, checked by the rule a config is checked by: a file is input like a command line.
SAVED_SETTINGS: dict[str, Setting] = {
    "seq_len": Setting(int, low=1, nullable=True),
    "carry_state": Setting(bool, nullable=True),
    "tokenizer.vocab_size": Setting(int, low=1),
    "tokenizer.fingerprint": Setting(str),
    "tokenizer.file": Setting(str),
    **{f"model.{key}": setting for key, setting in MODEL_SETTINGS.items()},
}


@dataclass
class TrainedModel:
    """A model ready for inference, with what is needed to feed it."""

    model: nn.Module
    tokenizer: Tokenizer
    spec: dict[str, Any]  # the model config (``_target_`` and constructor arguments)
    seq_len: int  # the training chunk length: the window of the `chunk` mode
    source: Path
    carry_state: bool | None = None  # the training regime: carried state or windows
    training: dict[str, Any] = field(default_factory=dict)  # summary of the run that made it
    # What training recorded of the run: its name, corpus, data recipe, seed, overrides.
    record: RunRecord = field(default_factory=RunRecord)

    @property
    def name(self) -> str:
        """The model config it was trained from (e.g. astra_alpha); "" when not recorded."""
        return self.record.model_name

    @property
    def corpus(self) -> dict[str, Any]:
        """The training text's path, sha256 and encoding."""
        return self.record.corpus

    @property
    def data(self) -> dict[str, Any]:
        """The data recipe (batch_size, seq_len, carry_state, splits)."""
        return self.record.data

    def text_batches(self, text: str) -> StreamBatches:
        """``text`` as one stream in chunks of the training length, as a validation reads
        it (a text shorter than one chunk is one chunk: no mode resets inside it then,
        exactly as with the full window); its first token is context only."""
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        if len(ids) < 2:
            raise UserError("the text must hold at least two tokens: one to read, one to score")
        return StreamBatches(ids, 1, min(self.seq_len, len(ids) - 1), split="text", complete=True)

    def split_bounds(self, chars: int) -> list[tuple[int, int]]:
        """The character range of every split (training, validation[, test]) of a corpus of
        ``chars`` characters; runs that recorded none used the default split."""
        recorded = self.data.get("splits") or split_bounds(chars)
        return [(int(start), int(end)) for start, end in recorded]

    def split_range(self, index: int, chars: int) -> tuple[int, int]:
        """The character range of split ``index`` (0 training, 1 validation, 2 test)."""
        bounds = self.split_bounds(chars)
        if index >= len(bounds):
            raise UserError(f"{self.source} was trained without a split number {index}")
        return bounds[index]


def find_checkpoint(run_dir: Path) -> Path:
    """The best checkpoint of a run directory (lowest val/loss), else its last one.

    Only ever a file inside ``run_dir``: ``metrics.json`` names checkpoints relative to the
    run; an absolute path (older runs) is followed only while it lies inside ``run_dir``,
    else its file name is looked up in ``run_dir/checkpoints`` (a copied or moved run must
    not load the original's, which may hold another run by now).
    """
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        try:
            best = json.loads(metrics.read_text()).get("checkpoints", {}).get("best")
        except (ValueError, AttributeError):
            best = None
        if isinstance(best, str) and best:
            named = Path(best)
            candidate = named if named.is_absolute() else run_dir / named
            if candidate.is_file() and _inside(candidate, run_dir):
                return candidate
            by_name = run_dir / "checkpoints" / named.name
            if named.name and by_name.is_file():
                return by_name
    ckpts = run_dir / "checkpoints"
    candidates = sorted(ckpts.glob("best*.ckpt")) or sorted(ckpts.glob("last*.ckpt"))
    if not candidates:
        raise UserError(f"{run_dir} has no checkpoints/ with a .ckpt file; is it a training run?")
    return candidates[-1]


def _inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` lies in ``directory`` (as written, ``..`` folded, or once links are
    resolved: ``/tmp`` may be a link to ``/private/tmp``)."""
    lexical = Path(os.path.abspath(path)).is_relative_to(os.path.abspath(directory))
    return lexical or path.resolve().is_relative_to(directory.resolve())


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint's contents; anything else (truncated, foreign) is a UserError."""
    try:
        # weights_only: a checkpoint is data; nothing in it may run code.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError, ValueError) as e:
        raise UserError(f"{path} is not a PyTorch checkpoint gm can load safely") from e
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from e
    if not isinstance(ckpt, dict) or not {"state_dict", "hyper_parameters"} <= ckpt.keys():
        raise UserError(f"{path} is not a gm training checkpoint")
    hparams = ckpt["hyper_parameters"]
    if not isinstance(hparams, dict) or "model" not in hparams:
        raise UserError(f"{path} is not a gm training checkpoint (no model config)")
    check_saved(hparams, path)
    _named_tensors(ckpt["state_dict"], path)
    return ckpt


def load_checkpoint(path: Path) -> TrainedModel:
    """Load a Lightning checkpoint written by ``train.py``."""
    ckpt = read_checkpoint(path)
    hparams, record = ckpt["hyper_parameters"], RunRecord.from_payload(ckpt.get("gm"))
    if not record.tokenizer:
        raise UserError(f"{path} is not a gm training checkpoint (no tokenizer)")
    spec = dict(hparams["model"])
    prefix = "model."
    weights = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    model = build_for_weights(spec, {k: tuple(v.shape) for k, v in weights.items()}, path)
    load_weights(model, weights, path)
    tokenizer = tokenizer_from_state(record.tokenizer)
    check_vocabulary(tokenizer, spec, model, path)
    return TrainedModel(
        model=model.eval(),
        tokenizer=tokenizer,
        spec=spec,
        seq_len=int(hparams.get("seq_len") or SEQ_LEN),
        source=path,
        carry_state=hparams.get("carry_state"),
        record=record,
        # The run's summary (the same in every bundle of it) and this checkpoint's place.
        training={
            **run_of(path).summary(),
            "epoch": ckpt.get("epoch"),
            "global_step": ckpt.get("global_step"),
        },
    )


def check_saved(fields: dict[str, Any], source: Path) -> None:
    """Refuse a checkpoint's hyperparameters or a bundle's config whose model or data
    fields ``SAVED_SETTINGS`` does not accept, naming the field."""
    if not isinstance(fields.get("model"), dict):
        raise UserError(f"{source} is damaged or was edited: its model is not a model config")
    try:
        check_values(fields, SAVED_SETTINGS)
    except UserError as e:
        raise UserError(f"{source} is damaged or was edited: {e}") from None


def _named_tensors(state: Any, source: Path) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UserError(
            f"{source} is damaged or was edited: its state_dict is not a table of named tensors"
        )
    return state


def build_for_weights(
    spec: dict[str, Any], shapes: dict[str, tuple[int, ...]], source: Path
) -> nn.Module:
    """The model ``spec`` describes, built only once it is known to fit ``shapes`` (the
    weights' names and shapes, read without loading them).

    A config is checked against its weights before anything is allocated: an edited one
    (a million layers, a width of ten million; checksums are integrity, not authorship)
    would otherwise take the machine's memory. No size in the config may exceed the number
    of weights, no layer count the number of tensors, and the model built on torch's
    ``meta`` device (shapes, no memory) must have exactly the file's parameter shapes.
    """
    elements = sum(math.prod(shape) for shape in shapes.values())
    for key, value in spec.items():
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        bound = len(shapes) if key == "num_layers" else elements
        if value > max(bound, 1):
            raise UserError(
                f"{source} describes a model with {key}={value}, more than its weights "
                f"({len(shapes)} tensors, {elements:,} numbers) can hold; it is damaged or "
                "was edited"
            )
    with torch.device("meta"):
        skeleton = build_model(spec)
    # Buffers (an n-gram's counts) take their sizes from the file itself.
    expected = {name: tuple(p.shape) for name, p in skeleton.named_parameters()}
    if set(skeleton.state_dict()) != set(shapes) or any(
        tuple(shapes[name]) != shape for name, shape in expected.items()
    ):
        raise UserError(
            f"the weights in {source} do not fit the model they describe (its config's "
            "sizes and the weights' shapes differ)"
        )
    return build_model(spec)


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``weights`` into ``model``; a shape or name mismatch, or a weight that is
    not finite (it would make every sampled distribution NaN), is a ``UserError``."""
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(
                f"the weight {name} in {source} holds NaN or infinite values; the training "
                "diverged before this file was written, or the file was edited"
            )
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[1:2] or [str(e)]
        raise UserError(
            f"the weights in {source} do not fit the model they describe ({first[0].strip()})"
        ) from e


def check_vocabulary(
    tokenizer: Tokenizer, spec: dict[str, Any], model: nn.Module, source: Path
) -> None:
    """The tokenizer must speak the model's vocabulary (``spec["vocab_size"]``, else the
    built model's), or sampling would fail later on ids the tokenizer cannot decode."""
    expected = spec.get("vocab_size", getattr(model, "vocab_size", None))
    if expected is not None and tokenizer.vocab_size != expected:
        raise UserError(
            f"{source} has a tokenizer of {tokenizer.vocab_size} tokens but a model over "
            f"{expected}; it is damaged or was edited, export or train it again"
        )


def load_trained(path: str | Path) -> TrainedModel:
    """Load a run directory (its best checkpoint), a ``.ckpt`` file or a bundle directory."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path} does not exist; pass ckpt= a run directory, .ckpt or bundle")
    if path.is_dir():
        if is_bundle(path) or (path / SUMS).is_file():
            return read_bundle(path)
        return load_checkpoint(find_checkpoint(path))
    return load_checkpoint(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_bundle(directory: Path) -> bool:
    """Whether ``directory`` looks like a bundle: a config.yaml beside checksums or weights
    (one without checksums is a bundle that ``read_bundle`` refuses with a sentence)."""
    return (directory / "config.yaml").is_file() and (
        (directory / SUMS).is_file() or (directory / "model.safetensors").is_file()
    )


def write_bundle(trained: TrainedModel, out_dir: str | Path, training: dict | None = None) -> Path:
    """Write ``trained`` as a bundle into ``out_dir``, which must not exist or be empty.

    The files are written to a temporary directory beside it and moved into place at
    the end, so an interrupted export leaves no half bundle.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} already exists and is not empty; choose a new directory")
    tmp = _stage(trained, out_dir, training)
    try:
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(tmp, out_dir)
    except OSError as e:
        raise _unwritable(out_dir, e) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def replace_bundle(
    trained: TrainedModel, out_dir: str | Path, training: dict | None = None
) -> Path:
    """Write ``trained`` as a bundle into ``out_dir``, replacing the bundle there if any.

    The new bundle is written completely beside ``out_dir`` first; only then is the old
    one renamed aside, the new one renamed into place and the old one deleted. If writing
    or the swap fails (a full disk) the old bundle stays as it was and the error is a
    ``UserError``; no temporary directory is left behind. ``out_dir`` may also not exist
    or be empty; anything else that is not a bundle is refused, never deleted.
    (A process killed between the two renames leaves the old bundle in a hidden
    ``.<name>.old.*`` directory beside ``out_dir``.)
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not (
        out_dir.is_dir() and (is_bundle(out_dir) or not any(out_dir.iterdir()))
    ):
        raise UserError(f"{out_dir} exists and is not a bundle; gm replaces only a bundle there")
    tmp = _stage(trained, out_dir, training)
    aside: Path | None = None
    try:
        if out_dir.exists():
            aside = _fresh_name(out_dir, "old")
            os.replace(out_dir, aside)
        try:
            os.replace(tmp, out_dir)
        except OSError as e:
            if aside is not None:
                try:
                    os.replace(aside, out_dir)
                except OSError:
                    raise UserError(
                        f"cannot write the bundle {out_dir}: {e.strerror or e}; the old bundle "
                        f"is kept in {aside}, rename it back to {out_dir.name}"
                    ) from e
            raise
    except OSError as e:
        raise _unwritable(out_dir, e) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return out_dir


def _unwritable(out_dir: Path, e: OSError | SafetensorError) -> UserError:
    reason = getattr(e, "strerror", None) or str(e).rsplit(": ", 1)[-1].split(" (os error")[0]
    return UserError(f"cannot write the bundle {out_dir}: {reason}; {out_dir} is unchanged")


def _fresh_name(out_dir: Path, tag: str) -> Path:
    """A hidden name beside ``out_dir`` that does not exist yet."""
    while True:
        path = out_dir.parent / f".{out_dir.name}.{tag}.{secrets.token_hex(4)}"
        if not path.exists() and not path.is_symlink():
            return path


def _stage(trained: TrainedModel, out_dir: Path, training: dict | None) -> Path:
    """Write the bundle into a new hidden directory beside ``out_dir``; return it.

    The directory is made with ``mkdir`` mode 0777 and its files get a plain new file's
    mode, so both follow the umask like anything else the user makes (not
    ``tempfile.mkdtemp``'s 0700, which would hide a shared bundle from everyone else).
    A failure removes it and is a ``UserError``.
    """
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = _fresh_name(out_dir, "new")
            try:
                tmp.mkdir(mode=0o777)
                break
            except FileExistsError:
                continue
    except OSError as e:
        raise _unwritable(out_dir, e) from e
    try:
        _write_files(trained, tmp, training)
        # Some writers (safetensors) create 0600 files: give each the mode a plain new file
        # gets here, which honours the umask (and a default ACL) without changing it.
        probe = tmp / ".mode"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        mode = probe.stat().st_mode & 0o777
        probe.unlink()
        for f in tmp.iterdir():
            f.chmod(mode)
    except (OSError, SafetensorError) as e:  # (safetensors reports a full disk as its own)
        shutil.rmtree(tmp, ignore_errors=True)
        raise _unwritable(out_dir, e) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _write_files(trained: TrainedModel, directory: Path, training: dict | None) -> None:
    """The bundle's files, SHA256SUMS last, into the existing empty ``directory``."""
    weights = {k: v.detach().cpu().contiguous() for k, v in trained.model.state_dict().items()}
    save_file(weights, directory / "model.safetensors")
    tokenizer_file = trained.tokenizer.save(directory).name
    config = {
        "format": FORMAT,
        "model": trained.spec,
        "tokenizer": {
            "kind": trained.tokenizer.kind,
            "file": tokenizer_file,
            "vocab_size": trained.tokenizer.vocab_size,
            "fingerprint": trained.tokenizer.fingerprint,
        },
        "seq_len": trained.seq_len,
        "name": trained.name,
        "carry_state": trained.carry_state,
        "corpus": trained.corpus,
        "data": trained.data,
        "seed": trained.record.seed,
        "train_seed": trained.record.train_seed,
        "precision": trained.record.precision,
        "overrides": trained.record.overrides,
        "training": training if training is not None else trained.training,
    }
    (directory / "config.yaml").write_text(
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    )
    files = sorted(p.name for p in directory.iterdir())
    (directory / SUMS).write_text("".join(f"{_sha256(directory / f)}  {f}\n" for f in files))


def verify_bundle(directory: Path) -> dict[str, Any]:
    """Check the bundle's files against ``SHA256SUMS``; return its parsed config.yaml.

    Every listed file must match its digest, and every file the bundle uses (config.yaml,
    model.safetensors and the tokenizer file config.yaml names) must be a plain file of
    ``directory`` that is listed. Anything else is a ``UserError``.
    """
    directory = Path(directory)
    if not (directory / SUMS).is_file():
        raise UserError(
            f"{directory} looks like a bundle but has no {SUMS}; gm loads only bundles whose "
            "files are checksummed, re-export it (python -m gm.export RUN_OR_CKPT OUT_DIR)"
        )
    _check_inside(directory, SUMS)
    listed: dict[str, str] = {}
    try:
        sums = (directory / SUMS).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {directory / SUMS}: {e}") from e
    for line in sums.splitlines():
        digest, _, name = line.partition("  ")
        if not _plain_name(name) or name.startswith("."):
            raise UserError(f"{directory / SUMS} is malformed; re-export the bundle")
        listed[name] = digest
    for required in ("config.yaml", "model.safetensors"):
        _check_listed(directory, listed, required)
    for name, digest in listed.items():
        path = directory / name
        if not path.is_file():
            raise UserError(f"bundle {directory} is missing {name}")
        _check_inside(directory, name)
        if _sha256(path) != digest:
            raise UserError(
                f"bundle {directory}: {name} does not match its checksum in {SUMS}; "
                "the file was changed or corrupted, re-export or re-download it"
            )
    try:
        config = yaml.safe_load((directory / "config.yaml").read_text())
        tokenizer_file = config["tokenizer"]["file"]
    except (yaml.YAMLError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise UserError(f"{directory}/config.yaml is not a gm bundle config") from e
    if not isinstance(tokenizer_file, str) or not _plain_name(tokenizer_file):
        raise UserError(
            f"bundle {directory}: config.yaml names the tokenizer file {tokenizer_file!r}, "
            "which is not a plain file name inside the bundle; re-export the bundle"
        )
    _check_listed(directory, listed, tokenizer_file)
    return config


def _plain_name(name: str) -> bool:
    """A file name of the directory itself: no separator, not absolute, not ``.``/``..``."""
    return bool(name) and name not in (".", "..") and not {"/", "\\", os.sep} & set(name)


def _check_listed(directory: Path, listed: dict[str, str], name: str) -> None:
    if name not in listed:
        raise UserError(f"{directory}/{SUMS} does not list {name}; re-export the bundle")


def _check_inside(directory: Path, name: str) -> None:
    """``name`` must not be a link that leads out of ``directory``."""
    if (directory / name).resolve().parent != directory.resolve():
        raise UserError(
            f"bundle {directory}: {name} is a link to a file outside the bundle; "
            "copy the file into the bundle or re-export it"
        )


def read_bundle(directory: str | Path) -> TrainedModel:
    """Load a bundle after verifying its checksums and that its tokenizer matches its
    config and its model; nothing is unpickled."""
    directory = Path(directory)
    config = verify_bundle(directory)
    try:
        spec, tok = dict(config["model"]), config["tokenizer"]
        recorded = (str(tok["fingerprint"]), int(tok["vocab_size"]))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{directory}/config.yaml is not a gm bundle config") from e
    check_saved(config, directory / "config.yaml")
    if config.get("format") != FORMAT:
        raise UserError(f"{directory} is a bundle of format {config.get('format')!r}, not {FORMAT}")
    weights_file = directory / "model.safetensors"
    try:
        # The header alone: names and shapes, before any tensor is read.
        with safe_open(weights_file, framework="pt") as header:
            shapes = {k: tuple(header.get_slice(k).get_shape()) for k in header.keys()}  # noqa: SIM118
        model = build_for_weights(spec, shapes, directory)
        weights = load_file(weights_file)
    except (SafetensorError, OSError) as e:
        raise UserError(f"{directory}/model.safetensors cannot be read: {e}") from e
    load_weights(model, weights, directory)
    tokenizer = load_tokenizer(directory / tok["file"])
    if tokenizer.fingerprint != recorded[0]:
        raise UserError(
            f"{directory}/config.yaml records tokenizer fingerprint {recorded[0]} but "
            f"{tok['file']} has {tokenizer.fingerprint}; re-export the bundle"
        )
    if tokenizer.vocab_size != recorded[1]:
        raise UserError(
            f"{directory}/config.yaml records a vocabulary of {recorded[1]} tokens but "
            f"{tok['file']} has {tokenizer.vocab_size}; re-export the bundle"
        )
    check_vocabulary(tokenizer, spec, model, directory)
    return TrainedModel(
        model=model.eval(),
        tokenizer=tokenizer,
        spec=spec,
        seq_len=int(config.get("seq_len") or SEQ_LEN),
        source=directory,
        carry_state=config.get("carry_state"),
        training=config["training"] if isinstance(config.get("training"), dict) else {},
        # The bundle's config holds the record's fields (the tokenizer is its own file).
        record=RunRecord.from_payload(
            {**config, "model_name": config.get("name"), "tokenizer": {}}
        ),
    )


def is_trained_model(path: Path) -> bool:
    """Whether ``load_trained`` takes ``path``: a ``.ckpt`` file, a run directory with a
    checkpoint, or a bundle. (Figures, logs and other files beside them are not.)"""
    if path.is_file():
        return path.suffix == ".ckpt"
    return Run(path).has_checkpoint() or (path / SUMS).is_file() or is_bundle(path)


def find_trained(path: Path) -> list[Path]:
    """``path`` if it is a trained model, else the trained models anywhere below it (a
    sweep, a folder of runs), in order; nothing inside a run or bundle is searched."""
    if is_trained_model(path):
        return [path]
    if not path.is_dir() or path.name.startswith("."):
        return []
    children = sorted(path.iterdir(), key=job_order)
    return [found for child in children for found in find_trained(child)]
