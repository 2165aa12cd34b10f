"""Radar frames in, normalised rolling window out.

Pure pre-processing lives in `conversion`, `normalize` and `noise_mask`; the side effects
(files, Redis) sit in thin adapters: `reader`, `archive`, `quarantine`, `window`, `worker`.
"""
