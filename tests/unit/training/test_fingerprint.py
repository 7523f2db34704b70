"""The train job's idempotency key: the content of the training and validation rows."""

from __future__ import annotations

import pandas as pd

from driftline.training.fingerprint import training_fingerprint

TRAIN = pd.DataFrame({"customer_id": ["a", "b", "c"], "x1": [1.0, None, 3.0], "plan": ["p", "q", None],
                      "label": [0.0, 1.0, 0.0]})
VAL = pd.DataFrame({"customer_id": ["d"], "x1": [4.0], "plan": ["p"], "label": [1.0]})


def test_same_rows_in_any_order_give_the_same_key() -> None:
    shuffled = TRAIN.iloc[[2, 0, 1]][["plan", "label", "x1", "customer_id"]].reset_index(drop=True)
    assert training_fingerprint(shuffled, VAL) == training_fingerprint(TRAIN, VAL)


def test_any_changed_value_row_or_split_changes_the_key() -> None:
    base = training_fingerprint(TRAIN, VAL)
    changed = TRAIN.copy()
    changed.loc[1, "x1"] = 2.0                                        # a null became a value
    label = TRAIN.copy()
    label.loc[0, "label"] = 1.0
    assert len({base, training_fingerprint(changed, VAL), training_fingerprint(label, VAL),
                training_fingerprint(TRAIN.iloc[:2], VAL),            # a row fewer
                training_fingerprint(VAL, TRAIN),                     # the splits swapped
                training_fingerprint(pd.concat([TRAIN, VAL], ignore_index=True), VAL.iloc[:0])}) == 6
