"""The shared core at the bottom of the import layers: settings base, Redis connection, keys
and streams, files, the rain conversion and the frame record. It imports nothing of
``ingest``, ``model`` or ``service``; they import it (`tests/test_layers.py`)."""
