"""The TensorBoard pictures in docs/guide/training.md, taken in headless Chromium.

    python docs/tensorboard_shots.py LOGDIR [--out docs/guide/img]

LOGDIR is any folder of gm runs (the docs' come from a two-job seed sweep of astra_alpha:
``python train.py -m model=astra_alpha seed=1,2 trainer.max_epochs=3
trainer.limit_train_batches=40``). It starts TensorBoard on a free local port, opens the
Scalars, Custom Scalars and HParams tabs, and saves one PNG of each. Needs Debian's
chromium and chromium-driver, and selenium.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

TABS = {"scalars": "tensorboard_scalars", "custom_scalars": "tensorboard_modes",
        "hparams": "tensorboard_hparams"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "guide" / "img")
    args = parser.parse_args(argv)
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        sys.exit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port = free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(args.logdir),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_window_size(1400, 900)
    try:
        time.sleep(8)  # TensorBoard reads the event files
        args.out.mkdir(parents=True, exist_ok=True)
        for tab, name in TABS.items():
            driver.get(f"http://127.0.0.1:{port}/#{tab}")
            time.sleep(8)
            driver.save_screenshot(str(args.out / f"{name}.png"))
            print(args.out / f"{name}.png")
    finally:
        driver.quit()
        board.terminate()


if __name__ == "__main__":
    main()
