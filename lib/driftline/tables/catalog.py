"""``storage.catalog``: the workspace's output tables (and a few dashboard views) registered in a Spark catalog.

Registration is idempotent: ``CREATE DATABASE IF NOT EXISTS``, then per output table (a table with a contract
in `driftline.tables.contracts`) ``CREATE TABLE IF NOT EXISTS <db>.<name> USING DELTA LOCATION '<path>'``; a
table registered at another location is dropped from the catalog (an EXTERNAL table: the data stays) and
registered again at its location. Comments come from the contract: the table's ``doc`` and each column's
``doc``. For a Delta table both live in the Delta log, so setting them is one metadata-only commit for the
columns (``ALTER TABLE … ALTER COLUMN a COMMENT …, b COMMENT …``) and one for the table (``COMMENT ON
TABLE``), made only when a comment differs: a second run commits nothing. The views (`VIEWS`) carry a hash
of their definition in ``TBLPROPERTIES`` and are replaced only when it changed.

Metastores: ``derby`` (default) is an embedded Derby database in ``<workspace>/metastore_db`` — ONE process
at a time. `catalog_session_conf` gives a job's session Hive support only when no other process holds it
(the lock of ``metastore_db/dbex.lck``); a job that found it held (typically by ``driftline sql-server``)
runs with Spark's in-memory catalog and, after its writes, asks the server to re-sync (`sync_after_job`:
one warning line, never a failure). A thrift URI uses a shared Hive metastore (any number of processes);
``unity`` uses the cluster's catalog as configured there (three-part names ``<catalog>.<schema>.<table>``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.tables import contracts as c
from driftline.tables.backend import error_line
from driftline.tables.catalog_views import VIEWS, View, qualified
from driftline.tables.names import resolve_location
from driftline.tables.spec import CatalogConfig, StorageConfig
from driftline.tables.sql_text import quoted, sql_literal

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from driftline.tables.store import TableStore

log = logging.getLogger(__name__)

DERBY_DIR = "metastore_db"           # <workspace>/metastore_db: the embedded Derby metastore
SERVER_FILE = "sql-server.pid"       # <workspace>/sql-server.pid: JSON {pid, host, port, url} of a running server


# --------------------------------------------------------------------------- session settings


def derby_url(workspace: str | os.PathLike[str]) -> str:
    return f"jdbc:derby:;databaseName={Path(workspace).resolve() / DERBY_DIR};create=true"


def metastore_holder(workspace: str | os.PathLike[str]) -> str | None:
    """Who holds the workspace's Derby metastore: ``"the SQL server (pid N)"``, ``"another process"``, or None.

    Derby keeps an OS file lock on ``metastore_db/dbex.lck`` while a JVM has the database booted (released
    when that JVM ends, even killed); the lock is probed and released at once."""
    lock = Path(workspace) / DERBY_DIR / "dbex.lck"
    if not lock.is_file():
        return None
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no probe
        return None
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return None
    except OSError:
        server = read_server(workspace)
        return f"the SQL server (pid {server['pid']})" if server else "another process"
    finally:
        os.close(fd)


def catalog_session_conf(cfg: StorageConfig, workspace: str | os.PathLike[str],
                         base: Mapping[str, str] | None = None, submitted: bool = False,
                         force: bool = False) -> dict[str, str]:
    """The static session settings ``storage.catalog`` needs (set them before the session exists); {} when off.

    ``base``: the settings built so far (its ``spark.driver.extraJavaOptions`` is extended, not replaced).
    ``force``: whether or not ``storage.catalog.enabled`` (``driftline catalog sync`` / ``sql-server``).
    ``derby``: Hive support on ``<workspace>/metastore_db`` (Derby's home and log in the workspace), unless
    another process holds that database: then {} and one info line — the job keeps Spark's in-memory catalog
    (with Hive support every Delta path lookup would hit the locked metastore and fail) and `sync_after_job`
    asks the server to re-sync. A thrift URI: Hive support on that metastore. ``unity``: {} (the cluster's).
    """
    cat = cfg.catalog
    if not (cat.enabled or force) or cat.metastore == "unity":
        return {}
    ws = Path(workspace).resolve()
    conf = {"spark.sql.catalogImplementation": "hive"}
    if cat.metastore != "derby":
        conf["spark.hadoop.hive.metastore.uris"] = cat.metastore
        return conf
    holder = metastore_holder(ws)
    if holder is not None and not force:
        log.info("storage.catalog: %s holds the Derby metastore %s; this run keeps Spark's in-memory catalog",
                 holder, ws / DERBY_DIR)
        return {}
    conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = derby_url(ws)
    conf["spark.sql.warehouse.dir"] = str(ws / "spark-warehouse")
    if not submitted:
        options = (base or {}).get("spark.driver.extraJavaOptions", "")
        conf["spark.driver.extraJavaOptions"] = f"{options} -Dderby.system.home={ws}".strip()
    return conf


def hive_session(spark: SparkSession) -> bool:
    """True when the session's catalog is a Hive metastore (classic or Spark Connect session)."""
    try:
        return spark.conf.get("spark.sql.catalogImplementation", "in-memory") == "hive"
    except Exception:  # noqa: BLE001 - a setting the server does not expose: no Hive as far as we know
        return False


# --------------------------------------------------------------------------- the running server's pid file


def process_alive(pid: int) -> bool:
    """True while process ``pid`` runs (an exited child its parent has not reaped yet — a zombie — counts as gone)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True   # no /proc: trust the signal probe
    return state not in ("Z", "X")


def read_server(workspace: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The pid file of a live ``driftline sql-server`` of this workspace, None when none runs (a stale file
    — its process gone — counts as none)."""
    path = Path(workspace) / SERVER_FILE
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if process_alive(pid) else None


def request_refresh(workspace: str | os.PathLike[str]) -> int | None:
    """Ask the workspace's running SQL server to re-sync the catalog (SIGUSR1); its pid, or None when none runs."""
    server = read_server(workspace)
    if server is None or not hasattr(signal, "SIGUSR1"):
        return None
    os.kill(int(server["pid"]), signal.SIGUSR1)
    return int(server["pid"])


# --------------------------------------------------------------------------- SQL text


def column_docs(table: str, columns: list[str]) -> dict[str, str]:
    """Column → comment of an output table: the contract's docs; a per-model table's model columns (the
    entity key first, then the features: the contract's ``model_columns``) get a generic one."""
    contract = c.contract_of(table)
    if contract is None:
        return {}
    docs = {col.name: col.doc for col in contract.columns}
    model = table.removesuffix(contract.name.removeprefix("<model>")) if contract.per_model else ""
    extra = [col for col in columns if col not in docs]
    out = {}
    for col in columns:
        if col in docs:
            out[col] = docs[col]
        elif contract.per_model:
            out[col] = (f"entity key of model {model} (its entity_key)" if col == extra[0]
                        else f"feature of model {model} (its features config)")
    return out


def table_doc(table: str) -> str:
    contract = c.contract_of(table)
    if contract is None:
        return ""
    return f"{contract.doc} Partitioned by {', '.join(contract.partition_by)}; {contract.idempotency}. (driftline)"


# --------------------------------------------------------------------------- registration


@dataclass(frozen=True)
class Registered:
    """What registration did to one catalog object: created, re-pointed, commented, replaced or unchanged."""

    kind: str   # table, view, database
    name: str
    action: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.kind} {self.name}: {self.action}" + (f" ({self.detail})" if self.detail else "")


def _norm(uri: str) -> str:
    uri = uri.rstrip("/")
    return "file:/" + uri[len("file:///"):] if uri.startswith("file:///") else uri


def _external(spark: SparkSession, cat: CatalogConfig) -> Any | None:
    """The session's Hive metastore client (``ExternalCatalog``), None on Unity (three-part names)."""
    if len(cat.database.split(".")) == 1 and hasattr(spark, "_jsparkSession") and hive_session(spark):
        return spark._jsparkSession.sessionState().catalog().externalCatalog()
    return None   # Unity, or a Spark Connect client (no JVM here)


def _entry(spark: SparkSession, cat: CatalogConfig, table: str) -> dict[str, str] | None:
    """Type, location and provider of a registered table as the catalog holds them, None when not registered —
    without opening the Delta table, which may no longer be at that location (Spark's ``tableExists`` and
    ``DESCRIBE`` open it and fail): a Hive metastore is asked directly, Unity by ``DESCRIBE``."""
    external = _external(spark, cat)
    if external is not None:
        if not external.tableExists(cat.database, table):
            return None
        raw = external.getTable(cat.database, table)
        location, provider = raw.storage().locationUri(), raw.provider()
        return {"Type": raw.tableType().name(), "Location": location.get().toString() if location.isDefined() else "",
                "Provider": provider.get() if provider.isDefined() else ""}
    if not spark.catalog.tableExists(qualified(cat, table)):
        return None
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {qualified(cat, table)}").collect()
    return {str(r[0]).strip(): str(r[1] or "") for r in rows}


def _register_table(spark: SparkSession, cat: CatalogConfig, table: str, location: str) -> Registered:
    name = qualified(cat, table)
    action, detail = "unchanged", ""
    info = _entry(spark, cat, table)
    if info is not None:
        found = _norm(info.get("Location", ""))
        if found != _norm(location) or info.get("Provider", "").lower() != "delta":
            if info.get("Type", "").upper() != "EXTERNAL":
                raise RuntimeError(f"{name} is a {info.get('Type')} table in the catalog, not driftline's; "
                                   "drop or rename it")
            external = _external(spark, cat)   # an external table: only the catalog entry goes, never the data
            if external is not None:   # directly: DROP TABLE would open the Delta table at its old location
                external.dropTable(cat.database, table, True, False)
            else:
                spark.sql(f"DROP TABLE {name}")
            action, detail = "re-pointed", f"was {found or info.get('Provider')}"
    else:
        action = "created"
    if action != "unchanged":
        spark.sql(f"CREATE TABLE IF NOT EXISTS {name} USING DELTA LOCATION {sql_literal(location)}")
    columns = {col.name: col.description or "" for col in spark.catalog.listColumns(name)}
    wanted = column_docs(table, list(columns))
    changed = [col for col, doc in wanted.items() if columns.get(col, "") != doc]
    if changed:
        spark.sql(f"ALTER TABLE {name} ALTER COLUMN "
                  + ", ".join(f"{quoted(col)} COMMENT {sql_literal(wanted[col])}" for col in changed))
    doc = table_doc(table)
    table_changed = (spark.catalog.getTable(name).description or "") != doc
    if table_changed:
        spark.sql(f"COMMENT ON TABLE {name} IS {sql_literal(doc)}")
    if action == "unchanged" and (changed or table_changed):
        action = "commented"
    if changed or table_changed:
        detail = ", ".join(filter(None, (detail, f"{len(changed)} column comments" if changed else "",
                                         "table comment" if table_changed else "")))
    return Registered("table", name, action, detail or location)


def _register_view(spark: SparkSession, cat: CatalogConfig, view: View) -> Registered:
    name = qualified(cat, view.name)
    select = view.sql(cat)
    digest = hashlib.sha256(json.dumps([select, view.doc, view.columns]).encode()).hexdigest()[:16]
    if spark.catalog.tableExists(name):
        found = {str(r[0]): str(r[1]) for r in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()}
        if found.get("driftline.view_hash") == digest:
            return Registered("view", name, "unchanged")
        action = "replaced"
    else:
        action = "created"
    columns = ", ".join(f"{quoted(col)} COMMENT {sql_literal(doc)}" for col, doc in view.columns)
    spark.sql(f"CREATE OR REPLACE VIEW {name} ({columns}) COMMENT {sql_literal(view.doc)} "
              f"TBLPROPERTIES ('driftline.view_hash' = '{digest}') AS {select}")
    return Registered("view", name, action)


def register_tables(spark: SparkSession, store: TableStore, cfg: CatalogConfig | StorageConfig) -> list[Registered]:
    """Register every output table of ``store`` (and the views, ``views: true``) in ``cfg.database``; idempotent.

    Needs a session with the catalog (`catalog_session_conf`); Spark errors propagate."""
    cat = cfg.catalog if isinstance(cfg, StorageConfig) else cfg
    parts = cat.database.split(".")
    done = []
    if not spark.catalog.databaseExists(cat.database if len(parts) == 1 else quoted(*parts)):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {quoted(*parts)} COMMENT "
                  f"{sql_literal('driftline output tables and dashboard views (docs/bi.md)')}")
        done.append(Registered("database", cat.database, "created"))
    registered = set()
    for table in store.table_names():
        if c.contract_of(table) is None:
            continue   # a source table: not driftline's output
        location = resolve_location(table, store.cfg, store.workspace).spark_uri
        done.append(_register_table(spark, cat, table, location))
        registered.add(table)
    if cat.views:
        done += [_register_view(spark, cat, view) for view in VIEWS if set(view.sources) <= registered]
    for item in done:
        log.info("catalog: %s", item.line())
    return done


