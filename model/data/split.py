"""Time-block split (METHOD.md, "Data set construction"): train, validation and test never
share a frame, and no window crosses a block.

Each event's frames are cut into consecutive blocks of ``block_frames``. The blocks are then
stratified by their rain (the share of cells at or above about 5, 2 and 0.5 mm/h over the
block's frames, compared in that order: heavy rain first, as it is the rarest) and dealt from
the wettest to the driest like a snake draft: each run of six blocks gives four to training,
one to validation and one to test (4 : 1 : 1), the validation and test blocks at the wet end
of even runs and at the dry end of odd runs. So validation and test each take the wettest
blocks of the data (rain at every lead, also at 2 and 5 mm/h; the first split's validation held
rain at two leads only) and draw from every stratum, without being wetter than training overall.
Ties are broken by event name and block start, so the split is a pure function of the data.
Each collection of events (`model.data.events.Event.collection`: the folders of frames, and
each folder of multi-time archives) is dealt on its own, so every archive gives validation and
test blocks too, and adding archives leaves the other events' blocks where they were (the old
test split stays a comparable table). Windows (in + out frames) are then cut inside each block
only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.data.events import Event

PATTERNS = (
    ("validation", "test", "train", "train", "train", "train"),
    ("train", "train", "train", "train", "test", "validation"),
)
"""Assignment of each run of six blocks, wettest first; runs alternate between the two."""

WET_GREYS = (0.5524, 0.4728, 0.3524)
"""Grey levels of 5, 2 and 0.5 mm/h (Marshall-Palmer, grey = (dBZ + 10) / 80): the strata."""


@dataclass(frozen=True)
class WindowRef:
    """One window: ``event_index`` into the event list, first frame ``start``."""

    event_index: int
    start: int


@dataclass(frozen=True)
class Block:
    event: str
    first: int  # index of the block's first frame in its event
    frames: int
    split: str


def wetness(grey: np.ndarray) -> tuple[float, ...]:
    """Shares of the cells of ``grey`` (any shape) at or above each of `WET_GREYS`."""
    values = np.nan_to_num(grey, nan=0.0)
    return tuple(float(np.mean(values >= g)) if values.size else 0.0 for g in WET_GREYS)


def assign_blocks(events: list[Event], block_frames: int) -> list[Block]:
    """Blocks of every event with their split, in event and time order; each collection of
    events is dealt on its own."""
    places = [
        (event, b * block_frames)
        for event in events
        for b in range(len(event.times) // block_frames)
    ]
    wet = [wetness(e.grey[first : first + block_frames]) for e, first in places]
    split_of: dict[int, str] = {}
    for collection in sorted({e.collection for e, _ in places}):
        members = [i for i, (e, _) in enumerate(places) if e.collection == collection]
        order = sorted(
            members,
            key=lambda i: (*(-w for w in wet[i]), places[i][0].name, places[i][1]),
        )
        for rank, i in enumerate(order):
            pattern = PATTERNS[(rank // 6) % len(PATTERNS)]
            split_of[i] = pattern[rank % 6]
    return [
        Block(event.name, first, block_frames, split_of[i])
        for i, (event, first) in enumerate(places)
    ]


def split_windows(
    events: list[Event], in_frames: int, out_frames: int, block_frames: int, stride: int = 1
) -> tuple[dict[str, list[WindowRef]], list[Block]]:
    """Windows per split ("train", "validation", "test") and the blocks they came from."""
    if block_frames < in_frames + out_frames:
        raise ValueError(
            f"block_frames {block_frames} cannot hold a {in_frames + out_frames} window"
        )
    blocks = assign_blocks(events, block_frames)
    by_event = {e.name: i for i, e in enumerate(events)}
    windows: dict[str, list[WindowRef]] = {"train": [], "validation": [], "test": []}
    for e_index, event in enumerate(events):
        valid_starts = set(event.window_starts(in_frames, out_frames, stride))
        for block in (b for b in blocks if by_event[b.event] == e_index):
            last_start = block.first + block.frames - (in_frames + out_frames)
            for start in range(block.first, last_start + 1, stride):
                if start in valid_starts:
                    windows[block.split].append(WindowRef(e_index, start))
    return windows, blocks


def training_event_folds(blocks: list[Block], n_folds: int) -> list[list[str]]:
    """The events with training blocks dealt into ``n_folds`` folds for cross-validation.

    Sorted by name (which starts with the network) and dealt in turn, so each network's events
    spread over the folds. A run that holds out fold k trains on the other folds' training
    blocks (every view of them) and is scored on fold k's: events it never saw, many more
    windows than the validation split holds.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    names = sorted({b.event for b in blocks if b.split == "train"})
    if len(names) < n_folds:
        raise ValueError(f"{len(names)} training events cannot fill {n_folds} folds")
    return [names[k::n_folds] for k in range(n_folds)]


def blocks_fraction(blocks: set[tuple[str, int]], fraction: float) -> set[tuple[str, int]]:
    """A fixed share of ``blocks`` ((event name, first frame) pairs) for a learning curve.

    A block is kept when a hash of its name and start falls below ``fraction``: a pure,
    pseudo-random choice over every event and stratum, nested (the blocks of 0.1 are among
    those of 0.3) and independent of which other blocks exist.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if fraction == 1:
        return set(blocks)
    return {b for b in blocks if _unit_hash(f"{b[0]}#{b[1]}") < fraction}


def _unit_hash(text: str) -> float:
    """A number in [0, 1) fixed by ``text`` (SHA-256), the same in every run and process."""
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
