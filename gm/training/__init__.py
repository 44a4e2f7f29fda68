"""Training: the LightningModule, its metrics, schedule and callbacks, and one run."""
