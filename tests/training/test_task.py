"""Truncated BPTT carries the detached state; validation never touches the training state."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch

from gm.data.datamodule import TextDataModule
from gm.data.tokenizer import describe
from gm.errors import UserError
from gm.evaluation import metric_key
from gm.modes import MODES
from gm.run import RunRecord
from gm.runtime import cache_compiled_kernels
from gm.state import state_tensors
from gm.training.schedule import warmup_cosine
from gm.training.task import LanguageModelTask, widen

B, T = 4, 16


def _fit(
    tmp_path: Path,
    text_file: Path,
    lr: float,
    callbacks=(),
    carry_state=True,
    scheduler=None,
    record=None,
    ckpt_path=None,
    data=None,
    chunk_lens=None,
    **trainer,
):
    dm = TextDataModule(
        data_dir=tmp_path, path=str(text_file), batch_size=B, seq_len=T, carry_state=carry_state,
        **(data or {}),
    )  # fmt: skip
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
        scheduler=scheduler or {},
        tokenizer=describe(tok),
        carry_state=carry_state,
        seq_len=T,
        chunk_lens=chunk_lens,
        record=record,
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
    trainer_.fit(task, datamodule=dm, ckpt_path=ckpt_path)
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
    streams = torch.from_numpy(dm.train_dataloader().streams[:, : 6 * T].astype("int64"))
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
    # The report finds every mode's curve under the tag gm.evaluation names.
    tags = {metric_key(name, mode) for mode in MODES for name in ("loss", "ppl", "bpc")}
    assert tags == {k for k in logged if k.startswith("val/")}
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


def test_widen_makes_16_bit_floats_fp32_and_leaves_the_rest() -> None:
    for dtype in (torch.bfloat16, torch.float16):
        assert widen(torch.ones(2, dtype=dtype)).dtype == torch.float32
    for t in (torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.int16)):
        assert widen(t) is t


def test_a_checkpoint_holds_fp32_weights_the_carried_state_and_the_generators(
    tmp_path, text_file
) -> None:
    task, _ = _fit(
        tmp_path,
        text_file,
        lr=1e-2,
        record=RunRecord(model_name="tiny", corpus={"path": "generated"}, seed=3),
        precision="bf16-true",
        limit_train_batches=3,
        limit_val_batches=1,
        num_sanity_val_steps=0,
    )
    path = tmp_path / "x.ckpt"
    task.trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    weights = task.state_dict()
    assert weights["model.embedding.weight"].dtype == torch.bfloat16  # trained in bf16
    assert ckpt["state_dict"].keys() == weights.keys()
    for key, value in weights.items():
        assert ckpt["state_dict"][key].dtype == torch.float32
        assert torch.equal(ckpt["state_dict"][key], value.float())
    saved = ckpt["gm"]
    # The run's record comes back whole and typed from the payload.
    assert RunRecord.from_payload(saved) == task.record
    live = state_tensors(task.train_state)
    for s, t in zip(state_tensors(saved["train_state"]), live, strict=True):
        assert s.dtype == torch.float32 and s.device.type == "cpu"
        assert torch.equal(s, t.float())
    assert torch.equal(saved["rng"]["torch"], torch.get_rng_state())


class Draws(L.Callback):
    """The carried state entering each batch, and one number from torch's generator."""

    def __init__(self) -> None:
        self.entering, self.draws = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.entering.append(pl_module.train_state)
        self.draws.append(torch.rand(1).item())


class SaveAt(L.Callback):
    """Saves a checkpoint after the given batch, as a periodic checkpoint would."""

    def __init__(self, path: Path, batch: int) -> None:
        self.path, self.batch = path, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.batch:
            trainer.save_checkpoint(self.path)


def test_a_resumed_fit_continues_the_saved_state_and_generators(tmp_path, text_file) -> None:
    """Fails if loading drops the carried state or the generators: the resumed run's first
    batch would start from zeros, or draw other numbers than the uninterrupted run."""
    common = dict(lr=1e-2, limit_val_batches=1, num_sanity_val_steps=0, max_steps=4)
    path = tmp_path / "mid.ckpt"
    whole = Draws()
    _fit(tmp_path, text_file, callbacks=[whole, SaveAt(path, 1)], **common)
    saved = torch.load(path, weights_only=True)["gm"]["train_state"]
    resumed = Draws()
    _fit(tmp_path, text_file, callbacks=[resumed], ckpt_path=path, **common)
    assert len(resumed.entering) == 2
    for a, b in zip(state_tensors(resumed.entering[0]), state_tensors(saved), strict=True):
        assert torch.equal(a, b)
    assert resumed.draws == whole.draws[2:]


