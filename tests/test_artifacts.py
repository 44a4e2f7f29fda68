"""Bundles: round trip to identical logits, checksums enforced over every file a bundle
uses, nothing overwritten or lost; run directories that load their own checkpoints wherever
they are copied."""

from __future__ import annotations

import copy
import errno
import hashlib
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import gm.artifacts as artifacts
from gm.artifacts import find_checkpoint, load_checkpoint, load_trained, read_bundle, write_bundle
from gm.errors import UserError
from tests.conftest import ROOT, run_script
from tests.entrypoints import run_entrypoint
from tests.test_errors import tree
from tests.test_settings import VALUES, assert_exit_0_or_one_sentence


def test_round_trip_gives_identical_logits(trained_run: Path, tmp_path: Path) -> None:
    original = load_checkpoint(find_checkpoint(trained_run))
    bundle = read_bundle(write_bundle(original, tmp_path / "bundle"))
    tokens = torch.randint(0, original.tokenizer.vocab_size, (2, 50))
    with torch.no_grad():
        assert torch.equal(original.model(tokens)[0], bundle.model(tokens)[0])
    assert bundle.tokenizer.fingerprint == original.tokenizer.fingerprint
    assert bundle.seq_len == original.seq_len and bundle.spec == original.spec


def test_training_exports_a_bundle_of_the_best_checkpoint(trained_run: Path) -> None:
    bundle = load_trained(trained_run / "export")
    best = load_checkpoint(find_checkpoint(trained_run))
    for (k, a), (_, b) in zip(
        bundle.model.state_dict().items(), best.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    assert bundle.training["best"]["val/loss"] > 0


def test_tampered_bundle_is_refused(trained_run: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_run / "export", bundle)
    data = bytearray((bundle / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (bundle / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match its checksum"):
        read_bundle(bundle)


def test_export_cli_makes_a_bundle_and_never_overwrites(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    proc = run_script("gm.export", str(trained_run), str(out))
    assert proc.returncode == 0, proc.stderr
    assert load_trained(out).tokenizer.vocab_size > 0
    before = (out / "SHA256SUMS").read_bytes()
    proc = run_script("gm.export", str(trained_run), str(out))
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "SHA256SUMS").read_bytes() == before


def test_an_exported_bundle_carries_the_runs_summary(trained_run: Path, tmp_path: Path) -> None:
    """``python -m gm.export`` and training's own ``export/`` bundle record the same
    training summary and data recipe (the former lacked the best scores)."""
    out = tmp_path / "exported"
    assert run_script("gm.export", str(trained_run), str(out)).returncode == 0
    exported, automatic = (
        yaml.safe_load((d / "config.yaml").read_text()) for d in (out, trained_run / "export")
    )
    assert exported["training"] == automatic["training"]
    assert exported["training"]["best"]["val/loss"] > 0
    assert exported["data"] == automatic["data"] and exported["data"]["splits"][1][1] > 0


def _resign(bundle: Path) -> None:
    """Rewrite SHA256SUMS as a hostile sender would after editing a file."""
    import hashlib

    lines = (bundle / "SHA256SUMS").read_text().splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    sums = "".join(f"{hashlib.sha256((bundle / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    (bundle / "SHA256SUMS").write_text(sums)


FOREIGN = "builtins.exec"  # what a file could name to have code run


def test_a_bundle_naming_a_foreign_class_is_refused(trained_run: Path, tmp_path: Path) -> None:
    """Checksums that match do not make a foreign ``_target_`` acceptable: the model class
    comes from gm's own table, never from the file."""
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_run / "export", bundle)
    config = (bundle / "config.yaml").read_text()
    assert "_target_: gm.models.RecurrentLM" in config
    (bundle / "config.yaml").write_text(config.replace("gm.models.RecurrentLM", FOREIGN))
    _resign(bundle)
    with pytest.raises(UserError, match=f"unknown model class '{FOREIGN}'"):
        load_trained(bundle)


@pytest.mark.parametrize(
    "edit,needle",
    [
        ("num_layers: 1000000", "num_layers=1000000, more than its weights"),
        ("hidden_dim: 10000000", "hidden_dim=10000000, more than its weights"),
        ("hidden_dim: 24", "do not fit the model they describe"),
    ],
)
def test_a_bundle_describing_a_huge_model_is_refused_before_allocating(
    trained_run: Path, tmp_path: Path, edit: str, needle: str
) -> None:
    """A config edited to a million layers (with its checksums recomputed) grew
    generate.py to 24 GB until the kernel killed processes. The config is checked against
    the weights file's header first; the whole command runs here under a 3 GB address
    space limit and answers in one sentence."""
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_run / "export", bundle)
    config = (bundle / "config.yaml").read_text()
    key = edit.split(":")[0]
    lines = [f"  {edit}" if line.strip().startswith(f"{key}:") else line
             for line in config.splitlines()]  # fmt: skip
    assert lines != config.splitlines()
    (bundle / "config.yaml").write_text("\n".join(lines) + "\n")
    _resign(bundle)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))"
    proc = subprocess.run(
        [sys.executable, "-c", f"{limit}; import runpy, sys; sys.argv = sys.argv[1:]; "
         "runpy.run_path(sys.argv[0], run_name='__main__')",
         str(ROOT / "generate.py"), f"ckpt={bundle}", "max_new_tokens=5"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_a_checkpoint_naming_a_foreign_class_is_refused(trained_run: Path, tmp_path: Path) -> None:
    ckpt = torch.load(find_checkpoint(trained_run), map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["model"]["_target_"] = FOREIGN
    path = tmp_path / "foreign.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=f"unknown model class '{FOREIGN}'"):
        load_trained(path)
    proc = run_script("generate.py", f"ckpt={path}")
    assert proc.returncode == 2 and "unknown model class" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_checkpoint_describing_a_huge_model_is_refused(trained_run: Path, tmp_path: Path):
    ckpt = torch.load(find_checkpoint(trained_run), map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["model"]["num_layers"] = 1_000_000
    path = tmp_path / "huge.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(UserError, match="num_layers=1000000, more than its weights"):
        load_trained(path)


# --- every file a bundle uses is inside it and checksummed ---------------------------------


def _copy_bundle(trained_run: Path, tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_run / "export", bundle)
    return bundle


def _edit_config(bundle: Path, **tokenizer: object) -> None:
    config = yaml.safe_load((bundle / "config.yaml").read_text())
    config["tokenizer"].update(tokenizer)
    (bundle / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _fewer_chars(path: Path) -> list[str]:
    """Drop the tokenizer file's last character; return the new vocabulary."""
    state = json.loads(path.read_text())
    state["chars"] = state["chars"][:-1]
    path.write_text(json.dumps(state))
    return state["chars"]


def test_a_tokenizer_missing_from_SHA256SUMS_is_refused(trained_run: Path, tmp_path: Path) -> None:
    """Removing the tokenizer's line must not make the tokenizer editable."""
    bundle = _copy_bundle(trained_run, tmp_path)
    state = json.loads((bundle / "tokenizer.json").read_text())
    state["chars"][0], state["chars"][1] = state["chars"][1], state["chars"][0]
    (bundle / "tokenizer.json").write_text(json.dumps(state))
    sums = bundle / "SHA256SUMS"
    lines = sums.read_text().splitlines(keepends=True)
    sums.write_text("".join(line for line in lines if not line.endswith("  tokenizer.json\n")))
    with pytest.raises(UserError, match=r"SHA256SUMS does not list tokenizer.json; re-export"):
        load_trained(bundle)


@pytest.mark.parametrize("where", ["parent", "absolute", "subdirectory"])
def test_a_tokenizer_file_outside_the_bundle_is_refused(
    trained_run: Path, tmp_path: Path, where: str
) -> None:
    """config.yaml's tokenizer.file names a file of the bundle, nothing else, even when the
    sender re-signs the config."""
    bundle = _copy_bundle(trained_run, tmp_path)
    target = {
        "parent": tmp_path / "tokenizer.json",
        "absolute": tmp_path / "elsewhere" / "tokenizer.json",
        "subdirectory": bundle / "sub" / "tokenizer.json",
    }[where]
    target.parent.mkdir(exist_ok=True)
    shutil.copy(bundle / "tokenizer.json", target)
    name = {"parent": "../tokenizer.json", "absolute": str(target)}.get(where, "sub/tokenizer.json")
    _edit_config(bundle, file=name)
    _resign(bundle)
    with pytest.raises(UserError, match="not a plain file name inside the bundle"):
        load_trained(bundle)


def test_a_bundle_file_linking_outside_is_refused(trained_run: Path, tmp_path: Path) -> None:
    bundle = _copy_bundle(trained_run, tmp_path)
    outside = tmp_path / "outside.json"
    shutil.copy(bundle / "tokenizer.json", outside)
    (bundle / "tokenizer.json").unlink()
    (bundle / "tokenizer.json").symlink_to(outside)
    _resign(bundle)
    with pytest.raises(UserError, match=r"tokenizer\.json is a link to a file outside the bundle"):
        load_trained(bundle)


def test_a_bundle_without_SHA256SUMS_says_so(trained_run: Path, tmp_path: Path) -> None:
    bundle = _copy_bundle(trained_run, tmp_path)
    (bundle / "SHA256SUMS").unlink()
    message = f"{bundle} looks like a bundle but has no SHA256SUMS; "
    for load in (load_trained, read_bundle):
        with pytest.raises(UserError, match=message):
            load(bundle)
    proc = run_script("generate.py", f"ckpt={bundle}")
    assert proc.returncode == 2 and "has no SHA256SUMS" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("edit", ["fingerprint", "vocab_size", "model"])
def test_a_bundle_whose_tokenizer_disagrees_is_refused(
    trained_run: Path, tmp_path: Path, edit: str
) -> None:
    """Checksums that match do not make a tokenizer that contradicts config.yaml, or a
    vocabulary that is not the model's, acceptable."""
    bundle = _copy_bundle(trained_run, tmp_path)
    vocab = load_trained(bundle).tokenizer.vocab_size
    if edit == "fingerprint":
        _edit_config(bundle, fingerprint="0" * 16)
        expected = r"records tokenizer fingerprint 0{16} but tokenizer.json has [0-9a-f]{16}"
    elif edit == "vocab_size":
        _edit_config(bundle, vocab_size=vocab + 1)
        expected = f"records a vocabulary of {vocab + 1} tokens but tokenizer.json has {vocab}"
    else:  # a consistent tokenizer file and config, but not the model's vocabulary
        chars = _fewer_chars(bundle / "tokenizer.json")
        fingerprint = artifacts.load_tokenizer(bundle / "tokenizer.json").fingerprint
        _edit_config(bundle, vocab_size=len(chars), fingerprint=fingerprint)
        expected = f"has a tokenizer of {vocab - 1} tokens but a model over {vocab}"
    _resign(bundle)
    with pytest.raises(UserError, match=expected):
        load_trained(bundle)


def test_a_checkpoint_whose_tokenizer_does_not_fit_its_model_is_refused(
    trained_run: Path, tmp_path: Path
) -> None:
    ckpt = torch.load(find_checkpoint(trained_run), map_location="cpu", weights_only=True)
    vocab = ckpt["hyper_parameters"]["model"]["vocab_size"]
    ckpt["gm"]["tokenizer"]["chars"] = ckpt["gm"]["tokenizer"]["chars"][:-1]
    path = tmp_path / "short.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=f"has a tokenizer of {vocab - 1} tokens but a model over"):
        load_trained(path)
    proc = run_script("generate.py", f"ckpt={path}", "max_new_tokens=50")
    assert proc.returncode == 2 and "tokenizer of" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- a run directory loads its own checkpoint wherever it lives -----------------------------


def _perturb(path: Path) -> None:
    """Change a checkpoint's weights in place."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {k: v + 1 for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, path)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def _copy_run(trained_run: Path, dest: Path, best: str) -> Path:
    """A copy of the shared run with its checkpoints, ``metrics.json`` naming ``best``
    (formatted with the copy's path)."""
    shutil.copytree(trained_run, dest, ignore=shutil.ignore_patterns("export"))
    metrics = json.loads((dest / "metrics.json").read_text())
    metrics["checkpoints"]["best"] = best.format(run=dest)
    (dest / "metrics.json").write_text(json.dumps(metrics))
    return dest


def test_a_copied_run_loads_its_own_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    """An old run's metrics.json holds absolute paths: the copy must not follow them back
    into the original, which may hold a newer run by now."""
    name = find_checkpoint(trained_run).name
    a = _copy_run(trained_run, tmp_path / "a", "{run}/checkpoints/" + name)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    _perturb(a / "checkpoints" / name)
    assert find_checkpoint(b) == b / "checkpoints" / name
    original = load_checkpoint(find_checkpoint(trained_run)).model
    assert _same_weights(load_trained(b).model, original)
    assert not _same_weights(load_trained(a).model, original)  # not vacuous


def test_relative_checkpoint_paths_are_resolved_against_the_run(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """metrics.json names checkpoints relative to the run, whatever the working directory;
    a path that leaves the run is not followed."""
    name = find_checkpoint(trained_run).name
    run = _copy_run(trained_run, tmp_path / "run", "checkpoints/" + name)
    shutil.copy(run / "checkpoints" / name, run / "checkpoints" / "best-epoch99.ckpt")
    monkeypatch.chdir(tmp_path)
    assert find_checkpoint(run) == run / "checkpoints" / name
    metrics = json.loads((run / "metrics.json").read_text())
    other = _copy_run(trained_run, tmp_path / "other", "checkpoints/" + name)
    metrics["checkpoints"]["best"] = f"../other/checkpoints/{name}"
    (run / "metrics.json").write_text(json.dumps(metrics))
    _perturb(run / "checkpoints" / name)
    assert find_checkpoint(run) == run / "checkpoints" / name
    assert other.is_dir()


# --- replacing a bundle never loses the old one ---------------------------------------------


def _changed(trained: artifacts.TrainedModel) -> artifacts.TrainedModel:
    new = copy.deepcopy(trained)
    with torch.no_grad():
        for p in new.model.parameters():
            p.add_(1)
    return new


def test_export_onto_a_full_disk_is_one_sentence(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """safetensors reports a full disk as its own error, not an OSError."""

    def disk_full(tensors: dict, path: Path) -> None:
        Path(path).write_bytes(b"\0" * 10)
        raise SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(artifacts, "save_file", disk_full)
    out = tmp_path / "bundle"
    with pytest.raises(
        UserError, match=f"^cannot write the bundle {out}: No space left on device;"
    ):
        write_bundle(load_checkpoint(find_checkpoint(trained_run)), out)
    assert os.listdir(tmp_path) == []  # no half bundle, no temporary directory


def test_replace_bundle_keeps_the_old_one_when_writing_fails(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = load_checkpoint(find_checkpoint(trained_run))
    new = _changed(old)
    out = write_bundle(old, tmp_path / "bundle")

    def disk_full(tensors: dict, path: Path) -> None:
        Path(path).write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(artifacts, "save_file", disk_full)
    with pytest.raises(UserError, match=f"cannot write the bundle {out}: No space left on device"):
        artifacts.replace_bundle(new, out, {"run": "new"})
    monkeypatch.undo()
    artifacts.verify_bundle(out)
    assert _same_weights(load_trained(out).model, old.model)
    assert os.listdir(tmp_path) == ["bundle"]

    real_replace, failed = os.replace, []

    def fail_moving_the_new_one_in(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == out and not failed:  # the new bundle; putting the old one back works
            failed.append(src)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", fail_moving_the_new_one_in)
    with pytest.raises(UserError, match="Input/output error"):
        artifacts.replace_bundle(new, out, {"run": "new"})
    monkeypatch.undo()
    assert _same_weights(load_trained(out).model, old.model)
    assert os.listdir(tmp_path) == ["bundle"]

    assert artifacts.replace_bundle(new, out, {"run": "new"}) == out
    loaded = load_trained(out)
    assert _same_weights(loaded.model, new.model) and loaded.training == {"run": "new"}
    assert os.listdir(tmp_path) == ["bundle"]


def test_replace_bundle_creates_a_new_one_and_never_replaces_other_files(
    trained_run: Path, tmp_path: Path
) -> None:
    trained = load_checkpoint(find_checkpoint(trained_run))
    out = artifacts.replace_bundle(trained, tmp_path / "new" / "bundle", None)
    assert _same_weights(load_trained(out).model, trained.model)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="is not a bundle"):
        artifacts.replace_bundle(trained, notes, None)
    assert (notes / "keep.txt").read_text() == "mine"


# --- bundles are as readable as any directory the user makes -------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_a_bundle_follows_the_umask(trained_run: Path, tmp_path: Path, umask: int) -> None:
    """Like any directory ``mkdir`` makes: with umask 022 others may read a shared bundle."""

    def assert_modes(out: Path) -> None:
        assert out.stat().st_mode & 0o777 == 0o777 & ~umask
        for f in out.iterdir():
            assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f

    trained = load_checkpoint(find_checkpoint(trained_run))
    before = os.umask(umask)
    try:
        assert_modes(write_bundle(trained, tmp_path / "bundle"))
        assert_modes(artifacts.replace_bundle(trained, tmp_path / "bundle", None))
    finally:
        os.umask(before)


# --- the crafted files the review tried, each refused by name -------------------------------


def _crafted_chars(ckpt: dict, chars: Any) -> None:
    ckpt["gm"]["tokenizer"]["chars"] = chars


@pytest.mark.parametrize(
    "craft,needle",
    [
        (lambda c: _crafted_chars(c, ["a"] * 23), "tokenizer is damaged or was edited"),
        (lambda c: _crafted_chars(c, ["ab", *"cdefghijklmnopqrstuvw"]), "tokenizer is damaged"),
        (lambda c: _crafted_chars(c, None), "tokenizer is damaged"),
        (lambda c: c["hyper_parameters"].update(model="astra_alpha"), "model is not a model"),
        (lambda c: c["hyper_parameters"].update(seq_len="abc"), "seq_len must be an integer"),
        (lambda c: c.update(state_dict=[1, 2]), "state_dict is not a table of named tensors"),
        (lambda c: c["hyper_parameters"]["model"].update(hidden_dim=-1), "model.hidden_dim must"),
        (lambda c: c["state_dict"]["model.head.weight"].fill_(math.nan), "model.head.weight|head"),
        (lambda c: c["state_dict"]["model.head.bias"].fill_(math.inf), "NaN or infinite"),
        (lambda c: c["gm"]["tokenizer"].update(kind=["char"]), "unknown tokenizer kind"),
    ],
)
def test_a_crafted_checkpoint_is_refused_by_name(
    trained_run: Path, tmp_path: Path, craft, needle: str
) -> None:
    ckpt = torch.load(find_checkpoint(trained_run), map_location="cpu", weights_only=True)
    craft(ckpt)
    torch.save(ckpt, tmp_path / "crafted.ckpt")
    with pytest.raises(UserError, match=needle):
        load_trained(tmp_path / "crafted.ckpt")


@pytest.mark.parametrize("fill", [math.nan, math.inf])
def test_a_bundle_with_a_non_finite_weight_is_refused_by_name(
    trained_run: Path, tmp_path: Path, fill: float
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(trained_run / "export", bundle)
    weights = load_file(bundle / "model.safetensors")
    weights["head.bias"][3] = fill
    save_file(weights, bundle / "model.safetensors")
    _rewrite_sums(bundle)
    with pytest.raises(UserError, match=r"the weight head.bias in .* holds NaN or infinite"):
        load_trained(bundle)


def _rewrite_sums(bundle: Path) -> None:
    """SHA256SUMS for the bundle's files as they are now: checksums are not authorship."""
    sums = "".join(
        f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n"
        for f in sorted(bundle.iterdir())
        if f.name != "SHA256SUMS"
    )
    (bundle / "SHA256SUMS").write_text(sums)


# --- crafted checkpoints and bundles -------------------------------------------------------
#
# Files a hostile or careless hand made: random values of every type at every field a
# checkpoint or bundle carries, checksums recomputed. Loading one for generation ends in exit
# 0 or one sentence (exit 2), never a traceback, never maps more than MEMORY of address
# space (a generate run peaks near 0.9 GiB), and never changes a byte of the run it came from.

MEMORY = 3 * 2**30
CRAFTED = itertools.count()
_TENSORS = st.builds(
    lambda shape, fill: torch.full(shape, fill),
    st.lists(st.integers(0, 3), max_size=3).map(tuple),
    st.sampled_from([0.0, 1.0, math.nan, math.inf, -math.inf]),
)
# Plain values (what YAML and the checkpoint's payload hold), and sizes a config may claim.
_PLAIN = st.one_of(st.sampled_from([10**6, 10**7, 2**62, {}, [], "", "ab", {"a": 1}]), VALUES)


def _leaves(payload: Any, path: tuple = ()) -> list[tuple]:
    """The key path of every leaf of nested dicts (a list or a tensor is a leaf)."""
    if isinstance(payload, dict) and payload:
        return [leaf for key, value in payload.items() for leaf in _leaves(value, (*path, key))]
    return [path]


def _set(payload: dict, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        payload = payload[key]
    payload[path[-1]] = value


class _Loaded(dict):
    """A checkpoint's contents that hypothesis does not print in full on a failure."""

    def __repr__(self) -> str:
        return "<the trained run's checkpoint>"


@pytest.fixture(scope="module")
def source_ckpt(trained_run: Path) -> dict:
    return _Loaded(torch.load(find_checkpoint(trained_run), map_location="cpu", weights_only=True))


# Every field a checkpoint carries that loading it for generation may read ("*": any
# tensor of the state_dict). The optimizer's and loops' state are Lightning's, read on
# resume; gm.rng and gm.train_state too.
CHECKPOINT_FIELDS = [
    *(f"hyper_parameters.model.{k}" for k in ("_target_", "vocab_size", "cell", "emb_dim")),
    *(f"hyper_parameters.model.{k}" for k in ("hidden_dim", "num_layers", "dropout")),
    "hyper_parameters.model.layer_norm",
    "hyper_parameters.model",
    "hyper_parameters.optimizer",
    "hyper_parameters.scheduler",
    *(f"hyper_parameters.tokenizer.{k}" for k in ("kind", "fingerprint", "vocab_size")),
    "hyper_parameters.tokenizer.char_lengths",
    *(f"hyper_parameters.{k}" for k in ("carry_state", "seq_len", "compile", "chunk_lens")),
    "gm",
    "gm.model_name",
    "gm.tokenizer.kind",
    "gm.tokenizer.chars",
    *(f"gm.corpus.{k}" for k in ("path", "sha256", "encoding")),
    *(f"gm.data.{k}" for k in ("batch_size", "seq_len", "carry_state", "splits")),
    *(f"gm.{k}" for k in ("seed", "train_seed", "precision", "overrides")),
    "state_dict",
    "state_dict.*",
    "epoch",
    "global_step",
]
# Every field of a bundle's files: config.yaml, tokenizer.json, the weights ("*" as above).
BUNDLE_FIELDS = [
    *(f"config.yaml:{k}" for k in ("format", "model", "tokenizer", "seq_len", "name")),
    *(f"config.yaml:model.{k}" for k in ("_target_", "vocab_size", "cell", "emb_dim")),
    *(f"config.yaml:model.{k}" for k in ("hidden_dim", "num_layers", "dropout", "layer_norm")),
    *(f"config.yaml:tokenizer.{k}" for k in ("kind", "file", "vocab_size", "fingerprint")),
    *(f"config.yaml:{k}" for k in ("carry_state", "corpus", "data", "training")),
    *(f"config.yaml:corpus.{k}" for k in ("path", "sha256", "encoding")),
    *(f"config.yaml:data.{k}" for k in ("batch_size", "seq_len", "carry_state", "splits")),
    *(f"config.yaml:{k}" for k in ("seed", "train_seed", "precision", "overrides")),
    *(f"config.yaml:training.{k}" for k in ("best", "epochs", "steps", "parameters")),
    *(f"config.yaml:training.{k}" for k in ("epoch", "global_step", "best.val/bpc")),
    "tokenizer.json:kind",
    "tokenizer.json:chars",
    "model.safetensors:*",
]


def _path(field: str) -> tuple[str, ...]:
    """``a.b`` as ("a", "b"); ``file:a.b`` as ("file", "a", "b")."""
    file, _, inside = field.rpartition(":")
    return (file, *inside.split(".")) if file else tuple(inside.split("."))


def _covered(leaves: list[tuple], fields: list[str]) -> list[str]:
    """The leaves no field names (a field names itself and everything below it)."""
    named = {_path(f) for f in fields}
    return [
        ".".join(map(str, leaf))
        for leaf in leaves
        if not any(leaf[:n] in named for n in range(1, len(leaf) + 1))
    ]


def test_the_crafted_fields_are_every_field_the_files_carry(trained_run: Path, source_ckpt):
    """A field added to checkpoints or bundles must be added to the lists below too."""
    read = {
        k: v for k, v in source_ckpt.items() if k in {f.split(".")[0] for f in CHECKPOINT_FIELDS}
    }
    read["gm"] = {k: v for k, v in read["gm"].items() if k not in ("rng", "train_state")}
    read["state_dict"] = {"*": None}
    assert _covered(_leaves(read), CHECKPOINT_FIELDS) == []
    bundle = trained_run / "export"
    files = {
        "config.yaml": yaml.safe_load((bundle / "config.yaml").read_text()),
        "tokenizer.json": json.loads((bundle / "tokenizer.json").read_text()),
        "model.safetensors": {"*": None},
    }
    leaves = [(name, *leaf) for name, d in files.items() for leaf in _leaves(d)]
    assert _covered(leaves, BUNDLE_FIELDS) == []


def _generate_from(crafted: Path, run: Path):
    before = tree(run)
    argv = [str(ROOT / "generate.py"), f"ckpt={crafted}", "max_new_tokens=8", "mode=compare"]
    proc = run_entrypoint(argv, crafted.parent, dict(os.environ), 300, memory=MEMORY)
    assert_exit_0_or_one_sentence(proc)
    assert tree(run) == before
    return proc


_EXAMPLES = settings(
    max_examples=int(os.environ.get("GM_EXAMPLES", 2)),  # per field
    deadline=None,
    derandomize=not os.environ.get("GM_EXPLORE"),  # the same examples in every CI run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _place(payload: dict, field: str, data, tensors: bool) -> None:
    """Put a drawn value at ``field`` ("*": a drawn key of that level)."""
    path = field.split(".")
    if path[-1] == "*":
        parent = payload
        for key in path[:-1]:
            parent = parent[key]
        path[-1] = data.draw(st.sampled_from(sorted(parent)), label="key")
    _set(payload, tuple(path), data.draw(_TENSORS if tensors else _PLAIN, label="value"))


@pytest.mark.slow
@pytest.mark.parametrize("field", CHECKPOINT_FIELDS)
@_EXAMPLES
@given(data=st.data())
def test_any_value_in_any_field_of_a_checkpoint(
    trained_run: Path, source_ckpt: dict, tmp_path_factory, field: str, data
) -> None:
    ckpt = copy.deepcopy(dict(source_ckpt))
    _place(ckpt, field, data, tensors=field == "state_dict.*")
    crafted = tmp_path_factory.mktemp(f"crafted{next(CRAFTED)}") / "model.ckpt"
    torch.save(ckpt, crafted)
    _generate_from(crafted, trained_run)


@pytest.mark.slow
@pytest.mark.parametrize("field", BUNDLE_FIELDS)
@_EXAMPLES
@given(data=st.data())
def test_any_value_in_any_field_of_a_bundle(
    trained_run: Path, tmp_path_factory, field: str, data
) -> None:
    bundle = tmp_path_factory.mktemp(f"crafted{next(CRAFTED)}") / "bundle"
    shutil.copytree(trained_run / "export", bundle)
    name, _, inside = field.partition(":")
    if name == "config.yaml":
        config = yaml.safe_load((bundle / name).read_text())
        _place(config, inside, data, tensors=False)
        (bundle / name).write_text(yaml.safe_dump(config))
    elif name == "tokenizer.json":
        tokenizer = json.loads((bundle / name).read_text())
        _place(tokenizer, inside, data, tensors=False)
        (bundle / name).write_text(json.dumps(tokenizer))
    else:
        weights = load_file(bundle / name)
        _place(weights, inside, data, tensors=True)
        save_file(weights, bundle / name)
    _rewrite_sums(bundle)
    _generate_from(bundle, trained_run)
