"""Reference implementation + experiment harness: CBPE-style estimated performance from one-pass aggregates.

What the monitor sees for a window (one distributed pass, aggregates only):
    per score cell k (edges fixed at train time):  n_k, S1_k = sum p_hat, S2_k = sum p_hat^2,
    and for the Brier of the raw score also  Ss_k = sum s, Sss_k = sum s^2, Ssp_k = sum s*p_hat.
With a *cell-constant* calibrator (p_hat = c_k for every row of cell k) all of these follow from
n_k, Ss_k, Sss_k and the stored table c: S1 = n c, S2 = n c^2, Ssp = c Ss.

Run:  /work/main/.venv/bin/python proto.py [--seeds 50] [--no-nannyml]
NannyML (if used) runs in the separate venv /tmp/cbpe_research/venv via nml_runner.py (subprocess).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from sklearn.isotonic import IsotonicRegression

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = ["auc", "precision", "recall", "f1", "accuracy", "brier"]

# ----------------------------------------------------------------------------------------------------------------
# train time: cell edges and calibrator (fitted on the validation window: scores + labels)
# ----------------------------------------------------------------------------------------------------------------


def fit_edges(val_scores: np.ndarray, n_cells: int, thresholds=()) -> np.ndarray:
    """Quantile edges of the validation scores, decision threshold(s) inserted as edges, open ends.
    Cell k = [e_k, e_{k+1}); prediction = (s >= t) is then constant inside every cell."""
    q = np.quantile(val_scores, np.linspace(0, 1, n_cells + 1)[1:-1])
    e = np.unique(np.concatenate([q, np.asarray(thresholds, float)]))
    return np.concatenate([[-np.inf], e, [np.inf]])


def cell_index(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, scores, side="right") - 1


class IsotonicCal:
    """sklearn IsotonicRegression(out_of_bounds='clip') == what NannyML uses; stored as (x, y) knots for np.interp."""

    def fit(self, s, y):
        r = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(s, y)
        self.x, self.y = r.X_thresholds_, r.y_thresholds_
        return self

    def __call__(self, s):
        return np.interp(s, self.x, self.y)  # == IsotonicRegression.predict (linear between knots, clipped)


def cell_table(edges, val_s, val_y, kind: str, iso: IsotonicCal | None = None, prior_n: float = 2.0) -> np.ndarray:
    """Cell-constant calibrator c_k. 'iso_cell': mean isotonic p_hat of the validation rows in the cell;
    'hist': label rate in the cell shrunk towards the global rate with prior_n pseudo-rows (histogram binning)."""
    k = cell_index(val_s, edges)
    K = len(edges) - 1
    n = np.bincount(k, minlength=K).astype(float)
    if kind == "iso_cell":
        sp = np.bincount(k, weights=iso(val_s), minlength=K)
        fallback = iso(np.clip(0.5 * (edges[:-1] + edges[1:]), val_s.min(), val_s.max()))
        return np.where(n > 0, sp / np.maximum(n, 1), fallback)
    if kind == "hist":
        pos = np.bincount(k, weights=val_y, minlength=K)
        prior = val_y.mean()
        c = (pos + prior_n * prior) / (n + prior_n)
        return c  # plain histogram binning (no monotone fix)
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------------------------------
# monitor time: one pass -> per-cell aggregates (this is the map/reduce; in Spark: groupBy(cell).agg(...))
# ----------------------------------------------------------------------------------------------------------------


def aggregate(scores, edges, p_hat) -> dict:
    k = cell_index(scores, edges)
    K = len(edges) - 1
    bc = lambda w=None: np.bincount(k, weights=w, minlength=K).astype(float)  # noqa: E731
    return dict(n=bc(), S1=bc(p_hat), S2=bc(p_hat * p_hat), Ss=bc(scores), Sss=bc(scores * scores),
                Ssp=bc(scores * p_hat))


def aggregate_cellconst(scores, edges, c) -> dict:
    """Same output from counts only (+ sum s, sum s^2 for Brier) when the calibrator is cell-constant."""
    k = cell_index(scores, edges)
    K = len(edges) - 1
    n = np.bincount(k, minlength=K).astype(float)
    Ss = np.bincount(k, weights=scores, minlength=K)
    Sss = np.bincount(k, weights=scores * scores, minlength=K)
    return dict(n=n, S1=n * c, S2=n * c * c, Ss=Ss, Sss=Sss, Ssp=c * Ss)


# ----------------------------------------------------------------------------------------------------------------
# driver: estimated metrics from aggregates
# ----------------------------------------------------------------------------------------------------------------


def estimate(agg: dict, edges: np.ndarray, t: float) -> dict:
    n, P = agg["n"], agg["S1"]
    N = n - P  # expected negatives per cell
    pos = edges[:-1] >= t  # cell predicted positive (t is an edge)
    TP, FP = P[pos].sum(), N[pos].sum()
    FN, TN = P[~pos].sum(), N[~pos].sum()
    ntot = n.sum()
    # AUC: cells in score order; a positive in cell k outranks every negative in cells j<k, ties in-cell count 1/2
    below_neg = np.cumsum(N) - N
    auc = (P * below_neg).sum() + 0.5 * (P * N).sum()
    auc /= P.sum() * N.sum()
    brier = (agg["Sss"].sum() - 2 * agg["Ssp"].sum() + P.sum()) / ntot  # E[(s-y)^2] = s^2 - 2 s p + p
    return dict(auc=auc, precision=TP / (TP + FP), recall=TP / (TP + FN), f1=2 * TP / (2 * TP + FP + FN),
                accuracy=(TP + TN) / ntot, brier=brier, tp=TP, fp=FP, fn=FN, tn=TN,
                brier_cal=(P.sum() - agg["S2"].sum()) / ntot)  # expected Brier of p_hat itself


def label_noise_se(agg: dict, edges: np.ndarray, t: float) -> dict:
    """Std of (realized - expected) given the window's scores (labels ~ Bernoulli(p_hat), independent):
    Poisson-binomial variance per cell V_k = S1_k - S2_k (needs S2 = sum p_hat^2), delta method for ratios."""
    n, P, V = agg["n"], agg["S1"], agg["S1"] - agg["S2"]
    pos = edges[:-1] >= t
    TP, FN, npp, ntot = P[pos].sum(), P[~pos].sum(), n[pos].sum(), n.sum()
    vTP, vFN = V[pos].sum(), V[~pos].sum()
    D = TP + FN + npp
    return dict(
        precision=np.sqrt(vTP) / npp,
        recall=np.sqrt(FN**2 * vTP + TP**2 * vFN) / (TP + FN) ** 2,
        f1=np.sqrt((2 * (FN + npp) / D**2) ** 2 * vTP + (2 * TP / D**2) ** 2 * vFN),
        accuracy=np.sqrt(vTP + vFN) / ntot,
    )


def auc_cells(P, N):
    below = np.cumsum(N, axis=-1) - N
    return ((P * below).sum(-1) + 0.5 * (P * N).sum(-1)) / (P.sum(-1) * N.sum(-1))


def bootstrap_se(agg: dict, edges, t, rng, B=400, resample_rows=False, ref_props=None) -> dict:
    """Parametric bootstrap on aggregates only. labels: Y_k ~ Binomial(n_k, S1_k/n_k).
    resample_rows=True also redraws the cell counts ~ Multinomial(n, ref_props) (score sampling) -> the
    unconditional spread of the realized metric over windows of this size (what reference chunks measure)."""
    n, S1 = agg["n"], agg["S1"]
    pbar = np.where(n > 0, S1 / np.maximum(n, 1), 0.0)
    nn = rng.multinomial(int(n.sum()), ref_props, size=B).astype(float) if resample_rows else np.tile(n, (B, 1))
    Y = rng.binomial(nn.astype(np.int64), pbar).astype(float)
    Nn = nn - Y
    pos = edges[:-1] >= t
    TP, FP, FN, TN = Y[:, pos].sum(1), Nn[:, pos].sum(1), Y[:, ~pos].sum(1), Nn[:, ~pos].sum(1)
    out = dict(auc=auc_cells(Y, Nn), precision=TP / (TP + FP), recall=TP / (TP + FN),
               f1=2 * TP / (2 * TP + FP + FN), accuracy=(TP + TN) / nn.sum(1))
    return {m: float(np.std(v, ddof=1)) for m, v in out.items()}


# ----------------------------------------------------------------------------------------------------------------
# ground truth helpers
# ----------------------------------------------------------------------------------------------------------------


def realized(s, y, t) -> dict:
    pred = s >= t
    TP, FP = np.sum(pred & (y == 1)), np.sum(pred & (y == 0))
    FN, TN = np.sum(~pred & (y == 1)), np.sum(~pred & (y == 0))
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s)); ranks[order] = np.arange(1, len(s) + 1)
    n1 = y.sum(); n0 = len(y) - n1
    auc = (ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    return dict(auc=auc, precision=TP / (TP + FP), recall=TP / (TP + FN), f1=2 * TP / (2 * TP + FP + FN),
                accuracy=(TP + TN) / len(y), brier=np.mean((s - y) ** 2))


def oracle_expected(s, p_true, t) -> dict:
    """The estimand: the same formulas with the true P(y|x) per row, rows as cells (exact order)."""
    order = np.argsort(s)
    s, p = s[order], p_true[order]
    edges = np.concatenate([[-np.inf], s[:-1] + np.diff(s) / 2, [np.inf]])
    edges = np.unique(np.concatenate([edges, [t]]))
    agg = aggregate(s, edges, p)
    return estimate(agg, edges, t)


# ----------------------------------------------------------------------------------------------------------------
# data: covariate shift of a model whose P(y|score) is invariant ("calibrated model, sufficient score")
# ----------------------------------------------------------------------------------------------------------------

W = np.array([1.2, -0.8, 0.6, 0.4, 0.0, 0.0])
B0 = -1.0
U = np.array([1.0, 0.5, 0.0, 0.0, 1.0, 0.0]) / np.sqrt(2.25)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def draw(rng, n, delta=0.0, scenario="A", concept=0.0):
    """delta: covariate shift size (mean +delta*U, sd of x0 *(1+0.5 delta), sd of x2 *(1-0.25 delta))."""
    x = rng.standard_normal((n, 6))
    x[:, 0] *= 1 + 0.5 * delta
    x[:, 2] *= 1 - 0.25 * delta
    x += delta * U
    z = x @ W + B0
    if scenario == "A":  # score = monotone (miscalibrated) transform of the true logit -> P(y|s) invariant
        p = sigmoid(z + concept)
        s = sigmoid(0.6 * z + 0.4)
    else:  # "B": true model has an interaction the scorer misses -> P(y|s) moves with the shift of x0/x4
        zz = z + 0.8 * x[:, 0] * x[:, 4]
        p = sigmoid(zz + concept)
        s = sigmoid(0.6 * z + 0.4)
    return s, p


# ----------------------------------------------------------------------------------------------------------------
# experiments
# ----------------------------------------------------------------------------------------------------------------


def run(seeds=50, n_val=20_000, n_mon=5_000, shifts=(0.0, 0.5, 1.0, 1.5), cells=(10, 30, 100, 300, 1000),
        t=0.5, use_nml=True, scenario="A", concept=0.0, extra=True):
    rows = []  # one per (seed, shift, variant): est - realized and est - oracle per metric
    nml_cases = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        vs, vp = draw(rng, n_val, 0.0, scenario)  # validation: unshifted, same P(y|x), no concept shift
        vy = (rng.random(n_val) < vp).astype(float)
        iso = IsotonicCal().fit(vs, vy)
        windows = []
        for d in shifts:
            s, p = draw(rng, n_mon, d, scenario, concept)
            y = (rng.random(n_mon) < p).astype(float)
            windows.append((d, s, p, y))
            real, orac = realized(s, y, t), oracle_expected(s, p, t)
            ph = iso(s)
            variants = {"iso_row/rows": oracle_expected(s, ph, t)}  # NannyML's computation, reimplemented
            for K in cells:
                e = fit_edges(vs, K, [t])
                variants[f"iso_row/{K}"] = estimate(aggregate(s, e, ph), e, t)
                variants[f"iso_cell/{K}"] = estimate(aggregate_cellconst(s, e, cell_table(e, vs, vy, "iso_cell", iso)), e, t)
                variants[f"hist/{K}"] = estimate(aggregate_cellconst(s, e, cell_table(e, vs, vy, "hist")), e, t)
            if extra:
                e = fit_edges(vs, 100)  # threshold NOT inserted as an edge (ablation)
                ag = aggregate(s, e, ph)
                variants["iso_row/100-no-t-edge"] = estimate(ag, e, t)
            for v, est in variants.items():
                rows.append(dict(seed=seed, shift=d, variant=v,
                                 **{f"er_{m}": est[m] - real[m] for m in METRICS},
                                 **{f"eo_{m}": est[m] - orac[m] for m in METRICS},
                                 **{f"real_{m}": real[m] for m in METRICS}, est=est))
        if use_nml:
            nml_cases.append(dict(seed=seed, vs=vs, vy=vy, t=t, windows=[(d, s) for d, s, _, _ in windows]))
    return rows, nml_cases


def run_nannyml(cases, n_mon, python=os.path.join(HERE, "venv/bin/python")):
    io = os.path.join(HERE, "nml_io"); os.makedirs(io, exist_ok=True)
    arrs = {}
    for c in cases:
        arrs[f"vs_{c['seed']}"] = c["vs"]; arrs[f"vy_{c['seed']}"] = c["vy"]
        arrs[f"an_{c['seed']}"] = np.concatenate([s for _, s in c["windows"]])
    np.savez(os.path.join(io, "cases.npz"), **arrs)
    meta = dict(seeds=[c["seed"] for c in cases], t=cases[0]["t"], n_mon=n_mon,
                shifts=[d for d, _ in cases[0]["windows"]])
    json.dump(meta, open(os.path.join(io, "meta.json"), "w"))
    t0 = time.time()
    subprocess.run([python, os.path.join(HERE, "nml_runner.py"), io], check=True)
    print(f"nannyml subprocess: {time.time() - t0:.1f}s for {len(cases)} fits", file=sys.stderr)
    return json.load(open(os.path.join(io, "out.json")))


def table(rows, key, variants, metrics=METRICS):
    out = []
    for v in variants:
        r = [x for x in rows if x["variant"] == v]
        if not r:
            continue
        cells = []
        for m in metrics:
            e = np.array([x[f"{key}_{m}"] for x in r])
            cells.append(f"{np.mean(np.abs(e)):.4f}/{np.max(np.abs(e)):.4f}")
        out.append(f"{v:24s} " + " ".join(f"{c:>15s}" for c in cells))
    return "\n".join([f"{'variant (MAE/max)':24s} " + " ".join(f"{m:>15s}" for m in metrics)] + out)


def band_experiment(seeds=20, n_val=20_000, n_ref=100_000, n_mon=5_000, t=0.5, K=100):
    """Reference chunks of the monitor window's size: spread of realized and estimated metrics vs the bands."""
    res = {m: dict(sd_real=[], sd_est=[], sd_diff=[], se_label=[], se_boot_label=[], se_boot_total=[]) for m in
           ["auc", "precision", "recall", "f1", "accuracy", "brier"]}
    cover = {m: [] for m in ["auc", "precision", "recall", "f1", "accuracy"]}
    for seed in range(seeds):
        rng = np.random.default_rng(5000 + seed)
        vs, vp = draw(rng, n_val); vy = (rng.random(n_val) < vp).astype(float)
        iso = IsotonicCal().fit(vs, vy)
        e = fit_edges(vs, K, [t])
        rs, rp = draw(rng, n_ref); ry = (rng.random(n_ref) < rp).astype(float)
        ref_props = aggregate(rs, e, iso(rs))["n"] / n_ref
        R, E, L, BL, BT = [], [], [], [], []
        for j in range(n_ref // n_mon):
            sl = slice(j * n_mon, (j + 1) * n_mon)
            ag = aggregate(rs[sl], e, iso(rs[sl]))
            R.append(realized(rs[sl], ry[sl], t)); E.append(estimate(ag, e, t))
            L.append(label_noise_se(ag, e, t))
            if j < 3:
                BL.append(bootstrap_se(ag, e, t, rng)); BT.append(bootstrap_se(ag, e, t, rng, resample_rows=True,
                                                                               ref_props=ref_props))
        for m in res:
            r = np.array([x[m] for x in R]); es = np.array([x[m] for x in E])
            res[m]["sd_real"].append(np.std(r, ddof=1)); res[m]["sd_est"].append(np.std(es, ddof=1))
            res[m]["sd_diff"].append(np.std(r - es, ddof=1))
            if m in L[0]:
                res[m]["se_label"].append(np.mean([x[m] for x in L]))
            if m in BL[0]:
                res[m]["se_boot_label"].append(np.mean([x[m] for x in BL]))
                res[m]["se_boot_total"].append(np.mean([x[m] for x in BT]))
        # coverage on shifted windows: |realized - estimated| <= 2 and 3 x (bootstrap label-noise se)
        for d in (0.0, 1.0, 1.5):
            s, p = draw(rng, n_mon, d); y = (rng.random(n_mon) < p).astype(float)
            ag = aggregate(s, e, iso(s)); est = estimate(ag, e, t); se = bootstrap_se(ag, e, t, rng, B=300)
            re = realized(s, y, t)
            for m in cover:
                cover[m].append(abs(re[m] - est[m]) / se[m])
    return res, cover


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--no-nannyml", action="store_true")
    ap.add_argument("--n-mon", type=int, default=5000)
    ap.add_argument("--scenario", default="A")
    ap.add_argument("--concept", type=float, default=0.0)
    ap.add_argument("--band", action="store_true")
    ap.add_argument("--cells", default="10,30,100,300,1000")
    a = ap.parse_args()
    if a.band:
        res, cover = band_experiment(n_mon=a.n_mon)
        print(f"band experiment n_mon={a.n_mon}: mean over 20 seeds of per-seed std across 20 reference chunks")
        print(f"{'metric':10s} {'sd_real':>8s} {'sd_est':>8s} {'sd_r-e':>8s} {'se_lab_an':>9s} {'se_lab_bs':>9s} {'se_tot_bs':>9s}")
        for m, d in res.items():
            f = lambda k: f"{np.mean(d[k]):.4f}" if d[k] else "   -  "  # noqa: E731
            print(f"{m:10s} {f('sd_real'):>8s} {f('sd_est'):>8s} {f('sd_diff'):>8s} {f('se_label'):>9s} "
                  f"{f('se_boot_label'):>9s} {f('se_boot_total'):>9s}")
        print("coverage of |realized-estimated| within 2/3 x bootstrap label-noise se (60 windows, shifts 0/1/1.5):")
        for m, z in cover.items():
            z = np.array(z)
            print(f"  {m:10s} <=2se {np.mean(z <= 2):.2f}  <=3se {np.mean(z <= 3):.2f}  max z {z.max():.2f}")
        return
    cells = tuple(int(c) for c in a.cells.split(","))
    t0 = time.time()
    rows, cases = run(seeds=a.seeds, n_mon=a.n_mon, use_nml=not a.no_nannyml, scenario=a.scenario,
                      concept=a.concept, cells=cells)
    print(f"# scenario {a.scenario} concept {a.concept} n_mon {a.n_mon} seeds {a.seeds} ({time.time() - t0:.0f}s)")
    shifts = sorted({r["shift"] for r in rows})
    for d in shifts:
        r = [x for x in rows if x["shift"] == d and x["variant"] == "iso_row/rows"]
        print(f"shift {d}: realized mean " + " ".join(f"{m}={np.mean([x[f'real_{m}'] for x in r]):.3f}" for m in METRICS))
    variants = ["iso_row/rows"] + [f"{c}/{K}" for c in ("iso_row", "iso_cell", "hist") for K in cells] + [
        "iso_row/100-no-t-edge"]
    print("\n## estimated - realized (all shifts pooled)\n" + table(rows, "er", variants))
    print("\n## estimated - oracle expected (estimator error without label noise)\n" + table(rows, "eo", variants))
    for d in shifts:
        sub = [x for x in rows if x["shift"] == d]
        print(f"\n## shift {d}: estimated - realized\n" + table(sub, "er", ["iso_row/rows", "iso_row/100", "iso_cell/100", "hist/100"]))
    if cases:
        out = run_nannyml(cases, a.n_mon)
        cmp_variants = ["iso_row/rows"] + [f"iso_row/{K}" for K in cells]
        diffs = {m: [] for m in ["auc", "precision", "recall", "f1", "accuracy", "tp"]}
        se = {m: [] for m in diffs}
        for c in cases:
            for i, d in enumerate(out["shifts"]):
                nm = out["res"][str(c["seed"])][i]
                for v in cmp_variants:
                    ours = [x for x in rows if x["seed"] == c["seed"] and x["shift"] == d and x["variant"] == v][0]["est"]
                    for m in diffs:
                        diffs[m].append((v, abs(ours[m] - nm[m])))
                for m in diffs:
                    se[m].append(nm.get(f"se_{m}", np.nan))
        print("\n## |ours - NannyML CBPE| (same validation as NannyML reference; MAE/max)")
        for v in cmp_variants:
            print(f"{v:16s} " + " ".join(f"{m}={np.mean([x for w, x in diffs[m] if w == v]):.2e}/"
                                         f"{np.max([x for w, x in diffs[m] if w == v]):.2e}" for m in diffs))
        print("NannyML needs_calibration per seed:", sorted(set(out["needs_calibration"].values())))
        print("NannyML sampling_error (mean): " + " ".join(f"{m}={np.nanmean(se[m]):.4f}" for m in diffs if m != "tp"))
    json.dump([{k: v for k, v in r.items() if k != "est"} for r in rows],
              open(os.path.join(HERE, f"rows_{a.scenario}_{a.concept}_{a.n_mon}.json"), "w"))


if __name__ == "__main__":
    main()
