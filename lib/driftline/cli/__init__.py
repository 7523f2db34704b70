"""Command line: the ``driftline`` command and the shared job runner."""
