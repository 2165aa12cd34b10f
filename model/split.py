"""Time-block split (METHOD.md, "Data set construction"): train, validation and test never
share a frame, and no window crosses a block.

Each event's frames are cut into consecutive blocks of ``block_frames``; all blocks, numbered
in order through the events, are assigned by the repeating pattern train x4, validation, test
(4 : 1 : 1), so every stretch of six blocks holds each set in proportion.
Windows (in + out frames) are then cut inside each block only.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.events import Event

PATTERN = ("train", "train", "train", "train", "validation", "test")


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


def assign_blocks(events: list[Event], block_frames: int) -> list[Block]:
    """Blocks of every event with their split."""
    blocks: list[Block] = []
    for event in events:
        for b in range(len(event.times) // block_frames):
            split = PATTERN[len(blocks) % len(PATTERN)]
            blocks.append(Block(event.name, b * block_frames, block_frames, split))
    return blocks


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
