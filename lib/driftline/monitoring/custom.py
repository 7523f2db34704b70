"""Custom metrics: user-defined monitoring metrics over the monitor window's rows.

A metric is either ``sql``, one aggregate Spark SQL expression over the window's own rows (``avg(CASE WHEN
plan = 'pro' THEN score END)``), or ``derived``, arithmetic over other custom metrics (``pro_score - score``).
Each gets a status from its ``min``/``max`` bounds and, with a reference value, a change row judged by
``max_change``. An expression may only read the window's rows (R21): subqueries, statements and comments are
refused by a static scan at config load, and the analysed plan is checked again against the frame
(`validate`) before the one-pass aggregation (`compute`).
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, model_validator

from driftline.errors import ConfigError
from driftline.spec import IDENTIFIER, Frozen, Identifier
from driftline.vocabulary import ALERT, INSUFFICIENT, OK, finite_or_none

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

CUSTOM = "__custom__"                # monitor_metrics.column of a custom metric's own row
CUSTOM_CHANGE = "__custom_change__"  # ... and of its change against the reference value
KEY = "monitoring.custom_metrics"    # the config key path named in errors
MAX_SQL = 2000
# statements and subqueries (another table), and the functions that call arbitrary JVM methods
FORBIDDEN = ("SELECT", "FROM", "JOIN", "TABLE", "INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "MERGE",
             "WITH", "UNION", "REFLECT", "TRY_REFLECT", "JAVA_METHOD")
_KEYWORD = re.compile(r"\b(" + "|".join(FORBIDDEN) + r")\b", re.IGNORECASE)
_LITERAL = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|`(?:``|[^`])*`", re.S)
_SUBQUERY = re.compile(r"(?<![\w`])(scalar-subquery|lateral-subquery|exists|list)#\d+ \[")
_EXPECT_SQL = "expected an aggregate Spark SQL expression over the window's columns"
_FUNCTIONS = {"abs": (1, 1), "min": (2, None), "max": (2, None)}
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}


class CustomMetricConfig(Frozen):
    """One custom metric: exactly one of ``sql`` / ``derived``, optional bounds and a limit on the change."""

    sql: str | None = None          # aggregate Spark SQL expression over the window's rows
    derived: str | None = None      # + - * / unary minus, parentheses, numbers, abs(), min(a, b), max(a, b)
    min: float | None = Field(None, allow_inf_nan=False)         # alert when value < min
    max: float | None = Field(None, allow_inf_nan=False)         # alert when value > max
    max_change: float | None = Field(None, ge=0, allow_inf_nan=False)  # alert when |value - reference| > this
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> CustomMetricConfig:
        if (self.sql is None) == (self.derived is None):
            found = "both" if self.sql is not None else "neither"
            raise ValueError(f"expected exactly one of sql / derived, found {found}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"expected min <= max, found min {self.min} > max {self.max}")
        if self.sql is not None:
            check_sql(self.sql)
        else:
            derived_names(self.derived or "")
        return self

    @property
    def method(self) -> str:
        """``sql`` or ``derived``: the ``method`` of the metric's monitor rows."""
        return "sql" if self.sql is not None else "derived"


CustomMetrics = dict[Identifier, CustomMetricConfig]  # the type of ``monitoring.custom_metrics``


def check_sql(sql: str) -> None:
    """Static check of a ``sql`` expression (no Spark): non-empty, at most 2000 characters, no ``;``, and outside
    quoted literals / backtick identifiers no comment and none of the `FORBIDDEN` keywords (R21). `ValueError`."""
    if not sql.strip():
        raise ValueError(f"sql: {_EXPECT_SQL}, found an empty expression")
    if len(sql) > MAX_SQL:
        raise ValueError(f"sql: {_EXPECT_SQL} of at most {MAX_SQL} characters, found {len(sql)}")
    if ";" in sql:
        raise ValueError(f"sql: {_EXPECT_SQL} (one expression, no statements), found ';'")
    code = _outside_literals(sql)
    for marker in ("--", "/*"):
        if marker in code:
            raise ValueError(f"sql: {_EXPECT_SQL} without comments, found {marker!r}")
    if match := _KEYWORD.search(code):
        raise ValueError(f"sql: {_EXPECT_SQL} reading only the window's rows (no subquery or statement), "
                         f"found keyword {match.group(1).upper()}")


