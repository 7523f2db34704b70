"""A Bloom filter of a reference's categories, probed with Spark's ``xxhash64`` of the value.

The profile pass finds the current values that the reference never held (the unseen share) without the
reference's category list: the filter answers "certainly never seen" or "probably seen", with a false-positive
rate fixed when it is built (`Membership.fpr`). A value is hashed once, by Spark (``xxhash64(value)`` with
Spark's seed 42, identical on the driver, in Python workers and on the JVM); the filter derives its ``k``
probe positions from the two 32-bit halves of that hash (Kirsch–Mitzenmacher double hashing), so the JVM
fold (``driftline.jvm.ProfileFold``) and the numpy fold answer alike.

Probe i (1..k) of a hash h: ``((h mod 2³²) + i·(h >>> 32)) mod 2⁶⁴ mod m`` with m a power of two, so the
arithmetic is the same in unsigned numpy and in Java's wrapping ``long``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MIN_BITS = 64
MAX_BITS = 1 << 27  # 16 MiB: a filter this large holds ~14 M values at 1 % false positives


@dataclass(frozen=True)
class Membership:
    """A Bloom filter of ``count`` values: ``bits`` (a power of two), ``hashes`` probes per value, the words."""

    bits: int
    hashes: int
    count: int
    words: bytes  # bits / 8 bytes: little-endian 64-bit words

    @property
    def fpr(self) -> float:
        """Probability that a value never added is reported present: (1 − e^(−k·n/m))^k."""
        if self.count == 0:
            return 0.0
        return (1.0 - math.exp(-self.hashes * self.count / self.bits)) ** self.hashes

    def to_text(self) -> str:
        """The words as base64 (stored with the reference)."""
        return base64.b64encode(self.words).decode("ascii")

    @classmethod
    def from_text(cls, bits: int, hashes: int, count: int, text: str) -> Membership:
        words = base64.b64decode(text.encode("ascii"))
        if len(words) * 8 != bits:
            raise ValueError(f"membership filter: expected {bits // 8} bytes, found {len(words)}")
        return cls(bits, hashes, count, words)

    def contains(self, hashes: Any) -> Any:
        """Boolean numpy array: which of the int64 ``hashes`` may be members (False = certainly not)."""
        import numpy as np

        h = np.asarray(hashes, dtype=np.int64).view(np.uint64)
        lo, hi = h & np.uint64(0xFFFFFFFF), h >> np.uint64(32)
        words = np.frombuffer(self.words, dtype="<u8")
        mask = np.uint64(self.bits - 1)
        present = np.ones(h.shape, dtype=bool)
        for i in range(1, self.hashes + 1):
            pos = (lo + np.uint64(i) * hi) & mask
            present &= ((words[(pos >> np.uint64(6)).astype(np.int64)] >> (pos & np.uint64(63))) & np.uint64(1)) == 1
        return present

    def spec(self) -> dict[str, Any]:
        """What the JVM fold needs (JSON-serializable)."""
        return {"bits": self.bits, "hashes": self.hashes, "words": self.to_text()}


def build_membership(hashes: Iterable[int] | Any, fpr: float) -> Membership:
    """The filter of the distinct int64 ``hashes`` (an iterable or a numpy array) sized for false-positive rate
    ``fpr`` (capped at `MAX_BITS`)."""
    import numpy as np

    if not 0 < fpr < 1:
        raise ValueError(f"membership fpr: expected a rate in (0, 1), found {fpr}")
    h = np.unique(hashes.astype(np.int64) if isinstance(hashes, np.ndarray) else np.fromiter(hashes, dtype=np.int64))
    n = int(h.size)
    ideal = -n * math.log(fpr) / (math.log(2) ** 2) if n else MIN_BITS
    bits = min(max(MIN_BITS, 1 << max(int(math.ceil(math.log2(max(ideal, 1)))), 6)), MAX_BITS)
    k = max(1, round(bits / max(n, 1) * math.log(2))) if n else 1
    k = min(k, 16)
    words = np.zeros(bits // 64, dtype="<u8")
    u = h.view(np.uint64)
    lo, hi = u & np.uint64(0xFFFFFFFF), u >> np.uint64(32)
    mask = np.uint64(bits - 1)
    for i in range(1, k + 1):
        pos = (lo + np.uint64(i) * hi) & mask
        np.bitwise_or.at(words, (pos >> np.uint64(6)).astype(np.int64), np.uint64(1) << (pos & np.uint64(63)))
    return Membership(bits, k, n, words.tobytes())
