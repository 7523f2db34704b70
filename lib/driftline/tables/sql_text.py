"""Values and names in Spark SQL text, quoted so that no value can end its quoting (R21)."""

from __future__ import annotations


def sql_literal(value: str | None) -> str:
    """A string literal (backslashes and single quotes escaped); None → ``NULL``."""
    if value is None:
        return "NULL"
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quoted(*parts: str) -> str:
    """A (multi-part) identifier or a path in backticks, backticks doubled: ``a.b`` → `` `a`.`b` ``."""
    return ".".join("`" + p.replace("`", "``") + "`" for p in parts)
