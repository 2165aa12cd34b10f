"""The helpers of the new-rain diagnosis (model.experiments.new_rain_diagnosis)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from model.experiments.new_rain_diagnosis import edge_distance_cells, far_from_rain


def test_edge_distance_counts_to_the_grid_edge_or_the_coverage_edge():
    covered = np.ones((9, 9), dtype=bool)
    distance = edge_distance_cells(covered)
    assert distance[4, 4] == 4 and distance[0, 3] == 0 and distance[2, 7] == 1
    covered[:, 6:] = False  # outside coverage from column 6
    distance = edge_distance_cells(covered)
    assert distance[4, 4] == 2 and distance[4, 5] == 1 and distance[4, 1] == 1


def test_far_from_rain_lies_beyond_the_leads_neighbourhood_plus_the_margin():
    rain = np.zeros((1, 40), dtype=np.float32)
    rain[0, 0] = 3.0  # one wet cell
    far = far_from_rain(rain, lead=5)  # beyond 5 + 10 cells
    assert not far[0, :16].any() and far[0, 16:].all()
    assert far_from_rain(np.zeros((3, 3)), lead=1).all()  # no forecast rain: all far


def test_the_diagnosis_refuses_the_test_split():
    done = subprocess.run(
        [sys.executable, "-m", "model.experiments.new_rain_diagnosis", ".", "--split", "test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "invalid choice: 'test'" in done.stderr
