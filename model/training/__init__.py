"""Training: events and the time-block split, training windows, losses, the trainers and
their sittings."""
