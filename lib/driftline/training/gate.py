"""Promotion gate: does the challenger replace the champion (or, for a first model, beat the baseline)?

Pure decision logic; the train job evaluates both models on the same validation window and hands
the two numbers here. The challenger must be strictly better, by at least ``min_abs_improvement``
and by at least ``min_rel_improvement`` relative to the reference value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from driftline.training.spec import GateConfig

Reference = Literal["champion", "baseline"]


@dataclass(frozen=True)
class GateDecision:
    """Outcome of the gate with the numbers behind it (recorded as tags on the run and version)."""

    passed: bool
    reason: str
    metric: str
    direction: str
    challenger: float
    reference: float
    reference_kind: Reference
    reference_version: str | None
    improvement: float
    relative_improvement: float

    def tags(self, prefix: str = "driftline.gate.") -> dict[str, str]:
        """Flat string tags for MLflow (``driftline.gate.passed`` = ``"true"`` …)."""
        out = {}
        for key, value in asdict(self).items():
            if value is None:
                continue
            out[f"{prefix}{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


def improvement(challenger: float, reference: float, direction: str) -> tuple[float, float]:
    """(absolute, relative) improvement of ``challenger`` over ``reference``; positive is better."""
    diff = challenger - reference if direction == "higher" else reference - challenger
    if reference != 0:
        return diff, diff / abs(reference)
    return diff, math.inf if diff > 0 else (0.0 if diff == 0 else -math.inf)


def decide(
    challenger: float,
    reference: float,
    cfg: GateConfig,
    *,
    metric: str,
    direction: str,
    reference_kind: Reference,
    reference_version: str | None = None,
) -> GateDecision:
    """Compare challenger and reference values of ``metric`` under the gate's thresholds."""
    def result(passed: bool, reason: str, diff: float = math.nan, rel: float = math.nan) -> GateDecision:
        return GateDecision(passed, reason, metric, direction, float(challenger), float(reference),
                            reference_kind, reference_version, diff, rel)

    against = f"{reference_kind} v{reference_version}" if reference_version else reference_kind
    if not math.isfinite(challenger):
        return result(False, f"challenger {metric} is {challenger} (undefined on the validation window)")
    if not math.isfinite(reference):
        # An undefined reference (e.g. AUC of a baseline) cannot be beaten meaningfully: pass on
        # the challenger's own finite value only when the reference is the trivial baseline.
        if reference_kind == "baseline":
            return result(True, f"{metric}={challenger:.6g}; baseline {metric} undefined ({reference})")
        return result(False, f"{against} {metric} is {reference}; cannot compare")
    diff, rel = improvement(challenger, reference, direction)
    numbers = (f"{metric} {challenger:.6g} vs {against} {reference:.6g} "
               f"({direction} is better; improvement {diff:+.6g}, relative {rel:+.4g})")
    if diff <= 0:
        word = "equal to" if diff == 0 else "worse than"
        return result(False, f"not better: challenger {word} {against}: {numbers}", diff, rel)
    if diff < cfg.min_abs_improvement:
        return result(False, f"improvement {diff:.6g} below min_abs_improvement {cfg.min_abs_improvement}: "
                             f"{numbers}", diff, rel)
    if rel < cfg.min_rel_improvement:
        return result(False, f"relative improvement {rel:.4g} below min_rel_improvement "
                             f"{cfg.min_rel_improvement}: {numbers}", diff, rel)
    return result(True, f"better than {against}: {numbers}", diff, rel)
