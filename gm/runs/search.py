"""Hyperparameter search with Optuna over train.py's configuration (optional extra).

    python -m gm.search --trials 20 --param optimizer.lr=log:3e-4:1e-2 \\
        --param model.dropout=0:0.3 model=astra_alpha [more train.py overrides]

Optuna (TPE, seeded) proposes each trial's values; the trial composes ``conf/train.yaml``
through Hydra's compose API with the fixed overrides plus its own, and trains as an
ordinary run in ``outputs/search/<time>/<n>_<values>/``. Its objective is the run's best
validation metric (``val/bpc`` by default) from ``metrics.json``. The study is kept in
``optuna.db`` beside the trials, so ``--dir`` continues a search; the end writes
``best.json`` and the ``gm.report`` files. A failed trial is recorded like a failed sweep
job and the search goes on. Nothing is pruned: every trial trains to the end.

Search spaces: ``KEY=LOW:HIGH`` (uniform float), ``KEY=log:LOW:HIGH`` (log-uniform),
``KEY=int:LOW:HIGH`` (integer, both ends included), ``KEY=choice:A,B,C``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf, open_dict

from gm.atomic import write_bytes_atomic, write_json_atomic
from gm.config import CONF_DIR, job_dirname, project_root
from gm.errors import UserError
from gm.modes import MODES, chunk_mode

KINDS = ("float", "log", "int", "choice")


@dataclass(frozen=True)
class Param:
    """One searched key and its range."""

    key: str
    kind: str  # one of KINDS
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value Optuna proposes for this key in ``trial``."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")


def parse_param(text: str) -> Param:
    """``KEY=SPEC`` as described in the module docstring; bad input is one sentence."""
    key, sep, spec = text.partition("=")
    kind, _, rest = spec.partition(":") if spec.split(":")[0] in KINDS else ("float", "", spec)
    try:
        if not (sep and key and rest):
            raise ValueError
        if kind == "choice":
            choices = tuple(c for c in rest.split(",") if c)
            if len(choices) < 2:
                raise ValueError
            return Param(key, kind, choices=choices)
        low, high = (float(v) for v in rest.split(":"))
        if not low < high or (kind == "log" and low <= 0):
            raise ValueError
        if kind == "int" and not (low.is_integer() and high.is_integer()):
            raise ValueError
        return Param(key, kind, low, high)
    except ValueError:
        raise UserError(
            f"--param {text!r} is not KEY=LOW:HIGH, KEY=log:LOW:HIGH (LOW > 0), "
            "KEY=int:LOW:HIGH (whole numbers) or KEY=choice:A,B,..."
        ) from None


def compose_train(overrides: list[str]) -> Any:
    """``conf/train.yaml`` with ``overrides`` and its ``hydra`` node; an override that
    does not compose is one sentence."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="train"):
            return compose("train", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        first_line = str(e).strip().splitlines()[0]
        raise UserError(
            f"the overrides {' '.join(overrides)} do not compose: {first_line}"
        ) from None


def compose_trial(overrides: list[str], run_dir: Path) -> tuple[Any, str, dict[str, str]]:
    """``conf/train.yaml`` with ``overrides`` and its output in ``run_dir``, the ``model=``
    choice it was composed with, and the ``.hydra/`` record ``train.py`` would write (written
    once the trial has run: a run directory that has a record already holds a run)."""
    # Quoted: a trial's directory name holds '=' and ','.
    quoted = str(run_dir).replace("\\", "\\\\").replace("'", "\\'")
    cfg = compose_train([*overrides, f"paths.output_dir='{quoted}'"])
    record = {
        "hydra.yaml": OmegaConf.to_yaml({"hydra": cfg.hydra}),
        "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(overrides)),
    }
    with open_dict(cfg):
        choice = str(cfg.hydra.runtime.choices.get("model") or "")
        del cfg["hydra"]
    record["config.yaml"] = OmegaConf.to_yaml(cfg)
    return cfg, choice, record


def write_record(run_dir: Path, record: dict[str, str]) -> None:
    """A trial's ``.hydra/``, unless training wrote one."""
    if not (run_dir / ".hydra").exists():
        for name, text in record.items():
            write_bytes_atomic(run_dir / ".hydra" / name, text.encode())


def logged_metrics(cfg: Any) -> list[str]:
    """The validation metrics a run of ``cfg`` records as its best: loss, bpc and ppl in
    every mode, and in each extra chunk mode its ``eval.chunk_len`` adds."""
    from gm.evaluation import metric_key  # (imports torch: not for --help)

    seq_len = OmegaConf.select(cfg, "data.seq_len")
    extra = [chunk_mode(n) for n in (OmegaConf.select(cfg, "eval.chunk_len") or []) if n != seq_len]
    return [metric_key(n, m) for m in (*MODES, *extra) for n in ("bpc", "loss", "ppl")]


def search(
    params: list[Param],
    overrides: list[str],
    trials: int,
    out: Path,
    metric: str = "val/bpc",
    seed: int = 0,
) -> dict[str, Any]:
    """Run ``trials`` more trials of the study kept in ``out``; return its best."""
    try:
        import optuna
    except ImportError:
        raise UserError('python -m gm.search needs Optuna: pip install -e ".[search]"') from None
    from gm.runs.report import write_report
    from gm.runs.sweep import record_failure
    from gm.training.train import train

    if not params:
        raise UserError("give at least one --param KEY=SPEC to search over")
    if trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    keys = [p.key for p in params]
    for key in keys:
        if keys.count(key) > 1:
            raise UserError(f"--param {key} is given {keys.count(key)} times; give each key once")
    # Bad fixed overrides, unknown searched keys or metrics fail now, once, not in every
    # trial (or after training the first).
    base = compose_train(overrides)
    for p in params:
        if not p.key.startswith("+") and OmegaConf.select(base, p.key) is None:
            raise UserError(f"--param {p.key}: the training config has no such key")
    logged = logged_metrics(base)
    if metric not in logged:
        raise UserError(
            f"--metric {metric} is not a metric gm logs; choose one of {', '.join(logged)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name="gm",
        storage=f"sqlite:///{out / 'optuna.db'}",
        load_if_exists=True,  # --dir continues an earlier search
        direction="minimize",
    )
    # Seeded for reproducibility; a continued search is seeded past its earlier trials
    # so that it does not propose their values again.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))

    def objective(trial: optuna.Trial) -> float:
        values = [f"{p.key}={p.suggest(trial)}" for p in params]
        run_dir = out / job_dirname(trial.number, ",".join(values))
        trial.set_user_attr("run", str(run_dir))
        record: dict[str, str] = {}
        try:
            cfg, model_name, record = compose_trial([*overrides, *values], run_dir)
            metrics = train(cfg, model_name=model_name)
            value = metrics.get("best", {}).get(metric)
            if value is None:
                raise UserError(f"the run logged no {metric}; choose --metric among its val/*")
        except Exception as e:
            write_record(run_dir, record)
            record_failure(run_dir, trial.number, [*overrides, *values], e)
            raise
        write_record(run_dir, record)
        print(f"trial {trial.number}: {metric} {value:.4f} ({' '.join(values)})", file=sys.stderr)
        return float(value)

    study.optimize(objective, n_trials=trials, catch=(Exception,))
    write_report([out], out)
    done = [t for t in study.trials if t.value is not None]
    if not done:
        raise UserError(f"every trial failed; see the failed.json files in {out}")
    best = study.best_trial
    result = {
        "metric": metric,
        "value": best.value,
        "params": best.params,
        "run": best.user_attrs["run"],
        "trials": len(study.trials),
        "failed": len(study.trials) - len(done),
    }
    write_json_atomic(out / "best.json", result)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gm.search", description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="train.py overrides fixed for every trial")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=SPEC", help="a searched key"
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--metric", default="val/bpc", help="minimised; from metrics.json")
    parser.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed")
    parser.add_argument("--dir", help="where the study and its trials live (default: new)")
    args = parser.parse_args(argv)
    from gm.cli import run_or_exit

    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(args.dir or Path(project_root()) / "outputs" / "search" / stamp)
    params = [run_or_exit(parse_param, p) for p in args.param]
    best = run_or_exit(search, params, args.overrides, args.trials, out, args.metric, args.seed)
    print(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
