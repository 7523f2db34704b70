"""``docs/table-reference.md``, generated from the table contracts (`driftline.tables.contracts`).

Regenerate with ``python -m driftline.tables.reference_page > docs/table-reference.md``; a test fails when
the page is not current.
"""

from __future__ import annotations

from driftline import vocabulary as v
from driftline.tables.contracts import ALL, CONTRACT_VERSION, STATUS_DOC


def render_docs() -> str:
    """``docs/table-reference.md``: every table and column, from these declarations."""
    out = [
        "# Tables driftline writes",
        "",
        "Generated from `lib/driftline/tables/contracts.py` by `python -m driftline.tables.reference_page` "
        "(a test fails when this page is not current). Contract version "
        f"{CONTRACT_VERSION}; `driftline migrate` upgrades a workspace written by an earlier release.",
        "",
        "One spelling per concept: `model`, `model_version`, `run_id`, `code_version`, `config_hash`, `score`. "
        "Verdict columns use one vocabulary, in order of severity: "
        + " < ".join(f"`{s}`" for s in v.STATUSES) + ". Every table carries the provenance columns "
        "`run_id`, `code_version`, `config_hash`.",
        "",
    ]
    for c in ALL:
        out += [f"## `{c.name}`", "", c.doc, "",
                f"- partitioned by: {', '.join(f'`{p}`' for p in c.partition_by)}",
                f"- one row per: {', '.join(f'`{k}`' for k in c.key)}",
                f"- idempotency: {c.idempotency}"]
        if c.model_columns:
            out.append(f"- model columns: {c.model_columns}")
        out += ["", "| column | type | meaning |", "|---|---|---|"]
        for col in c.columns:
            kind = col.type.simpleString() + ("" if col.nullable else ", not null")
            doc = col.doc + (f" (values: {c.values[col.name]})" if col.name in c.values
                             and c.values[col.name] != STATUS_DOC else "")
            out.append(f"| `{col.name}` | {kind} | {doc} |")
        out.append("")
    return "\n".join(out)



if __name__ == "__main__":
    print(render_docs(), end="")
