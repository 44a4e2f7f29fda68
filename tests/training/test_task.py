"""Truncated BPTT carries the detached state; validation never touches the training state."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from gm.data.datamodule import TextDataModule
from gm.data.tokenizer import describe
from gm.errors import UserError
from gm.nn.state import state_tensors
from gm.training.task import LanguageModelTask

B, T = 4, 16


def _fit(tmp_path: Path, text_file: Path, lr: float, callbacks=(), carry_state=True, **trainer):
    dm = TextDataModule(
        data_dir=tmp_path, path=str(text_file), batch_size=B, seq_len=T, carry_state=carry_state
    )
    tok = dm.prepare()
    task = LanguageModelTask(
        model={
            "_target_": "gm.models.RecurrentLM",
            "vocab_size": tok.vocab_size,
            "cell": "gru",
            "emb_dim": 8,
            "hidden_dim": 16,
            "num_layers": 2,
            "dropout": 0.0,
        },
        optimizer={"_target_": "torch.optim.AdamW", "_partial_": True, "lr": lr},
        scheduler={},
        tokenizer=describe(tok),
        carry_state=carry_state,
    )
    kwargs = dict(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer_ = L.Trainer(**(kwargs | trainer))
    trainer_.fit(task, datamodule=dm)
    return task, dm


class Record(L.Callback):
    def __init__(self) -> None:
        self.entering: list = []
        self.leaving: list = []
        self.around_val: list = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.entering.append(pl_module.train_state)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.leaving.append(pl_module.train_state)

    def on_validation_start(self, trainer, pl_module) -> None:
        self.around_val.append(("start", trainer.sanity_checking, pl_module.train_state))

    def on_validation_end(self, trainer, pl_module) -> None:
        self.around_val.append(("end", trainer.sanity_checking, pl_module.train_state))


def test_state_entering_each_batch_is_the_detached_state_leaving_the_last(tmp_path, text_file):
    rec = Record()
    task, dm = _fit(
        tmp_path,
        text_file,
        lr=0.0,
        callbacks=[rec],
        limit_train_batches=6,
        num_sanity_val_steps=0,
        limit_val_batches=1,
    )
    assert rec.entering[0] is None  # the epoch starts from zeros
    for k in range(1, 6):
        assert rec.entering[k] is rec.leaving[k - 1]
        assert not any(t.requires_grad for t in state_tensors(rec.entering[k]))
    # With lr=0 the weights never move, so six carried chunks must equal one pass over
    # the first 6·T tokens of every stream from a zero state.
    streams = dm.train_dataloader().streams[:, : 6 * T]
    with torch.no_grad():
        _, whole = task.model.eval()(streams)
    for a, b in zip(state_tensors(rec.leaving[5]), state_tensors(whole), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_validation_leaves_the_training_state_alone(tmp_path, text_file):
    rec = Record()
    _fit(
        tmp_path,
        text_file,
        lr=1e-2,
        callbacks=[rec],
        limit_train_batches=6,
        val_check_interval=3,
        num_sanity_val_steps=1,
        limit_val_batches=2,
    )
    sanity = [e for e in rec.around_val if e[1]]
    assert sanity and all(s is None for _, _, s in sanity)  # before any training
    mid = [e for e in rec.around_val if not e[1]]
    assert len(mid) == 4  # after batch 3 and after batch 6
    for (_, _, before), (_, _, after) in zip(mid[::2], mid[1::2], strict=True):
        assert before is after
    # The batch after the mid-epoch validation continued from the pre-validation state.
    assert rec.entering[3] is rec.leaving[2]


def test_every_epoch_starts_the_streams_from_zero(tmp_path, text_file):
    """Fails if the epoch-start reset goes: epoch 2 would continue epoch 1's last state."""
    rec = Record()
    _fit(
        tmp_path,
        text_file,
        lr=1e-2,
        callbacks=[rec],
        max_epochs=2,
        limit_train_batches=3,
        num_sanity_val_steps=0,
        limit_val_batches=1,
    )
    assert len(rec.entering) == 6
    assert rec.entering[0] is None and rec.entering[3] is None
    assert rec.entering[1] is rec.leaving[0] and rec.entering[4] is rec.leaving[3]


