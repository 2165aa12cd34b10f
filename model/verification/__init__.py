"""Scores (contingency tables, CSI/FAR/POD, rain MSE) and the per-lead calibration tables:
the numerics that training, the methods, offline evaluation and live verification share."""
