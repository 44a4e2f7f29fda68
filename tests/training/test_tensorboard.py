"""What TensorBoard shows of a real short run, read back with TensorBoard's own reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from gm.evaluation import best_key, metric_key
from gm.modes import MODES
from gm.training.tensorboard import BEST_TAGS, TAGS, shown_hparams
from tests.conftest import FAST_TRAIN, run_train

TWO_EPOCHS = [*FAST_TRAIN, "trainer.max_epochs=2", "trainer.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import generated_text

    tmp = tmp_path_factory.mktemp("tensorboard")
    corpus = tmp / "corpus.txt"
    corpus.write_text(generated_text())
    run = tmp / "astra" / "run"
    proc = run_train(run, f"data.path={corpus}", *TWO_EPOCHS, "callbacks.samples.tokens=24")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def events(run: Path) -> EventAccumulator:
    # The event file is in the run directory itself: TensorBoard names the run by it.
    assert list(run.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(run), size_guidance={"tensors": 0, "scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _steps(acc: EventAccumulator, tag: str) -> list[int]:
    return [e.step for e in acc.Tensors(tag)]


def _value(event) -> float:
    return float(event.tensor_proto.float_val[0])


def test_hparams_hold_the_key_settings_and_the_best_scores_in_three_modes(run, events):
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]
    ).experiment
    assert [m.name.tag for m in experiment.metric_infos] == BEST_TAGS
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info.hparams
    assert start["model"].string_value == "astra_alpha"
    assert start["batch_size"].number_value == 4 and start["seq_len"].number_value == 16
    assert start["max_epochs"].number_value == 2 and start["seed"].number_value == 1337
    assert start["carry_state"].string_value == "true"
    assert start["precision"].string_value == "32-true"
    for key in ("parameters", "lr", "dropout", "hidden_dim", "num_layers"):
        assert start[key].number_value > 0, key
    # The metric columns' values: the best validation's, as metrics.json has them.
    best = json.loads((run / "metrics.json").read_text())["best"]
    for mode in MODES:
        for name in ("loss", "bpc"):
            last = events.Tensors(best_key(name, mode))[-1]
            assert _value(last) == pytest.approx(best[metric_key(name, mode)], rel=1e-6)
    # hparams.yaml has the same settings, not the tokenizer's character table.
    saved = yaml.safe_load((run / "hparams.yaml").read_text())
    assert saved["batch_size"] == 4 and "char_lengths" not in str(saved)


def test_the_three_modes_share_a_chart_and_train_meets_validation(events):
    config = events.PluginTagToContent("custom_scalars")
    assert config  # the layout was written
    layout = layout_pb2.Layout.FromString(
        events.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    )
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    loss = next(tags for title, tags in charts.items() if title.startswith("val/loss"))
    assert loss == ["^modes/loss$"]  # matched in the three mode runs: three colours
    assert any("^train/loss$" in tags and "^val/loss$" in tags for tags in charts.values())


def test_the_three_modes_are_three_runs_of_one_tag(run, events):
    """TensorBoard colours by run: each mode is a run of its own under the run directory,
    with the same tag, and the values the run logged for that mode."""
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    mux = EventMultiplexer(size_guidance={"tensors": 0})
    mux.AddRunsFromDirectory(str(run.parent))
    mux.Reload()
    runs = {name for name, tags in mux.Runs().items() if "modes/loss" in tags["tensors"]}
    assert runs == {f"run/modes/{mode}" for mode in MODES}
    for mode in MODES:
        for name in ("loss", "bpc"):
            ours = [(e.step, _value(e)) for e in mux.Tensors(f"run/modes/{mode}", f"modes/{name}")]
            theirs = [(e.step, _value(e)) for e in events.Tensors(metric_key(name, mode))]
            assert ours == theirs and len(ours) == 3  # step 0 and two validations
    # The stateful and the stateless curves differ: three series, not one drawn thrice.
    assert mux.Tensors("run/modes/stateful", "modes/loss")[-1].tensor_proto.float_val != (
        mux.Tensors("run/modes/stateless", "modes/loss")[-1].tensor_proto.float_val
    )
    assert (
        "one line per mode"
        in mux.SummaryMetadata("run/modes/chunk", "modes/loss").summary_description
    )


def test_the_study_group_sorts_first_among_the_scalar_groups(events):
    groups = sorted({tag.split("/")[0] for tag in events.PluginTagToContent("scalars")})
    assert groups == ["train", "val", "val_best"] and groups[0] > "modes"


def test_hparams_show_the_varied_then_the_model_defining_columns_first(events):
    """TensorBoard's HParams table shows five columns, those marked as differing first; the
    order is the backend's own (tensorboard.plugins.hparams.backend_context)."""
    from tensorboard.plugins.hparams import backend_context

    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]
    ).experiment
    backend_context._sort_and_reduce_to_hparams_limit(experiment, 5)
    # The fixture's command line set data.batch_size, data.seq_len and trainer.max_epochs.
    assert [h.name for h in experiment.hparam_infos] == [
        "batch_size", "lr", "max_epochs", "model", "seq_len"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "overrides,first",
    [
        ([], ["model", "lr", "hidden_dim", "num_layers", "parameters"]),
        (["model=astra_beta", "optimizer.lr=0.001,0.003"], ["model", "lr", "hidden_dim"]),
        (["seed=1,2,3", "data.carry_state=true,false"], ["carry_state", "seed", "model"]),
        (["+trainer.max_time=1", "~callbacks.samples", "data=shakespeare_spm"], ["tokenizer"]),
    ],
)
def test_shown_hparams_take_the_command_lines_keys_then_the_models(overrides, first) -> None:
    shown = shown_hparams(overrides)
    assert shown[: len(first)] == first and len(shown) == 5


