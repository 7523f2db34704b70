"""State of one Python worker process: the loaded models and the thread limit.

Spark reuses Python workers across tasks (``spark.python.worker.reuse``, on by default), so a
model deserialized here once serves every later task of the job on that worker. The cache key is
(model name, version, artifact SHA-256): a re-registered or replaced artifact never hits a stale
entry. Bytes are verified against the SHA-256 again before skops sees them, in the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from driftline.registry.artifact import ModelCache, deserialize, verify_bytes

log = logging.getLogger(__name__)

_models = ModelCache(4)
_threads: int | None = None


def limit_threads(threads: int) -> None:
    """Cap BLAS and OpenMP threads of this process (Spark already runs one task per core)."""
    global _threads
    if _threads == threads:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    _threads = threads


def cached_model(name: str, version: str, sha256: str, fetch: Callable[[], bytes], threads: int,
                 allow_code: bool = False) -> Any:
    """The model for (name, version, sha256): from this worker's cache, else fetched, verified and loaded."""
    limit_threads(threads)

    def load() -> Any:
        data = fetch()
        verify_bytes(data, sha256, f"{name} v{version} (worker copy)")
        return deserialize(data, f"{name} v{version}", allow_code)

    # a model loaded with code allowed is not handed to a later caller that does not allow it
    return _models.get_or_load((name, version, sha256, *(("code",) if allow_code else ())), load)


def cached_keys() -> list[tuple[str, ...]]:
    """Keys of the models loaded in this process, oldest first."""
    return _models.keys()


def clear() -> None:
    """Forget the loaded models of this process."""
    _models.clear()