def _outside_literals(sql: str) -> str:
    """``sql`` with every '...' / "..." literal and `...` identifier blanked to spaces (same positions)."""
    code = _LITERAL.sub(lambda m: " " * len(m.group()), sql)
    if (i := next((i for i, c in enumerate(code) if c in "'\"`"), -1)) >= 0:
        what = "backtick identifier" if code[i] == "`" else "string literal"
        raise ValueError(f"sql: {_EXPECT_SQL}, found an unterminated {what} at position {i}")
    return code


def derived_names(text: str) -> set[str]:
    """The metric names a ``derived`` expression reads; `ValueError` when it is not the allowed arithmetic."""
    expect = "derived: expected arithmetic over metric names (+ - * /, numbers, abs(), min(), max())"
    if not text.strip() or len(text) > MAX_SQL:
        raise ValueError(f"{expect}, found {'an empty expression' if not text.strip() else f'{len(text)} chars'}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise ValueError(f"{expect}, found a syntax error in {text!r} ({getattr(exc, 'msg', exc)})") from None
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            visit(node.operand)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            pass
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
              and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args)):
            low, high = _FUNCTIONS[node.func.id]
            if len(node.args) < low or (high is not None and len(node.args) > high):
                raise ValueError(f"{expect}, found {node.func.id}() with {len(node.args)} arguments")
            for arg in node.args:
                visit(arg)
        else:
            raise ValueError(f"{expect}, found {ast.unparse(node)!r}")

    try:
        visit(tree.body)
    except RecursionError:
        raise ValueError(f"{expect}, found an expression nested too deeply") from None
    return names


def parse_metrics(data: Mapping[str, Any], key: str = KEY) -> dict[str, CustomMetricConfig]:
    """``data`` (name -> mapping, as read from YAML) validated to configs, then `check_static`. `ConfigError`,
    one line naming ``key.<name>``: for code and tests; the config loader validates the field itself."""
    out: dict[str, CustomMetricConfig] = {}
    for name, item in data.items():
        try:
            out[name] = item if isinstance(item, CustomMetricConfig) else CustomMetricConfig.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            msg = "unknown key" if err["type"] == "extra_forbidden" else f"{msg[:1].lower()}{msg[1:]}"
            if "found" not in msg and err["type"] != "extra_forbidden":
                msg += f", found {err.get('input')!r}"
            raise ConfigError(f"{key}.{name}{'.' + where if where else ''}: {msg}") from None
    check_static(out, key)
    return out


def check_static(metrics: Mapping[str, CustomMetricConfig], key: str = KEY) -> None:
    """Cross-metric checks (no Spark): metric names are identifiers; a ``derived`` metric reads only other metrics
    of ``metrics``, not itself, and the derived metrics have no cycle. `ConfigError`, one line naming the metric.
    (Not a `ValueError`: inside a pydantic validator it propagates unchanged.)"""
    for name in metrics:
        if not IDENTIFIER.match(name):
            raise ConfigError(f"{key}: expected metric names matching {IDENTIFIER.pattern}, found {name!r}")
    for name, cfg in metrics.items():
        if cfg.derived is None:
            continue
        known = ", ".join(sorted(set(metrics) - {name})) or "none"
        try:
            names = derived_names(cfg.derived)
        except ValueError as exc:
            raise ConfigError(f"{key}.{name}: {exc}") from None
        if name in names:
            raise ConfigError(f"{key}.{name}: derived: expected other metrics' names, found a reference to itself")
        if unknown := sorted(names - set(metrics)):
            raise ConfigError(f"{key}.{name}: derived: expected names of other custom metrics ({known}), "
                              f"found unknown name {unknown[0]}")
    derived_order(metrics, key)


def sql_metrics(metrics: Mapping[str, CustomMetricConfig]) -> dict[str, str]:
    """Name -> ``sql`` expression of the sql metrics, in configured order."""
    return {name: cfg.sql for name, cfg in metrics.items() if cfg.sql is not None}


