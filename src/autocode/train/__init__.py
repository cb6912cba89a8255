"""Training: data → fit → calibrate → thresholds → evaluate → MLflow (`run.run_training`)."""
