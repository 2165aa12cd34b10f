"""Archives as training and evaluation events (issue 31): each archive file an event, each
collection split on its own so the old split stays, and a nested share of the training blocks
for the learning curve."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.cf_writer import write_synthetic_feed
from model.data.events import event_folders, load_events
from model.data.split import assign_blocks, blocks_fraction
from tests.ingest.helpers import SMALL_GRID, small_settings
from tests.ingest.test_multitime import write_archive


def _archive_cube(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dbz = np.full((frames, *SMALL_GRID), -32.0)
    for i in range(frames):
        r, c = rng.integers(10, 60, 2)
        dbz[i, r : r + 20, c : c + 20] = rng.uniform(20, 50)
    return dbz


@pytest.fixture
def roots(tmp_path):
    folders = tmp_path / "radar"
    write_synthetic_feed(folders / "net-f", 60, site_id="f-1", shape=SMALL_GRID)
    archives = tmp_path / "archives" / "coll-a"
    minutes = [5 * i for i in range(60)]
    write_archive(archives / "run1.nc", _archive_cube(60, 1), minutes)
    write_archive(archives / "run2.nc", _archive_cube(60, 2), [m + 1440 for m in minutes])
    return folders, tmp_path / "archives"


def test_each_archive_file_is_an_event_of_its_collection(roots, tmp_path):
    settings = small_settings(tmp_path / "var")
    folders, archives = roots
    assert [p.name for p in event_folders([folders, archives])] == ["net-f", "run1.nc", "run2.nc"]
    events = load_events([folders, archives], settings)
    assert [e.name for e in events] == ["radar/net-f", "coll-a/run1", "coll-a/run2"]
    assert [e.collection for e in events] == ["", "coll-a", "coll-a"]
    assert all(e.grey.shape == (60, 32, 32) and e.cadence_min == 5 for e in events[1:])


def test_adding_archives_leaves_the_old_events_split_as_it_was(roots, tmp_path):
    settings = small_settings(tmp_path / "var")
    folders, archives = roots
    alone = assign_blocks(load_events([folders], settings), block_frames=20)
    both = assign_blocks(load_events([folders, archives], settings), block_frames=20)
    assert [b for b in both if b.event == "radar/net-f"] == alone
    archive_splits = [b.split for b in both if b.event.startswith("coll-a/")]
    assert len(archive_splits) == 6 and set(archive_splits) == {"train", "validation", "test"}


def test_a_share_of_the_training_blocks_is_fixed_nested_and_about_that_share():
    blocks = {(f"net/event{e}", 30 * b) for e in range(40) for b in range(50)}
    tenth, third = blocks_fraction(blocks, 0.1), blocks_fraction(blocks, 0.3)
    assert tenth < third < blocks and blocks_fraction(blocks, 1.0) == blocks
    assert len(tenth) / len(blocks) == pytest.approx(0.1, abs=0.02)
    assert len(third) / len(blocks) == pytest.approx(0.3, abs=0.03)
    assert blocks_fraction(set(list(blocks)[:100]), 0.1) == tenth & set(list(blocks)[:100])
    with pytest.raises(ValueError, match="fraction"):
        blocks_fraction(blocks, 0.0)