def derived_order(metrics: Mapping[str, CustomMetricConfig], key: str = KEY) -> list[str]:
    """The derived metrics' names, each after the derived metrics it reads; `ConfigError` naming a cycle."""
    order: list[str] = []
    state: dict[str, str] = {}   # "visiting" | "done"

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join([*path[path.index(name):], name])
            raise ConfigError(f"{key}.{name}: derived: expected no cycle among derived metrics, found {cycle}")
        state[name] = "visiting"
        for dep in sorted(derived_names(metrics[name].derived or "")):
            if dep in metrics and metrics[dep].derived is not None:
                visit(dep, [*path, name])
        state[name] = "done"
        order.append(name)

    for name, cfg in metrics.items():
        if cfg.derived is not None:
            visit(name, [])
    return order


def validate(frame: DataFrame, metrics: Mapping[str, CustomMetricConfig], key: str = KEY) -> None:
    """Each ``sql`` metric analysed against ``frame``'s schema, no job run: it must parse, resolve, aggregate the
    rows (not a row-level, window or constant expression), give a number or boolean, and hold no subquery.
    `ConfigError`, one line: the metric, what was expected and the first line of Spark's message."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, NumericType

    for name, sql in sql_metrics(metrics).items():
        where = f"{key}.{name}: {_EXPECT_SQL} ({_columns(frame.columns)})"
        try:
            probe = frame.limit(0).select(F.expr(sql).alias("v"))
            dtype = probe.schema["v"].dataType
            plan = _analyzed_plan(probe)
            if plan is None:   # no plan to read (Spark Connect): let Spark refuse a row-level expression
                frame.limit(0).agg(F.expr(sql).alias("v")).schema  # noqa: B018
        except AnalysisException as exc:   # ParseException included
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise ConfigError(f"{where}, found {first[:200]}") from None
        lines = (plan or "").splitlines()
        if lines and (_SUBQUERY.search(lines[0]) or (len(lines) > 1 and lines[1].startswith(":"))):
            raise ConfigError(f"{where} reading only the window's rows, found a subquery")
        if lines and not lines[0].startswith("Aggregate "):
            raise ConfigError(f"{where}, found a non-aggregate expression (plan {lines[0].split(' ')[0]})")
        if not isinstance(dtype, NumericType | BooleanType):
            raise ConfigError(f"{where} giving a number or boolean, found type {dtype.simpleString()}")


def _columns(columns: list[str], shown: int = 12) -> str:
    more = f", ... {len(columns) - shown} more" if len(columns) > shown else ""
    return ", ".join(columns[:shown]) + more


def _analyzed_plan(probe: DataFrame) -> str | None:
    """The analysed logical plan of ``probe`` as Spark prints it, or None when this client cannot read it."""
    jdf = getattr(probe, "_jdf", None)
    if jdf is not None:
        return str(jdf.queryExecution().analyzed().toString())
    explain = getattr(probe, "_explain_string", None)
    if explain is None:
        return None
    text = explain(extended=True)
    match = re.search(r"== Analyzed Logical Plan ==\n(?:.*\n)??((?:Aggregate|Project|Window|Generate).*?)\n== ",
                      text, re.S)
    return match.group(1) if match else None


def compute(frame: DataFrame, metrics: Mapping[str, CustomMetricConfig]) -> dict[str, float | None]:
    """Every metric's value on ``frame``: the sql metrics in ONE aggregation (cast to double), then the derived
    ones in dependency order (a None input or a division by zero gives None). NaN / ±inf become None.
    A runtime arithmetic error (ANSI division by zero, overflow) re-runs the sql metrics one by one and gives
    None to those that fail, with a warning."""
    from pyspark.errors import ArithmeticException
    from pyspark.sql import functions as F

    sqls = sql_metrics(metrics)
    values: dict[str, float | None] = {}
    if sqls:
        def column(name: str) -> Any:
            return F.expr(sqls[name]).cast("double").alias(name)
        try:
            row = frame.agg(*[column(n) for n in sqls]).collect()[0]
            values.update({n: finite_or_none(row[n]) for n in sqls})
        except ArithmeticException:
            for name in sqls:
                try:
                    values[name] = finite_or_none(frame.agg(column(name)).collect()[0][0])
                except ArithmeticException as exc:
                    first = str(exc).strip().splitlines()[0][:200]
                    log.warning("%s.%s: no value (%s)", KEY, name, first)
                    values[name] = None
    for name in derived_order(metrics):
        values[name] = evaluate(metrics[name].derived or "", values)
    return {name: values.get(name) for name in metrics}


def evaluate(text: str, values: Mapping[str, float | None]) -> float | None:
    """A ``derived`` expression on ``values``: None when an input is None, on division by zero or overflow."""
    def ev(node: ast.AST) -> float | None:
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values.get(node.id)
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            return None if a is None or b is None else _BINOPS[type(node.op)](a, b)
        if isinstance(node, ast.Call):
            args = [ev(a) for a in node.args]
            fn = {"abs": abs, "min": min, "max": max}[node.func.id]  # type: ignore[attr-defined]
            return None if any(a is None for a in args) else fn(*args)
        raise ValueError(f"unexpected node {ast.dump(node)}")

    try:
        return finite_or_none(ev(ast.parse(text.strip(), mode="eval").body))
    except (ZeroDivisionError, OverflowError):
        return None


def rows(values: Mapping[str, float | None], metrics: Mapping[str, CustomMetricConfig],
         reference: Mapping[str, float | None], n_current: int, n_reference: int | None,
         reference_note: str | None = None) -> list[dict[str, Any]]:
    """Monitor rows of the custom metrics (keys column, metric, value, threshold, status, method, reason,
    n_reference, n_current).

    Per metric a ``CUSTOM`` row: the value; threshold the violated bound, else ``max`` when set, else ``min``;
    alert outside [min, max], insufficient_data when the value is None. With ``max_change`` set or a reference
    value known, a ``CUSTOM_CHANGE`` row: value minus reference (signed); threshold ``max_change``; alert when
    the absolute change exceeds it, insufficient_data when either side is None (``reference_note`` says why the
    reference is missing). ``method`` is the metric's (``sql`` / ``derived``) on both rows."""
    out: list[dict[str, Any]] = []
    for name, cfg in metrics.items():
        value = finite_or_none(values.get(name))
        threshold = cfg.max if cfg.max is not None else cfg.min
        status, reason = OK, None
        if value is None:
            status = INSUFFICIENT
            reason = ("no rows in the window" if n_current == 0 else
                      "the expression is null on the window's rows" if cfg.sql is not None else
                      "an input metric is null or a division by zero")
        elif cfg.min is not None and value < cfg.min:
            status, threshold, reason = ALERT, cfg.min, f"below min {cfg.min:g}"
        elif cfg.max is not None and value > cfg.max:
            status, threshold, reason = ALERT, cfg.max, f"above max {cfg.max:g}"
        common = {"metric": name, "method": cfg.method, "n_current": n_current}
        out.append({"column": CUSTOM, "value": value, "threshold": threshold, "status": status, "reason": reason,
                    "n_reference": None, **common})
        ref = finite_or_none(reference.get(name))
        if cfg.max_change is None and ref is None:
            continue
        change = None if value is None or ref is None else finite_or_none(value - ref)
        status, reason = OK, None
        if ref is None:
            status, reason = INSUFFICIENT, f"no reference value: {reference_note or 'none stored for this metric'}"
        elif value is None:
            status, reason = INSUFFICIENT, "no current value: " + out[-1]["reason"]
        elif change is None:
            status, reason = INSUFFICIENT, "the change is not finite"
        elif cfg.max_change is not None and abs(change) > cfg.max_change:
            status, reason = ALERT, f"change {change:+g} beyond max_change {cfg.max_change:g}"
        out.append({"column": CUSTOM_CHANGE, "value": change, "threshold": cfg.max_change, "status": status,
                    "reason": reason, "n_reference": n_reference, **common})
    return out


__all__ = ["CUSTOM", "CUSTOM_CHANGE", "CustomMetricConfig", "CustomMetrics", "check_sql", "check_static", "compute",
           "derived_names", "derived_order", "evaluate", "parse_metrics", "rows", "sql_metrics", "validate"]