class LearningRates(L.Callback):
    """The lr of every batch, then the lr the schedule ends on."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_end(self, trainer, pl_module) -> None:
        self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize(
    "trainer,sched,total",
    [
        (dict(max_epochs=2, limit_train_batches=3), {"warmup_steps": 1, "min_lr_ratio": 0.1}, 6),
        (dict(max_epochs=2, limit_train_batches=0.05), {}, 2 * int(84 * 0.05)),
        (dict(max_epochs=1, limit_train_batches=5, accumulate_grad_batches=2), {}, 3),
        (dict(max_epochs=3, limit_train_batches=3, max_steps=5), {"warmup_steps": 2}, 5),
        (dict(max_epochs=3, limit_train_batches=3, max_steps=1), {}, 1),
        (dict(max_epochs=1, limit_train_batches=1), {"min_lr_ratio": 0.5}, 1),
    ],
    ids=["batches", "fraction", "accumulated", "max_steps", "one_step", "one_batch"],
)
def test_the_schedule_spans_the_whole_fit(tmp_path, text_file, trainer, sched, total) -> None:
    """The lr at every step is warmup + cosine over the fit's optimizer steps, ending at
    its floor (no warmup and a floor of 0 unless the config says otherwise)."""
    lrs = LearningRates()
    task, dm = _fit(
        tmp_path,
        text_file,
        lr=1e-2,
        callbacks=[lrs],
        scheduler=sched,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        **trainer,
    )
    assert len(dm.train_dataloader()) == 84  # the fraction case's premise
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-2)
    reference = warmup_cosine(optimizer, total, **sched)
    expected = []
    for _ in range(total):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    expected.append(optimizer.param_groups[0]["lr"])
    every = trainer.get("accumulate_grad_batches", 1)
    assert [*lrs.seen[:-1:every], lrs.seen[-1]] == pytest.approx(expected)
    assert task.trainer.optimizers[0].defaults["lr"] == 1e-2


def test_validation_logs_every_mode_and_starts_each_pass_afresh(tmp_path, text_file) -> None:
    """Nine numbers (loss, ppl, bpc per mode), the loss of each mode on the progress bar, the
    loss by position per mode; a second validation of one batch scores that batch alone
    (fails if the sums are not reset between passes)."""
    task, dm = _fit(
        tmp_path, text_file, lr=0.0, limit_train_batches=1, limit_val_batches=3,
        num_sanity_val_steps=0,
    )  # fmt: skip
    logged = {k for k in task.trainer.callback_metrics if k.startswith("val/")}
    assert logged == {
        f"val/{name}{suffix}"
        for name in ("loss", "ppl", "bpc")
        for suffix in ("", "_chunk", "_stateless")
    }
    bar = {k for k in task.trainer.progress_bar_metrics if k.startswith("val/")}
    assert bar == {"val/loss", "val/loss_chunk", "val/loss_stateless"}
    assert set(task.loss_by_position) == set(MODES)
    assert all(len(v) == T + 1 for v in task.loss_by_position.values())

    trainer = L.Trainer(limit_val_batches=1, logger=False, enable_progress_bar=False)
    (again,) = trainer.validate(task, datamodule=dm, verbose=False)
    x, y = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        logits, _ = task.model.eval()(x)
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    assert again["val/loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_forward_is_the_models(tmp_path, text_file) -> None:
    task = _task(tmp_path, text_file, compile=False)
    x = torch.randint(0, 10, (2, 5))
    _, state = task.model(torch.randint(0, 10, (2, 3)))  # a state that is not zeros
    ours, theirs = task(x, state), task.model(x, state)
    assert torch.equal(ours[0], theirs[0])
    assert torch.equal(state_tensors(ours[1])[0], state_tensors(theirs[1])[0])


def test_a_new_task_records_its_arguments_and_starts_empty(tmp_path, text_file) -> None:
    """The hyperparameters are what checkpoints and bundles rebuild the task from."""
    task = _task(tmp_path, text_file, compile=False)
    assert set(task.hparams) == {
        "model", "optimizer", "scheduler", "tokenizer", "carry_state", "seq_len", "compile",
        "chunk_lens",
    }  # fmt: skip
    assert task.hparams["tokenizer"]["vocab_size"] == task.model.vocab_size
    assert (task.hparams["carry_state"], task.hparams["seq_len"]) == (True, None)
    assert task.train_model is task.model  # compile is off unless asked
    default = LanguageModelTask(task.hparams.model, {}, {}, task.hparams.tokenizer)
    assert default.train_model is default.model
    assert (task.train_state, task.val_states, task.loss_by_position) == (None, {}, {})
    # Without seq_len there is no loss by position to collect.
    assert task.val_metrics["stateful"].position_nats.numel() == 0


def test_compile_refusals_and_the_kernel_cache(tmp_path, text_file, monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: seen.update(kwargs) or model)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("GM_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _task(tmp_path, text_file, compile=True)
    assert seen == {"dynamic": False, "mode": None}
    # The module sets no process-wide state; train() chooses the kernel cache before it.
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ
    cache = tmp_path / "home" / ".cache" / "generatemore" / "inductor"
    assert cache_compiled_kernels() == cache
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(cache)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    monkeypatch.setenv("GM_DATA_DIR", str(tmp_path / "data"))
    _task(tmp_path, text_file, compile="default")
    assert seen == {"dynamic": False, "mode": "default"}
    assert cache_compiled_kernels() == tmp_path / "data" / "inductor"
    monkeypatch.setenv("GM_DATA_DIR", str(tmp_path / "elsewhere"))
    assert cache_compiled_kernels() == tmp_path / "data" / "inductor"  # a set one stays

    with pytest.raises(UserError) as e:
        _task(tmp_path, text_file, compile="fastest")
    assert str(e.value) == (
        "compile=fastest is not a torch.compile mode; use true or one of default, "
        "reduce-overhead, max-autotune, max-autotune-no-cudagraphs"
    )
    mlp = {"_target_": "gm.models.BengioMLP", "vocab_size": 10, "context": 3}
    with pytest.raises(UserError) as e:
        LanguageModelTask(mlp, {}, {}, {"char_lengths": [1] * 10}, compile=True)
    assert str(e.value) == "compile=true needs a recurrent model (RNN, GRU or LSTM)"


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_a_compiled_step_gets_the_carried_state_as_a_tensor(tmp_path, text_file, monkeypatch):
    """The compiled graph is called with the zero state as a tensor at a stream's start,
    then with the state carried from the previous step."""
    calls = []

    def fake_compile(model, **kwargs):
        def run(x, state):
            calls.append(state)
            return model(x, state)

        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    task = _task(tmp_path, text_file, "default")
    x = torch.randint(0, 10, (B, T))
    task.training_step((x, x), 0)
    task.training_step((x, x), 1)
    (first,), (second,) = state_tensors(calls[0]), state_tensors(calls[1])
    assert torch.equal(first, torch.zeros(B, 16))
    assert torch.equal(second, state_tensors(task.model(x)[1])[0])


def test_the_checkpointed_state_gathers_every_process_rows(tmp_path, text_file) -> None:
    """Under DDP the checkpoint holds the streams of all processes, in rank order."""
    from types import SimpleNamespace

    task = _task(tmp_path, text_file, compile=False)
    own = (torch.zeros(2, 16),)
    task.train_state = own
    assert task._global_train_state() is own  # no trainer: one process
    task._trainer = SimpleNamespace(world_size=1)
    assert task._global_train_state() is own
    task._trainer = SimpleNamespace(world_size=2)
    task.all_gather = lambda t: torch.stack([t, t + 1])  # what two processes would hold
    (gathered,) = state_tensors(task._global_train_state())
    assert gathered[:, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    task.train_state = None
    assert task._global_train_state() is None


def test_a_fresh_ddp_start_has_no_state_to_split(tmp_path, text_file) -> None:
    from types import SimpleNamespace

    task = _task(tmp_path, text_file, compile=False)
    task._trainer = SimpleNamespace(world_size=2, global_rank=1)
    task.on_train_start()
    assert task.train_state is None


class PoisonGradients(L.Callback):
    def on_after_backward(self, trainer, pl_module) -> None:
        if trainer.global_step == 1:
            pl_module.model.embedding.weight.grad.fill_(float("inf"))


def test_a_non_finite_gradient_stops_with_one_sentence(tmp_path, text_file) -> None:
    with pytest.raises(UserError) as e:
        _fit(
            tmp_path,
            text_file,
            lr=1e-2,
            callbacks=[PoisonGradients()],
            limit_train_batches=4,
            num_sanity_val_steps=0,
            limit_val_batches=1,
        )
    assert str(e.value) == (
        "stopped at step 1: the gradient norm is inf; the last good checkpoint is kept "
        "(lower optimizer.lr, or debug with trainer.detect_anomaly=true)"
    )


def test_the_training_loss_is_logged_per_step_under_its_documented_tag(tmp_path, text_file):
    task, _ = _fit(
        tmp_path, text_file, lr=1e-2, limit_train_batches=2, limit_val_batches=1,
        num_sanity_val_steps=0,
    )  # fmt: skip
    logged = set(task.trainer.callback_metrics)
    assert {"train/loss", "train/grad_norm"} <= logged  # the names docs/guide/training.md gives
    assert not {"train/loss_step", "train/loss_epoch"} & logged
    assert "train/loss" in task.trainer.progress_bar_metrics


def test_the_generators_are_restored_once(tmp_path, text_file) -> None:
    """A resumed run's generators are set back to the checkpoint's at the start of
    training, and only then: a later start (another fit) continues them."""
    from types import SimpleNamespace

    from gm.training.rng import rng_state

    task = _task(tmp_path, text_file, compile=False)
    saved = rng_state()
    expected = torch.rand(3)
    task.on_load_checkpoint({"gm": {"train_state": None, "rng": saved}})
    task._trainer = SimpleNamespace(world_size=1)
    task.on_train_start()
    assert torch.equal(torch.rand(3), expected)
    task.on_train_start()
    assert not torch.equal(torch.rand(3), expected)


def test_a_fit_of_no_steps_takes_none(tmp_path, text_file) -> None:
    """``max_steps=0`` (Lightning: train nothing) must still build a valid schedule."""
    task, _ = _fit(tmp_path, text_file, lr=1e-2, max_steps=0, num_sanity_val_steps=0)
    assert task.trainer.global_step == 0 and task.train_state is None


def test_the_sanity_check_shows_no_numbers(tmp_path, text_file) -> None:
    """Lightning's two-batch sanity check validates a sliver of the data: its numbers never
    reach the progress bar (it shows them while the check runs) or the callbacks."""
    seen = {}

    class AtSanityEnd(L.Callback):
        def on_validation_end(self, trainer, pl_module) -> None:
            if trainer.sanity_checking:
                seen.update(trainer.progress_bar_metrics, **trainer.callback_metrics)
                seen["curves"] = pl_module.loss_by_position

    _fit(
        tmp_path, text_file, lr=1e-2, callbacks=[AtSanityEnd()], limit_train_batches=1,
        limit_val_batches=2, num_sanity_val_steps=2,
    )  # fmt: skip
    assert seen.pop("curves") == {}
    assert not [k for k in seen if k.startswith("val/")]


class StepsLogged(L.pytorch.loggers.Logger):
    """A logger that keeps every (step, metrics) Lightning hands it."""

    name, version = "steps", 0

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[int, dict]] = []

    def log_metrics(self, metrics, step=None) -> None:
        self.logged.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self.logged.append((None, {"hyperparameters": params}))


def test_validation_follows_the_eval_protocol_and_logs_at_the_optimizer_step(
    tmp_path, text_file
) -> None:
    """eval.warmup, eval.batch_size and eval.chunk_len reach the validation: its numbers are
    ``evaluate`` on the same streams (itself tested against each mode's definition); every
    value is logged at the optimizer steps taken before it, with no epoch series."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    from gm.evaluation import evaluate, metric_key

    logger = StepsLogged()
    task, dm = _fit(
        tmp_path, text_file, lr=1e-2, limit_train_batches=3, limit_val_batches=None,
        num_sanity_val_steps=0, logger=logger, log_every_n_steps=1,
        data={"warmup": 7, "eval_batch_size": 2},
        chunk_lens=[T, 2 * T], callbacks=[LearningRateMonitor(logging_interval="step")],
    )  # fmt: skip
    assert task.modes == ["stateful", "chunk", f"chunk{2 * T}", "stateless"]
    batches = dm.val_batches()
    assert batches.warmup.shape == (2, 7) and batches.rest > 0
    ones = torch.ones(task.model.vocab_size, dtype=torch.long)
    expected = evaluate(task.model, batches, ones, T, task.modes)
    logged = task.trainer.callback_metrics
    for mode in task.modes:
        got = logged[metric_key("loss", mode)].item()
        assert got == pytest.approx(expected[mode].compute()["loss"].item(), rel=1e-5), mode
    val_steps = [step for step, m in logger.logged if "val/loss" in m]
    train_steps = [step for step, m in logger.logged if "train/loss" in m]
    assert val_steps == [3] and train_steps == [0, 1, 2]
    assert not any("epoch" in m or "step" in m for _, m in logger.logged)
    assert [step for step, m in logger.logged if "train/lr" in m] == [0, 1, 2]
    # The task's arguments (a 65-entry character table among them) are not sent to the
    # loggers: train() logs the settings a reader compares runs by.
    assert not [m for _, m in logger.logged if "hyperparameters" in m]
