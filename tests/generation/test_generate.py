"""Generation from a trained run: modes, determinism, the state invariant, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from gm.artifacts import load_trained
from gm.errors import UserError
from gm.generation.generate import generate
from gm.generation.run import run
from tests.conftest import CONF_DIR, run_script


def config(ckpt: Path, **overrides):
    cfg = OmegaConf.load(CONF_DIR / "generate.yaml")
    cfg.pop("defaults")
    cfg.pop("hydra")
    cfg.ckpt = str(ckpt)
    return OmegaConf.merge(cfg, overrides)


def generate_text(ckpt: Path, **overrides) -> tuple[str, list[dict]]:
    out = io.StringIO()
    records = run(config(ckpt, **overrides), out=out)
    return out.getvalue(), records


@pytest.mark.parametrize("mode", ["stateful", "chunk", "stateless"])
def test_each_mode_continues_the_prompt_by_n_tokens(trained_run: Path, mode: str) -> None:
    text, records = generate_text(trained_run, mode=mode, prompt="To be", max_new_tokens=40)
    assert text.startswith("To be")
    assert len(records) == 1 and len(records[0]["tokens"]) == 40
    assert text.rstrip("\n").endswith(records[0]["text"].rstrip("\n"))


def test_same_seed_same_text_other_seed_other_text(trained_run: Path) -> None:
    a, _ = generate_text(trained_run, max_new_tokens=200, seed=7)
    b, _ = generate_text(trained_run, max_new_tokens=200, seed=7)
    c, _ = generate_text(trained_run, max_new_tokens=200, seed=8)
    assert a == b and a != c


def test_compare_prints_three_modes_with_figures(trained_run: Path) -> None:
    text, records = generate_text(trained_run, mode="compare", max_new_tokens=60)
    assert [r["mode"] for r in records] == ["stateful", "chunk", "stateless"]
    for r in records:
        assert f"===== {r['mode']} =====" in text
        assert 0 <= r["distinct_2"] <= 1 and r["known_words"] is not None
    assert text.count("tokens/s") == 3


def test_stateful_steps_equal_one_forward_pass(trained_run: Path) -> None:
    trained = load_trained(trained_run)
    prompt = trained.tokenizer.encode("To be or")
    seen: list[torch.Tensor] = []
    new = generate(trained.model, prompt, 30, "stateful", on_logits=seen.append)
    with torch.no_grad():
        whole, _ = trained.model(torch.tensor([prompt + new[:-1]]))
    torch.testing.assert_close(torch.cat(seen), whole[0, len(prompt) - 1 :], atol=1e-5, rtol=1e-5)


def test_chunk_mode_sees_exactly_the_last_window(trained_run: Path) -> None:
    """Each choice in chunk mode is made from the model run from zeros over the last
    ``window`` tokens: not the whole history, not a carried state."""
    trained = load_trained(trained_run)
    model, window = trained.model, 5
    prompt = trained.tokenizer.encode("To be or not to be that is")
    seen: list[torch.Tensor] = []
    new = generate(model, prompt, 8, "chunk", window=window, on_logits=seen.append)
    tokens = prompt + new
    with torch.no_grad():
        for i, logits in enumerate(seen):
            context = tokens[: len(prompt) + i][-window:]
            alone = model(torch.tensor([context]))[0][:, -1]
            torch.testing.assert_close(logits, alone)
            history = torch.tensor([tokens[: len(prompt) + i]])
            assert not torch.allclose(logits, model(history)[0][:, -1])  # the window matters


def test_stateless_sees_only_the_last_token(trained_run: Path) -> None:
    trained = load_trained(trained_run)
    seen: list[torch.Tensor] = []
    generate(
        trained.model, trained.tokenizer.encode("tis be"), 1, "stateless", on_logits=seen.append
    )
    with torch.no_grad():
        alone, _ = trained.model(torch.tensor([trained.tokenizer.encode("e")]))
    torch.testing.assert_close(seen[0], alone[:, -1])


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_samples_in_bf16_when_asked(trained_run: Path, precision: str) -> None:
    text, records = generate_text(
        trained_run, precision=precision, prompt="To be", max_new_tokens=30
    )
    assert text.startswith("To be") and len(records[0]["tokens"]) == 30


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"prompt": "To be ☃"}, "never saw"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 2.0}, "top_p"),
        ({"max_new_tokens": -1}, "max_new_tokens"),
        ({"num_samples": 0}, "num_samples"),
        ({"mode": "sideways"}, "mode must be"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"device": "xla"}, "device=xla is not a device gm generates on"),
        ({"device": "vulkan"}, "device=vulkan is not a device gm generates on"),
        ({"device": "meta"}, "device=meta is not a device gm generates on"),
        ({"device": "mps"}, "device=mps asked for Apple's MPS but this machine has none"),
    ],
)
def test_bad_options_are_refused(trained_run: Path, overrides, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        generate_text(trained_run, **overrides)


def test_unknown_characters_can_be_skipped(
    trained_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _ = generate_text(trained_run, prompt="To ☃be☃", on_unknown="skip", max_new_tokens=5)
    assert text.startswith("To be")  # the echo is what the model read
    said = capsys.readouterr().err
    assert "dropped 2 characters this model never saw ('☃')" in said and "'To be'" in said


def test_bad_paths_exit_2_with_one_sentence(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"definitely not a checkpoint")
    for ckpt, needle in [(tmp_path / "nope", "does not exist"), (junk, "not a PyTorch checkpoint")]:
        proc = run_script("generate.py", f"ckpt={ckpt}")
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert needle in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0
    proc = run_script("generate.py")
    assert proc.returncode == 2 and "pass ckpt=" in proc.stderr


def test_generate_writes_no_run_directory(trained_run: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in (CONF_DIR.parent).iterdir())
    proc = run_script("generate.py", f"ckpt={trained_run}", "max_new_tokens=20")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (CONF_DIR.parent).iterdir()) == before
