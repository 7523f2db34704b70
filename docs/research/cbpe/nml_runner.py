"""Runs NannyML 0.13.1 CBPE (in its own venv) on cases written by proto.py; writes out.json."""
import json, os, sys, time, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # else it posts telemetry to segment.io on every fit
import nannyml as nml

io = sys.argv[1]
meta = json.load(open(os.path.join(io, "meta.json")))
z = np.load(os.path.join(io, "cases.npz"))
t, n_mon = meta["t"], meta["n_mon"]
METRICS = ["roc_auc", "precision", "recall", "f1", "accuracy", "confusion_matrix"]
res, needs = {}, {}
t0 = time.time()
for seed in meta["seeds"]:
    vs, vy, an = z[f"vs_{seed}"], z[f"vy_{seed}"], z[f"an_{seed}"]
    ref = pd.DataFrame({"s": vs, "y": vy.astype(int), "yp": (vs >= t).astype(int)})
    ana = pd.DataFrame({"s": an, "yp": (an >= t).astype(int)})
    est = nml.CBPE(y_pred_proba="s", y_pred="yp", y_true="y", problem_type="classification_binary",
                   metrics=METRICS, chunk_size=n_mon)
    est.fit(ref)
    needs[seed] = bool(est.needs_calibration)
    r = est.estimate(ana).filter(period="analysis").to_df()
    out = []
    for i in range(len(r)):
        row = r.iloc[i]
        g = lambda m, k="value": float(row[(m, k)])
        out.append(dict(auc=g("roc_auc"), precision=g("precision"), recall=g("recall"), f1=g("f1"),
                        accuracy=g("accuracy"), tp=g("true_positive"),
                        se_auc=g("roc_auc", "sampling_error"), se_precision=g("precision", "sampling_error"),
                        se_recall=g("recall", "sampling_error"), se_f1=g("f1", "sampling_error"),
                        se_accuracy=g("accuracy", "sampling_error"), se_tp=np.nan))
    res[str(seed)] = out
json.dump(dict(res=res, needs_calibration={str(k): v for k, v in needs.items()}, shifts=meta["shifts"],
               seconds=time.time() - t0), open(os.path.join(io, "out.json"), "w"))
print(f"nml_runner: {len(meta['seeds'])} fits in {time.time()-t0:.1f}s, nannyml {nml.__version__}, pandas {pd.__version__}")
