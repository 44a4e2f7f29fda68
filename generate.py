"""Sample from a trained model: `python generate.py ckpt=RUN_DIR mode=compare`.

`prompt=` is free text, taken from the command line before Hydra parses it
(gm/generation/prompt.py); `prompt=-` reads standard input, `prompt_file=PATH` a file.
"""

import sys

import hydra
from omegaconf import DictConfig

from gm.cli import run_or_exit
from gm.config import CONF_DIR
from gm.help import exit_with_help, wants_help

USAGE = (
    "usage: python generate.py ckpt=RUN_DIR [mode=stateful|chunk|stateless|compare] [key=value ...]"
)

PROMPT: str | None = None  # the free-text prompt of this command, when it gives one


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="generate")
def main(cfg: DictConfig) -> None:
    from gm.generation.run import run  # imported late: --help stays fast

    # The prompt travels beside the config: inside it, OmegaConf would resolve ${...}.
    run_or_exit(run, cfg, prompt_text=PROMPT)


if __name__ == "__main__":
    if wants_help(sys.argv):  # this command's own keys, not the training groups
        exit_with_help(CONF_DIR / "generate.yaml", USAGE)
    from gm.generation.prompt import take_prompt  # (gm.generation brings torch: after --help)

    sys.argv, PROMPT = run_or_exit(take_prompt, sys.argv)
    main()
