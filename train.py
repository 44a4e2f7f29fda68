"""Train a GenerateMore model: `python train.py model=astra_alpha` (see conf/train.yaml).

`python train.py -m model=astra_alpha,astra_beta` sweeps; see gm/runs/sweep.py.
"""

import hydra
from omegaconf import DictConfig

from gm.cli import run_or_exit
from gm.config import CONF_DIR, is_multirun, model_choice, task_overrides
from gm.run import Run


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    from gm.runs.sweep import run_job
    from gm.training.terminal import print_summary
    from gm.training.train import train  # imported late: --help stays fast

    def train_this(cfg: DictConfig) -> dict:
        model_name = model_choice()
        if isinstance(cfg.get("resume"), str) and not is_multirun():  # (else refused by train)
            # resume=RUN_DIR alone continues the run as it was started (gm/training/resume.py).
            from gm.training.resume import restore_recipe

            cfg, changes = restore_recipe(cfg, task_overrides())
            model_name = Run(cfg.resume).model_choice() or model_name
            for line in changes:
                print(line)
        return train(cfg, model_name=model_name)

    # In a sweep a failing job is recorded and the next one starts; alone, it exits 2.
    metrics = run_job(train_this, cfg) if is_multirun() else run_or_exit(train_this, cfg)
    if metrics is not None:
        print_summary(metrics, cfg.paths.output_dir)


if __name__ == "__main__":
    main()
