"""Model artifacts: skops serialization, SHA-256 at registration, verification before any load.

Two independent defenses (R16, R17):

1. The SHA-256 of the serialized bytes is recorded on the registered version. Loading reads the
   file ONCE into memory, hashes those bytes and refuses them on any mismatch (truncated, replaced,
   tampered) — before a single byte is handed to a deserializer.
2. The bytes are skops, not pickle: skops rebuilds only types on an allow-list
   (`TRUSTED_TYPES` beyond skops' own defaults) and never runs ``__reduce__`` payloads.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from driftline.errors import ArtifactIntegrityError

log = logging.getLogger(__name__)

MODEL_FILE = "model.skops"

# Types that skops does not trust by default but driftline's pipelines need (checked in tests for
# every configurable estimator). Anything else in an artifact is refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def serialize(model: Any) -> bytes:
    """The model as skops bytes; refuses a model that would need types outside `TRUSTED_TYPES`."""
    import skops.io as sio

    data: bytes = sio.dumps(model)
    extra = untrusted_types(data)
    if extra:
        raise ArtifactIntegrityError(
            f"model artifact: expected only trusted types, found {', '.join(extra)}; "
            "add them to driftline.registry.artifact.TRUSTED_TYPES only if they are safe"
        )
    return data


def untrusted_types(data: bytes, trusted: Sequence[str] = TRUSTED_TYPES) -> list[str]:
    """Types in skops ``data`` that are neither skops defaults nor in ``trusted`` (reads the schema only)."""
    import skops.io as sio

    return sorted(set(sio.get_untrusted_types(data=data)) - set(trusted))


def verify_bytes(data: bytes, expected_sha256: str, source: str) -> None:
    """`ArtifactIntegrityError` unless ``data`` hashes to ``expected_sha256``."""
    if not expected_sha256:
        raise ArtifactIntegrityError(
            f"model artifact {source}: expected a SHA-256 recorded at registration, found none; refusing to load"
        )
    found = sha256_bytes(data)
    if found != expected_sha256.lower():
        raise ArtifactIntegrityError(
            f"model artifact {source}: expected SHA-256 {expected_sha256} (recorded at registration), "
            f"found {found} ({len(data)} bytes); the file is corrupted or was replaced — refusing to load"
        )


def read_verified(path: str | Path, expected_sha256: str) -> bytes:
    """The bytes of ``path`` after their hash matched (read once: no check-then-reload window)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ArtifactIntegrityError(f"model artifact {path}: cannot read ({exc.strerror})") from None
    verify_bytes(data, expected_sha256, str(path))
    return data


def deserialize(data: bytes, source: str, allow_code: bool = False) -> Any:
    """Rebuild a model from verified bytes: skops (`deserialize_skops`), or an adopted model's artifact
    (`driftline.registry.adopted`), whose formats run no code, except a generic python_function model: loaded only
    with ``allow_code`` (the config's ``adopt.trust_pickle``), refused otherwise."""
    from driftline.registry import adopted  # a model driftline adopted (`driftline models adopt`)

    if adopted.is_adopted(data):
        return adopted.unpack(data, source, allow_code)
    return deserialize_skops(data, source)


def deserialize_skops(data: bytes, source: str) -> Any:
    """Rebuild a model from skops bytes, trusting only `TRUSTED_TYPES` beyond skops defaults."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        extra = untrusted_types(data)
        if extra:
            raise ArtifactIntegrityError(
                f"model artifact {source}: expected only trusted types, found {', '.join(extra)}; refusing to load"
            )
        return sio.loads(data, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ArtifactIntegrityError(f"model artifact {source}: untrusted types ({exc}); refusing to load") from None
    except ArtifactIntegrityError:
        raise
    except Exception as exc:  # a malformed archive that nevertheless matched its hash
        raise ArtifactIntegrityError(
            f"model artifact {source}: expected a skops archive, found unreadable content ({type(exc).__name__})"
        ) from None


def load_verified(path: str | Path, expected_sha256: str) -> Any:
    """Read ``path``, check its SHA-256, then deserialize it with skops (trusted types only)."""
    data = read_verified(path, expected_sha256)
    log.debug("model artifact %s: SHA-256 verified (%d bytes)", path, len(data))
    return deserialize(data, str(path))


class ModelCache:
    """A small thread-safe LRU of deserialized models, keyed by something that includes the artifact's
    SHA-256 (a replaced artifact never hits a stale entry). The loader runs outside the lock."""

    def __init__(self, size: int):
        self.size = size
        self._models: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: tuple[str, ...], load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = load()
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model

    def keys(self) -> list[tuple[str, ...]]:
        """Keys of the cached models, oldest first."""
        with self._lock:
            return list(self._models)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
