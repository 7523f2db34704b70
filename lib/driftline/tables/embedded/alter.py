"""The embedded add_columns: one delta-rs ADD COLUMN commit (a metaData action, no data file touched).

delta-rs's ``alter.add_columns`` writes the new schema (upgrading the protocol if a type needs it,
e.g. timestamp_ntz) and carries the commit properties: our metadata and the app transaction
``driftline/<job>/<table>/<key>`` land in the same commit. It commits on exactly the snapshot the
checks ran on (no rebase): a concurrent commit fails it and it is retried on a fresh snapshot.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable

from deltalake import DeltaTable, Field
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import CommitProperties, Transaction
from pyspark.sql.types import StructType

from driftline.errors import ConcurrentRunError
from driftline.tables.backend import Committed, error_line
from driftline.tables.embedded import deltalog
from driftline.tables.names import Location
from driftline.tables.preflight import WritePlan

log = logging.getLogger(__name__)

# alter_columns' signature: the package passes its own attribute, the fault-injection point of tests.
AlterFn = Callable[[DeltaTable, StructType, CommitProperties], None]


def alter_columns(table: DeltaTable, fields: StructType, props: CommitProperties) -> None:
    """The one delta-rs call: append ``fields`` to the table's schema in a metadata-only commit."""
    table.alter.add_columns(
        [Field.from_json(json.dumps(f.jsonValue())) for f in fields.fields], commit_properties=props
    )


def add_columns(loc: Location, plan: WritePlan, alter_fn: AlterFn, retries: int) -> Committed:
    """Commit ``plan.write_schema``'s fields as new columns on the latest snapshot (see module doc)."""
    write_id = f"add_columns-{uuid.uuid4().hex}"
    props = CommitProperties(
        custom_metadata={"userMetadata": plan.user_metadata(write_id)},
        app_transactions=[Transaction(plan.app_id, plan.txn_version)],
        max_commit_retries=0,
    )
    last_error = ""
    for attempt in range(retries + 1):
        table = deltalog.require(loc)
        latest = deltalog.snapshot(loc, table, plan.app_id)
        plan.refuse_if_moved(latest.app_txn)
        plan.schema_on(latest)  # the columns are still new on this version
        try:
            alter_fn(table, plan.write_schema, props)
        except CommitFailedError as exc:
            last_error = error_line(exc)
            log.info("table %s: add_columns attempt %d conflicted (%s), retrying", loc.name, attempt + 1, last_error)
            time.sleep(min(0.2 * (attempt + 1), 1.0))
            continue
        except Exception:
            if not deltalog.landed(loc, plan.app_id, plan.txn_version, write_id):
                raise
            log.warning("table %s: add_columns reported an error but is in the log", loc.name)
        return Committed(deltalog.version_of(loc, write_id), replaced=False, rows=0, files=0)
    raise ConcurrentRunError(
        f"table {loc.name}: add_columns failed {retries + 1} times because other writers kept committing "
        f"({last_error}); this run committed nothing"
    )