def test_every_validation_has_a_sample_in_each_mode_at_the_steps_of_the_scalars(run, events):
    metrics = json.loads((run / "metrics.json").read_text())
    steps = [0] + [h["step"] for h in metrics["history"]]  # step 0: the untrained model
    assert steps == [0, 2, 4]
    assert _steps(events, "val/loss") == steps
    assert _steps(events, "val/loss_by_position") == steps
    for mode in MODES:
        samples = events.Tensors(f"samples/{mode}/text_summary")
        assert [e.step for e in samples] == steps
        text = samples[-1].tensor_proto.string_val[0].decode()
        assert text.startswith(f"**{mode}**") and "continuation:" in text
    # Validation at step 0 is the untrained model's, kept apart from the history.
    first = events.Tensors("val/loss")[0]
    assert _value(first) == pytest.approx(metrics["initial"]["val/loss"], rel=1e-6)


def test_tags_carry_their_unit_and_no_stray_series_opens_the_dashboard(events):
    tags = set(events.PluginTagToContent("scalars"))
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"} <= tags
    assert {metric_key(n, m) for n in ("loss", "bpc") for m in MODES} <= tags
    assert not {"epoch", "lr-AdamW", "train/loss_step", "train/loss_epoch", "step"} & tags
    assert all("/" in tag for tag in tags)  # every chart sits in a train/, val/ or val_best/ group
    chunk = events.SummaryMetadata(metric_key("loss", "chunk")).summary_description
    assert chunk == TAGS[metric_key("loss", "chunk")] and "nats per token" in chunk
    assert "bits per character" in events.SummaryMetadata("val/bpc").summary_description


def test_samples_do_not_change_the_run(tmp_path: Path, run: Path, text_file: Path):
    """The samples draw from a generator of their own, with dropout off: a run without
    them trains to the same numbers."""
    corpus = run.parent.parent / "corpus.txt"
    quiet = tmp_path / "quiet"
    proc = run_train(quiet, f"data.path={corpus}", *TWO_EPOCHS, "~callbacks.samples")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with_samples = json.loads((run / "metrics.json").read_text())["history"]
    without = json.loads((quiet / "metrics.json").read_text())["history"]
    assert [h["val/loss"] for h in with_samples] == [h["val/loss"] for h in without]
