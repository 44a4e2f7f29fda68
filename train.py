"""Train a GenerateMore model: `python train.py model=astra_alpha` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from gm.cli import run_or_exit
from gm.config import CONF_DIR


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    from gm.training.summary import print_summary
    from gm.training.train import train  # imported late: --help stays fast

    metrics = run_or_exit(train, cfg)
    print_summary(metrics, cfg.paths.output_dir)


if __name__ == "__main__":
    main()
