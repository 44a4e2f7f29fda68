"""One rule checks every setting (gm/settings.py), and no value of any type at any key
makes an entry point print a traceback or touch a run it was not asked to make.

The property tests throw values of every type (integers, numbers incl. nan/inf and the
tiny and huge, booleans, null, text, lists) at every leaf key of the composed training
config and at every ``generate.py`` option, and require exit 0, or exit 2 with one
``error:`` line and no traceback; and that an existing run directory keeps every byte.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf

from gm.config import CONF_DIR
from gm.errors import UserError
from gm.generation.run import GENERATE_SETTINGS
from gm.settings import Setting, check_settings
from gm.training.settings import TRAIN_SETTINGS
from tests.conftest import FAST_TRAIN, ROOT, generated_text
from tests.entrypoints import run_entrypoint
from tests.test_errors import tree

# --- the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting,good,bad",
    [
        (Setting(int, low=1), [1, 7], [0, -1, 2.5, 10.0, True, "3", None]),
        (Setting(float, low=0, open_low=True), [1e-9, 3, 2.5], [0, -1, math.nan, math.inf, "a"]),
        (Setting(float, low=0, high=1, open_high=True), [0, 0.5], [1, 1.5, -0.1]),
        (Setting(bool), [True, False], [0, 1, "true", None]),
        (Setting(str, choices=("a", "b")), ["a", "b"], ["c", 1, None]),
        (Setting(str, nullable=True), ["x", "", None], [1, 1.5, True, ["x"]]),
        (Setting(float, low=0, high=1, open_low=True, choices=("m",)), ["m", 0.5], ["n", 0]),
        (Setting(bool, choices=("x",), nullable=True), [True, "x", None], ["y", 1]),
        (Setting(list, length=2, item=Setting(float, low=0)), [[0, 1.5]], [[1], [1, -1], "ab"]),
    ],
)
def test_a_setting_accepts_its_kind_and_range_only(setting: Setting, good: list, bad: list):
    assert all(setting.accepts(v) for v in good), [v for v in good if not setting.accepts(v)]
    assert not any(setting.accepts(v) for v in bad), [v for v in bad if setting.accepts(v)]


def test_the_refusal_names_the_key_what_it_takes_and_the_value():
    cfg = OmegaConf.create({"data": {"batch_size": 2.5, "seq_len": "???"}})
    with pytest.raises(UserError, match=r"^data.batch_size must be an integer >= 1, got 2.5$"):
        check_settings(cfg, TRAIN_SETTINGS)
    # Absent keys (another model family's) and values still to fill in are not checked.
    check_settings(OmegaConf.create({"data": {"seq_len": "???"}}), TRAIN_SETTINGS)
    cfg = OmegaConf.create({"seed": "${oc.env:GM_NO_SUCH_VARIABLE}"})
    with pytest.raises(UserError, match=r"^seed cannot be read"):
        check_settings(cfg, TRAIN_SETTINGS)


def composed_train_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_every_setting_gm_checks_is_a_key_of_the_configs():
    """The tables name real keys: a renamed config key would leave its check behind."""
    keys = set()
    for choice in ("model=astra_alpha", "model=mlp", "model=ngram", "data=shakespeare_spm"):
        keys |= set(leaf_keys(composed_train_config(choice)))
    optional = {"optimizer.eps"}  # added on the command line: +optimizer.eps=1e-4
    assert set(TRAIN_SETTINGS) - optional <= keys, set(TRAIN_SETTINGS) - optional - keys
    generate = OmegaConf.load(CONF_DIR / "generate.yaml")
    assert set(GENERATE_SETTINGS) == {k for k in generate if k not in ("defaults", "hydra")}


# --- the property ------------------------------------------------------------------------


def leaf_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every leaf key of ``cfg`` (lists are leaves), without resolving anything."""
    keys = []
    for key in cfg:
        node = cfg._get_node(key)
        path = f"{prefix}{key}"
        if isinstance(node, DictConfig):
            keys.extend(leaf_keys(node, f"{path}."))
        else:
            keys.append(path)
    return keys


