"""Evaluation and reporting: scores, offline evaluation, calibration (fit and apply), plots
and the model card."""
