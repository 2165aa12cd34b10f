"""Radar events as the model stage reads them, and the time-block split."""