TEXT = st.text(alphabet="abcxyz019 _-./", max_size=12)
# Integers stay small: a huge one is a valid length or count of a run that takes that long.
VALUES = st.one_of(
    st.integers(-3, 40),
    st.just(-(2**40)),
    st.floats(-2, 2, allow_nan=False),
    st.sampled_from([0.0, 1e-300, 1e300, math.nan, math.inf, -math.inf]),
    st.booleans(),
    st.none(),
    TEXT,
    st.lists(st.integers(-2, 3), max_size=3),
)


def override(key: str, value: object) -> str:
    """``++key=value`` in Hydra's override grammar (``++``: set it, present or not)."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    elif isinstance(value, str):
        text = f"'{value}'"
    elif isinstance(value, list):
        text = "[" + ",".join(map(str, value)) + "]"
    else:
        text = repr(value)
    return f"++{key}={text}"


def assert_exit_0_or_one_sentence(proc) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode in (0, 2), proc.stderr[-3000:]
    if proc.returncode == 2:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0]), proc.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus, a finished run, and a directory for the runs the examples make."""
    root = tmp_path_factory.mktemp("settings")
    (root / "corpus.txt").write_text(generated_text(6000))
    env = entry_env(root)
    proc = run_entrypoint(
        [str(ROOT / "train.py"), f"hydra.run.dir={root / 'finished'}", *fast(root)],
        root,
        env,
        300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def entry_env(root: Path) -> dict[str, str]:
    # TORCHDYNAMO_DISABLE: compile=true is a valid value whose first compile takes minutes
    # on a CPU; the property is about the value being accepted or refused, not compiled.
    return os.environ | {"GM_DATA_DIR": str(root / "data"), "TORCHDYNAMO_DISABLE": "1"}


def fast(root: Path, key: str = "") -> list[str]:
    """Overrides for a run of seconds, without those that set ``key`` or a group above it."""
    base = [f"data.path={root / 'corpus.txt'}", *FAST_TRAIN, "model.hidden_dim=16"]
    return [a for a in base if not f"{key}.".startswith(a.lstrip("~").split("=")[0] + ".")]


RUN_NUMBERS = itertools.count()  # every example trains into a directory of its own
TRAIN_KEYS = sorted(
    k
    for k in leaf_keys(composed_train_config())
    # hydra.* is Hydra's; ``defaults`` is not a value.
    if not k.startswith(("hydra.", "defaults"))
)


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("GM_EXAMPLES", 60)),
    deadline=None,
    derandomize=not os.environ.get("GM_EXPLORE"),  # the same examples in every CI run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=st.sampled_from([*TRAIN_KEYS, *TRAIN_SETTINGS]), value=VALUES, into_old=st.booleans())
def test_any_value_at_any_training_key(workspace: Path, key: str, value, into_old: bool):
    """Exit 0, or exit 2 with one sentence; a run pointed at an existing run's directory
    is refused and leaves it byte for byte."""
    finished = workspace / "finished"
    before = tree(finished)
    run_dir = finished if into_old else workspace / "runs" / str(next(RUN_NUMBERS))
    argv = [str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *fast(workspace, key)]
    proc = run_entrypoint([*argv, override(key, value)], workspace, entry_env(workspace), 300)
    assert_exit_0_or_one_sentence(proc)
    if into_old and not key.startswith("paths."):  # paths.output_dir may send it elsewhere
        assert proc.returncode == 2
    assert tree(finished) == before


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("GM_EXAMPLES", 60)),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=st.sampled_from(sorted(GENERATE_SETTINGS)), value=VALUES)
def test_any_value_at_any_sampling_option(workspace: Path, key: str, value):
    finished = workspace / "finished"
    before = tree(finished)
    argv = [str(ROOT / "generate.py"), f"ckpt={finished}", "max_new_tokens=20"]
    argv = [a for a in argv if not a.startswith(f"{key}=")]
    proc = run_entrypoint([*argv, override(key, value)], workspace, entry_env(workspace), 300)
    assert_exit_0_or_one_sentence(proc)
    assert tree(finished) == before
