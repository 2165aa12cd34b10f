"""Service edge: command line, HTTP API, metrics and publishing."""