def sync_after_job(spark: SparkSession, store: TableStore, cfg: CatalogConfig) -> None:
    """After a job's writes (``storage.catalog.enabled``): register the tables; never fails the job.

    A session without Hive support on a Derby metastore (another process held it when the session started):
    asks the running SQL server to re-sync instead. Any failure: one warning line, the writes stand."""
    if not cfg.enabled:
        return
    if cfg.metastore != "unity" and not hive_session(spark):
        pid = request_refresh(store.workspace)
        if pid is not None:
            log.warning("storage.catalog: the SQL server (pid %d) holds the Derby metastore; asked it to register "
                        "this run's tables", pid)
        else:
            log.warning("storage.catalog: this session has no Hive catalog (the Derby metastore was held when it "
                        "started, or it was built without the catalog settings); tables not registered, run "
                        "driftline catalog sync --workspace %s", store.workspace)
        return
    try:
        register_tables(spark, store, cfg)
    except Exception as exc:  # noqa: BLE001 - the job's writes are done: registration must not undo its result
        log.warning("storage.catalog: registering the tables in %s failed, the run's writes stand: %s",
                    cfg.database, error_line(exc))


__all__ = ["CatalogConfig", "VIEWS", "catalog_session_conf", "metastore_holder", "read_server",
           "register_tables", "request_refresh", "sync_after_job"]
