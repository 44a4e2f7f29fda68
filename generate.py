"""Sample from a trained model: `python generate.py ckpt=RUN_DIR mode=compare`."""

import hydra
from omegaconf import DictConfig

from gm.cli import run_or_exit
from gm.config import CONF_DIR


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="generate")
def main(cfg: DictConfig) -> None:
    from gm.generation.run import run  # imported late: --help stays fast

    run_or_exit(run, cfg)


if __name__ == "__main__":
    main()
