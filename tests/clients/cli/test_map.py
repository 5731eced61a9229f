"""``ssald map``'s mosaic layout (the command itself runs in tests/server/test_queries.py, over a served table)."""

from __future__ import annotations

import numpy as np

from clients.cli.map import grid_sample


def test_grid_sample_picks_the_point_nearest_each_cell_centre():
    x = np.array([0.1, 0.9, 0.45, 2.0, 1.6])
    y = np.array([0.1, 0.2, 0.5, 2.0, 1.4])
    # 2x2 cells over [0.1, 2] x [0.1, 2]: centres (0.575, 0.575), (1.525, 1.525)
    assert grid_sample(x, y, 2) == [(0, 0, 2), (1, 1, 4)]
