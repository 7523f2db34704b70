"""Where tables and the workspace may live: object-store roots accepted, foreign or unsafe ones refused.

A configured ``storage.root`` / ``storage.tables.<name>`` may be a local path or a URI on s3a, s3,
abfss, abfs, gs, hdfs or file; table *names* stay identifiers (R20) whatever the root. The
workspace is a folder on the driver. Every refusal is one line naming the layer and the key.
The configuration examples of docs/cluster.md are loaded here too, so the documentation stays valid.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from driftline.config import load_config
from driftline.errors import ConfigError, TableError
from driftline.tables.names import resolve_location
from tests.unit.config.test_loader import MODEL, write_conf

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # error messages show paths relative to the working directory
    return write_conf(tmp_path / "conf", base="workspace: .ws\n")


@pytest.mark.parametrize(
    ("root", "uri", "spark_uri"),
    [
        ("s3a://lake/driftline/tables", "s3://lake/driftline/tables/churn__predictions",
         "s3a://lake/driftline/tables/churn__predictions"),
        ("s3a://lake/", "s3://lake/churn__predictions", "s3a://lake/churn__predictions"),
        ("s3://lake/tables", "s3://lake/tables/churn__predictions", "s3://lake/tables/churn__predictions"),
        ("abfss://data@acct.dfs.core.windows.net/driftline",
         "abfss://data@acct.dfs.core.windows.net/driftline/churn__predictions",
         "abfss://data@acct.dfs.core.windows.net/driftline/churn__predictions"),
        ("gs://lake/driftline", "gs://lake/driftline/churn__predictions", "gs://lake/driftline/churn__predictions"),
        ("hdfs://namenode:8020/driftline", "hdfs://namenode:8020/driftline/churn__predictions",
         "hdfs://namenode:8020/driftline/churn__predictions"),
        ("hdfs:///driftline", "hdfs:///driftline/churn__predictions", "hdfs:///driftline/churn__predictions"),
    ],
)
def test_object_store_roots_are_accepted_and_resolved(conf: Path, root: str, uri: str, spark_uri: str) -> None:
    cfg = load_config("churn", conf, [f"storage.root={root}"]).config
    assert cfg.storage.root == root
    loc = resolve_location("churn__predictions", cfg.storage, cfg.workspace)
    assert (loc.uri, loc.spark_uri, loc.local_path) == (uri, spark_uri, None)


@pytest.mark.parametrize("root", ["/data/driftline/tables", "shared/tables", "../tables", "file:/data/tables",
                                  "file:///data/tables", "C:\\driftline\\tables"])
def test_local_roots_are_accepted(conf: Path, root: str) -> None:
    assert load_config("churn", conf, [f"storage.root={root}"]).config.storage.root == root


def test_a_uri_root_does_not_make_uris_or_paths_valid_table_names(conf: Path) -> None:   # R20
    storage = load_config("churn", conf, ["storage.root=s3a://lake/tables"]).config.storage
    for bad in ["../x", "/abs/path", "s3a://other/x", "a/b", ""]:
        with pytest.raises(TableError, match=r"^invalid table name .*paths and URIs are not table names$"):
            resolve_location(bad, storage, ".ws")


def test_single_tables_may_live_on_object_storage(conf: Path) -> None:
    cfg = load_config("churn", conf, ["storage.tables.churn__predictions=gs://bi-bucket/churn/predictions"]).config
    loc = resolve_location("churn__predictions", cfg.storage, cfg.workspace)
    assert loc.spark_uri == "gs://bi-bucket/churn/predictions"
    assert resolve_location("monitor_metrics", cfg.storage, cfg.workspace).local_path == (
        Path(".ws").resolve() / "tables" / "monitor_metrics")


ROOT_ERRORS = [
    ("http://example.com/tables",
     "expected a local path or a URI with scheme s3a, s3, abfss, abfs, gs, hdfs, file, found 'http://example.com/tables'"),
    ("dbfs:/mnt/tables",
     "expected a local path or a URI with scheme s3a, s3, abfss, abfs, gs, hdfs, file, found 'dbfs:/mnt/tables'"),
    ("s3a:///tables", "expected s3a://<bucket>/<path>, found 's3a:///tables'"),
    ("s3a:lake/tables", "expected s3a://<bucket>/<path>, found 's3a:lake/tables'"),
    ("gs://", "expected gs://<bucket>/<path>, found 'gs://'"),
    ("abfss://acct.dfs.core.windows.net/x",
     "expected abfss://<container>@<account>.dfs.core.windows.net/<path>, found 'abfss://acct.dfs.core.windows.net/x'"),
    ("s3a://AKIAEXAMPLE:s3cr3t@lake/tables",
     "expected no credentials inside the URI (set them with runtime.spark_conf spark.hadoop.fs.* keys and the "
     "environment, see docs/cluster.md), found user info in 's3a://***@lake/tables'"),
    ("s3a://lake/tables/../../other", "expected a URI without '.' or '..' path segments, found 's3a://lake/tables/../../other'"),
    ("s3a://lake/tables?versionId=3", "expected a URI without '?' or '#' parts, found 's3a://lake/tables?versionId=3'"),
    ("file:relative/tables", "expected file:/absolute/path or file:///absolute/path, found 'file:relative/tables'"),
    ("file://otherhost/tables", "expected file:/absolute/path or file:///absolute/path, found 'file://otherhost/tables'"),
    ("' '", "expected a local path or a URI, found ' '"),
    ("' s3a://lake/t'", "expected a path without surrounding spaces or control characters, found ' s3a://lake/t'"),
]


@pytest.mark.parametrize(("value", "detail"), ROOT_ERRORS)
def test_bad_roots_are_refused_in_one_line_naming_the_flag(conf: Path, value: str, detail: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf, [f"storage.root={value}"])
    flag = value.replace("AKIAEXAMPLE:s3cr3t", "***")
    assert str(err.value) == f"--set storage.root={flag}: storage.root: {detail}"
    assert "s3cr3t" not in str(err.value) and "\n" not in str(err.value)


def test_bad_table_location_in_base_yaml_names_file_and_table(conf: Path) -> None:
    write_conf(conf, base="storage:\n  tables:\n    churn__predictions: https://bi.example.com/p\n")
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf)
    assert str(err.value) == (
        "conf/base.yaml: storage.tables.churn__predictions: expected a local path or a URI with scheme s3a, s3, "
        "abfss, abfs, gs, hdfs, file, found 'https://bi.example.com/p'")


def test_control_characters_are_refused_without_breaking_the_line(conf: Path) -> None:
    write_conf(conf, base='storage: {root: "s3a://lake/t\\nables"}\n')
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf)
    assert str(err.value) == ("conf/base.yaml: storage.root: expected a path without surrounding spaces or control "
                              "characters, found 's3a://lake/t\\nables'")


@pytest.mark.parametrize("workspace", ["s3a://lake/ws", "abfss://c@a.dfs.core.windows.net/ws", "file:/tmp/ws",
                                       "dbfs:/driftline"])
def test_workspace_must_be_a_local_folder(conf: Path, workspace: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf, workspace=workspace)
    assert str(err.value) == (
        f"--workspace: workspace: expected a local folder on the driver (it holds the MLflow SQLite store, reports "
        f"and Spark scratch space; put tables on object storage with storage.root), found {workspace!r}")


@pytest.mark.parametrize("workspace", ["/dbfs/driftline", ".driftline", "/tmp/ws"])
def test_local_workspaces_are_accepted(conf: Path, workspace: str) -> None:
    assert load_config("churn", conf, workspace=workspace).config.workspace == workspace


def config_examples() -> list[str]:
    """YAML blocks of docs/cluster.md that start with ``# conf/base.yaml``: meant to be copied as is."""
    text = (DOCS / "cluster.md").read_text()
    return [b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if b.startswith("# conf/base.yaml")]


def test_documented_object_storage_configs_are_valid(tmp_path: Path) -> None:
    examples = config_examples()
    assert len(examples) >= 3
    for i, block in enumerate(examples):
        conf = write_conf(tmp_path / f"conf{i}", base=block, model=MODEL)
        cfg = load_config("churn", conf).config
        assert yaml.safe_load(block)["storage"]["root"] == cfg.storage.root
        for name in ("churn__predictions", "monitor_metrics"):
            loc = resolve_location(name, cfg.storage, cfg.workspace)
            want = cfg.storage.tables.get(name, f"{cfg.storage.root.rstrip('/')}/{name}")
            assert (loc.spark_uri, loc.local_path) == (want, None)

