"""State of one Python worker process: the loaded models and the thread limit.

Spark reuses Python workers across tasks (``spark.python.worker.reuse``, on by default), so a
model deserialized here once serves every later task of the job on that worker. The cache key is
(model name, version, artifact SHA-256): a re-registered or replaced artifact never hits a stale
entry. Bytes are verified against the SHA-256 again before skops sees them, in the worker.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from driftline.registry.artifact import deserialize, verify_bytes

log = logging.getLogger(__name__)

_CACHE_SIZE = 4
_models: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
_lock = threading.Lock()
_threads: int | None = None


def limit_threads(threads: int) -> None:
    """Cap BLAS and OpenMP threads of this process (Spark already runs one task per core)."""
    global _threads
    if _threads == threads:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    _threads = threads


def cached_model(name: str, version: str, sha256: str, fetch: Callable[[], bytes], threads: int) -> Any:
    """The model for (name, version, sha256): from this worker's cache, else fetched, verified and loaded."""
    limit_threads(threads)
    key = (name, version, sha256)
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    data = fetch()
    verify_bytes(data, sha256, f"{name} v{version} (worker copy)")
    model = deserialize(data, f"{name} v{version}")
    with _lock:
        _models[key] = model
        while len(_models) > _CACHE_SIZE:
            _models.popitem(last=False)
    return model


def cached_keys() -> list[tuple[str, str, str]]:
    """Keys of the models loaded in this process, oldest first."""
    with _lock:
        return list(_models)


def clear() -> None:
    """Forget the loaded models of this process."""
    with _lock:
        _models.clear()
