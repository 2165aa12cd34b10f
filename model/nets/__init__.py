"""The networks: their shape (`config`), registry (`architectures`), cells, wiring and the
checkpoint format."""
