"""A pickle payload for the tests of R17 (a tampered artifact) and of refused pickles: unpickling it creates a file."""

from __future__ import annotations

from pathlib import Path


class Payload:
    """Unpickling this creates ``marker``: what an attacker's artifact would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))
