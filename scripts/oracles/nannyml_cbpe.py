"""NannyML 0.13.1's CBPE on cases written by a test: the oracle of `driftline.monitoring.estimated`.

Runs in ``.venv-nannyml`` only (`scripts/nannyml_oracle.sh` builds it), never in driftline's own process:
importing NannyML turns Spark's ANSI mode off (FLAML) and it posts usage unless NML_DISABLE_USAGE_LOGGING=1.

    .venv-nannyml/bin/python scripts/oracles/nannyml_cbpe.py CASES.npz OUT.json THRESHOLD CHUNK_SIZE

CASES.npz holds per case i ``ref_s_<i>`` / ``ref_y_<i>`` (reference scores and 0/1 labels) and ``ana_s_<i>``
(analysis scores, cut into chunks of CHUNK_SIZE rows). OUT.json: ``{"nannyml": version, "cases": [{"needs_
calibration": bool, "chunks": [{auc, precision, recall, f1, accuracy, tp, fp, fn, tn}, …]}, …]}``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # before the import: else it posts usage to segment.io
warnings.filterwarnings("ignore")

import nannyml as nml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

METRICS = ["roc_auc", "precision", "recall", "f1", "accuracy", "confusion_matrix"]
FIELDS = {"auc": "roc_auc", "precision": "precision", "recall": "recall", "f1": "f1", "accuracy": "accuracy",
          "tp": "true_positive", "fp": "false_positive", "fn": "false_negative", "tn": "true_negative"}


def run_case(ref_s: np.ndarray, ref_y: np.ndarray, ana_s: np.ndarray, threshold: float, chunk: int) -> dict:
    """Fit CBPE on the reference, estimate every analysis chunk."""
    ref = pd.DataFrame({"s": ref_s, "y": ref_y.astype(int), "yp": (ref_s >= threshold).astype(int)})
    ana = pd.DataFrame({"s": ana_s, "yp": (ana_s >= threshold).astype(int)})
    est = nml.CBPE(y_pred_proba="s", y_pred="yp", y_true="y", problem_type="classification_binary",
                   metrics=METRICS, chunk_size=chunk)
    est.fit(ref)
    res = est.estimate(ana).filter(period="analysis").to_df()
    chunks = [{k: float(res.iloc[i][(m, "value")]) for k, m in FIELDS.items()} for i in range(len(res))]
    return {"needs_calibration": bool(est.needs_calibration), "chunks": chunks}


def main(argv: list[str]) -> None:
    src, out, threshold, chunk = argv[1], argv[2], float(argv[3]), int(argv[4])
    z = np.load(src)
    n = len([k for k in z.files if k.startswith("ref_s_")])
    cases = [run_case(z[f"ref_s_{i}"], z[f"ref_y_{i}"], z[f"ana_s_{i}"], threshold, chunk) for i in range(n)]
    with open(out, "w") as f:
        json.dump({"nannyml": nml.__version__, "cases": cases}, f)


if __name__ == "__main__":
    main(sys.argv)
