"""Inference: calibration, thresholds, routing policy and the Coder."""
