"""The train job's idempotency key: a hash of the content of the training and validation rows."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def training_fingerprint(train: pd.DataFrame, validation: pd.DataFrame) -> str:
    """sha256 of the training and validation rows, whatever their order (the train job's idempotency key).

    Per split: the column names and dtypes, then the sorted 64-bit hashes of its rows
    (`pandas.util.hash_pandas_object`, index excluded).
    """
    digest = hashlib.sha256()
    for name, frame in (("train", train), ("validation", validation)):
        cols = sorted(frame.columns)
        digest.update(f"{name}:{len(frame)}:{[(c, str(frame[c].dtype)) for c in cols]}".encode())
        rows = pd.util.hash_pandas_object(frame[cols], index=False).to_numpy()
        digest.update(np.sort(rows).tobytes())
    return digest.hexdigest()