def test_validation_carries_its_own_state_across_its_batches(tmp_path, text_file):
    """The stateful val/loss over three batches equals one forward over the three chunks of
    every validation stream from a zero state: the state is carried from batch to batch
    (dropping it scores chunk mode) and starts from zeros, not from the training state."""
    task, dm = _fit(
        tmp_path,
        text_file,
        lr=0.0,  # the weights the validation sees are the initial ones
        limit_train_batches=2,
        limit_val_batches=3,
        num_sanity_val_steps=0,
    )
    assert task.train_state is not None  # training did leave a state behind
    batches = list(dm.val_dataloader())[:3]
    x = torch.cat([b[0] for b in batches], 1)
    y = torch.cat([b[1] for b in batches], 1)
    with torch.no_grad():
        logits, _ = task.model.eval()(x)
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    logged = task.trainer.callback_metrics
    assert logged["val/loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(logged["val/loss_chunk"].item() - expected.item()) > 1e-4  # not vacuous


def test_windowed_regime_starts_every_batch_from_zero(tmp_path, text_file):
    rec = Record()
    _fit(
        tmp_path,
        text_file,
        lr=1e-2,
        callbacks=[rec],
        carry_state=False,
        limit_train_batches=3,
        num_sanity_val_steps=0,
        limit_val_batches=1,
    )
    assert rec.entering == [None, None, None] and rec.leaving == [None, None, None]


def test_validation_reports_three_modes(tmp_path, text_file):
    task, _ = _fit(
        tmp_path,
        text_file,
        lr=1e-2,
        limit_train_batches=4,
        limit_val_batches=2,
        num_sanity_val_steps=0,
    )
    logged = task.trainer.callback_metrics
    for mode in ("", "_chunk", "_stateless"):
        loss, bpc = logged[f"val/loss{mode}"], logged[f"val/bpc{mode}"]
        assert bpc.item() == pytest.approx(loss.item() / torch.log(torch.tensor(2.0)).item())
    assert "train/grad_norm" in logged


class Poison(L.Callback):
    """Turns the weights into NaN after the second step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 1:
            with torch.no_grad():
                pl_module.model.embedding.weight.fill_(float("nan"))


def test_nan_guard_stops_with_one_sentence(tmp_path, text_file):
    from gm.errors import UserError

    with pytest.raises(UserError, match=r"stopped at step 2: the training loss is nan") as e:
        _fit(
            tmp_path,
            text_file,
            lr=1e-2,
            callbacks=[Poison()],
            limit_train_batches=6,
            num_sanity_val_steps=0,
            limit_val_batches=1,
        )
    assert "\n" not in str(e.value)


def _task(tmp_path: Path, text_file: Path, compile) -> LanguageModelTask:
    dm = TextDataModule(data_dir=tmp_path, path=str(text_file), batch_size=B, seq_len=T)
    tok = dm.prepare()
    model = {"_target_": "gm.models.RecurrentLM", "vocab_size": tok.vocab_size, "cell": "gru",
             "emb_dim": 8, "hidden_dim": 16, "num_layers": 1, "dropout": 0.0}  # fmt: skip
    optimizer = {"_target_": "torch.optim.AdamW", "_partial_": True}
    return LanguageModelTask(model, optimizer, {}, describe(tok), compile=compile)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_compile_modes_reach_torch_compile_and_the_carried_state_is_copied(
    tmp_path: Path, text_file: Path, monkeypatch
) -> None:
    """compile=reduce-overhead (CUDA graphs on a GPU) without compiling: torch.compile is
    replaced by a recorder; a replayed graph would reuse its output memory, so the state
    carried to the next batch must be a copy, not the step's output."""
    seen, outputs = {}, []

    def fake_compile(model, **kwargs):
        seen.update(kwargs)

        def run(x, state):
            outputs.append(model(x, state))
            return outputs[-1]

        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    task = _task(tmp_path, text_file, "reduce-overhead")
    assert seen == {"dynamic": False, "mode": "reduce-overhead"}
    x = torch.randint(0, 10, (B, T))
    task.training_step((x, x), 0)
    (carried,) = state_tensors(task.train_state)
    (returned,) = state_tensors(outputs[-1][1])
    assert torch.equal(carried, returned) and carried.data_ptr() != returned.data_ptr()

    with pytest.raises(UserError, match=r"not a torch\.compile mode"):
        _task(tmp_path, text_file, "fastest")


def test_a_restored_state_is_split_among_the_ddp_processes(tmp_path, text_file) -> None:
    """A checkpoint holds the state of all B streams; process r of N resumes with its own
    block of B/N rows, whatever N was when it was saved."""
    from types import SimpleNamespace

    task = _task(tmp_path, text_file, compile=False)
    saved = (torch.arange(4.0)[:, None].expand(4, 16).clone(),)  # one layer, 4 streams
    for rank, rows in ((0, [0.0, 1.0]), (1, [2.0, 3.0])):
        task.on_load_checkpoint({"gm": {"train_state": saved}})
        task._trainer = SimpleNamespace(world_size=2, global_rank=rank)
        task.on_train_start()
        (h,) = state_tensors(task.train_state)
        assert h[:, 0].tolist() == rows and h.shape == (2, 16)
