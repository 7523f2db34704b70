"""Layered config: order, overrides, provenance in errors, hashing, redaction."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from driftline.config import config_hash, load_config, parse_override, redact
from driftline.errors import ConfigError

BASE = """
workspace: .ws
runtime: {shuffle_partitions: 4, app_name: base-app}
monitoring:
  window_days: 1
  drift: {psi_threshold: 0.2, bins: 10}
"""

MODEL = """
name: churn
entity_key: customer_id
sources:
  events: {table: ev, key: customer_id, timestamp: ts}
features:
  - {name: n7, kind: aggregate, agg: count, window: 7d}
  - {name: spend, kind: aggregate, agg: sum, column: amount, window: 30d}
monitoring:
  drift: {psi_threshold: 0.25}
"""


def write_conf(root: Path, base: str = BASE, model: str = MODEL, name: str = "churn") -> Path:
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "base.yaml").write_text(textwrap.dedent(base))
    (root / "models" / f"{name}.yaml").write_text(textwrap.dedent(model))
    return root


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # error messages show paths relative to the working directory
    return write_conf(tmp_path / "conf")


def test_layers_merge_in_order_base_model_overrides(conf: Path) -> None:
    loaded = load_config("churn", conf, ["monitoring.drift.bins=20", "runtime.app_name=cli-app"])
    cfg = loaded.config
    assert cfg.runtime.shuffle_partitions == 4  # base only
    assert cfg.runtime.app_name == "cli-app"  # base, then --set
    assert cfg.monitoring.drift.psi_threshold == 0.25  # base, then model
    assert cfg.monitoring.drift.bins == 20  # base, then --set
    assert cfg.monitoring.window_days == 1  # base, sibling of a key the model changed: merged, not replaced
    assert cfg.monitoring.drift.top_k == 20  # schema default
    assert loaded.files == ("conf/base.yaml", "conf/models/churn.yaml")
    assert loaded.overrides == ("monitoring.drift.bins=20", "runtime.app_name=cli-app")


def test_workspace_argument_beats_every_layer(conf: Path) -> None:
    assert load_config("churn", conf, ["workspace=/x"], workspace="/tmp/w").config.workspace == "/tmp/w"


@pytest.mark.parametrize(
    ("override", "path", "expected"),
    [
        ("runtime.shuffle_partitions=16", ("runtime", "shuffle_partitions"), 16),
        ("monitoring.drift.psi_threshold=0.3", ("monitoring", "drift", "psi_threshold"), 0.3),
        ("storage.allow_new_columns=true", ("storage", "allow_new_columns"), True),
        ("monitoring.segments=[plan, region]", ("monitoring", "segments"), ["plan", "region"]),
        ("description=hello world", ("description",), "hello world"),
        ("features.0.window=90d", ("features", 0, "window"), "90d"),
    ],
)
def test_overrides_are_typed_like_yaml(conf: Path, override: str, path: tuple, expected: object) -> None:
    assert parse_override(override)[0] == path
    value: object = load_config("churn", conf, [override]).config
    for key in path:
        value = value[key] if isinstance(key, int) else getattr(value, key)  # type: ignore[index]
    assert value == expected
    assert type(value) is type(expected)


def test_unknown_key_in_model_file_names_file_and_key_path(conf: Path) -> None:
    write_conf(conf, model=MODEL.replace("psi_threshold: 0.25", "psi_treshold: 0.2"))
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf)
    assert str(err.value) == "conf/models/churn.yaml: monitoring.drift.psi_treshold: unknown key"
    assert err.value.exit_code == 2


def test_unknown_key_in_base_names_base(conf: Path) -> None:
    write_conf(conf, base=BASE + "runtime_typo: 1\n")
    with pytest.raises(ConfigError, match=r"^conf/base\.yaml: runtime_typo: unknown key$"):
        load_config("churn", conf)


def test_unknown_key_from_override_names_the_flag(conf: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf, ["storage.bakend=embedded"])
    assert str(err.value) == "--set storage.bakend=embedded: storage.bakend: unknown key"


def test_out_of_range_value_says_expected_and_found(conf: Path) -> None:
    write_conf(conf, model=MODEL.replace("psi_threshold: 0.25", "psi_threshold: -1"))
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf)
    assert str(err.value) == (
        "conf/models/churn.yaml: monitoring.drift.psi_threshold: "
        "input should be greater than or equal to 0, found -1"
    )


def test_wrong_type_is_reported_with_the_layer_that_set_it(conf: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf, ["runtime.shuffle_partitions=many"])
    assert str(err.value) == (
        "--set runtime.shuffle_partitions=many: runtime.shuffle_partitions: "
        "input should be a valid integer, unable to parse string as an integer, found 'many'"
    )


def test_validator_messages_are_not_doubled(conf: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf, ["schedule.cron=every day"])
    assert str(err.value) == (
        "--set schedule.cron=every day: schedule.cron: expected a 5-field cron line, found 'every day'"
    )


def test_list_items_are_reported_with_their_index(conf: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--set features\.1\.bogus=1: features\.1\.bogus: unknown key$"):
        load_config("churn", conf, ["features.1.bogus=1"])


def test_missing_required_key_points_at_the_model_file(conf: Path) -> None:
    write_conf(conf, model=MODEL.replace("entity_key: customer_id\n", ""))
    with pytest.raises(ConfigError, match=r"^conf/models/churn\.yaml: entity_key: required key is missing$"):
        load_config("churn", conf)


def test_missing_model_file_lists_available_models(conf: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("fraud", conf)
    assert str(err.value) == "conf/models/fraud.yaml: model file not found (models in conf/models: churn)"


def test_bad_yaml_names_line_and_column(conf: Path) -> None:
    (conf / "models" / "churn.yaml").write_text("name: churn\nfeatures: [a, b\nx: 1\n")
    with pytest.raises(ConfigError, match=r"^conf/models/churn\.yaml: invalid YAML at line \d+, column \d+: "):
        load_config("churn", conf)


def test_top_level_must_be_a_mapping(conf: Path) -> None:
    (conf / "models" / "churn.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"^conf/models/churn\.yaml: expected a mapping of keys at the top, found list$"):
        load_config("churn", conf)


@pytest.mark.parametrize("bad", ["../churn", "/etc/passwd", "churn.yaml", "", "a b"])
def test_model_name_must_be_an_identifier(conf: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^--model: expected a model name of letters, digits and '_', found "):
        load_config(bad, conf)


def test_name_in_file_must_match_file_name(conf: Path) -> None:
    write_conf(conf, model=MODEL.replace("name: churn", "name: fraud"))
    with pytest.raises(ConfigError, match=r"name: expected 'churn' \(the file name\), found 'fraud'$"):
        load_config("churn", conf)


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", ".a=1"])
def test_malformed_override(conf: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^--set: expected KEY\.PATH=VALUE"):
        load_config("churn", conf, [bad])


def test_override_below_a_scalar_is_refused(conf: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--set workspace\.x=1: workspace: is a str value, cannot set keys below it$"):
        load_config("churn", conf, ["workspace.x=1"])


def test_hash_tracks_model_keys_not_environment(conf: Path) -> None:
    plain = load_config("churn", conf)
    assert plain.config_hash == load_config("churn", conf).config_hash
    assert len(plain.config_hash) == 16
    moved = load_config("churn", conf, ["runtime.master=spark://h:7077", "workspace=/elsewhere"])
    assert moved.config_hash == plain.config_hash
    told = load_config("churn", conf, ["alerts.dry_run=true", "alerts.metrics.textfile_dir=prom"])
    assert told.config_hash == plain.config_hash          # who is told is not what is computed
    changed = load_config("churn", conf, ["monitoring.drift.psi_threshold=0.3"])
    assert changed.config_hash != plain.config_hash
    assert config_hash(changed.config) == changed.config_hash


def test_config_is_frozen(conf: Path) -> None:
    cfg = load_config("churn", conf).config
    with pytest.raises(Exception, match="frozen"):
        cfg.monitoring.drift.psi_threshold = 1.0  # type: ignore[misc]


def test_redaction_masks_secret_keys_and_uri_credentials() -> None:
    data = {
        "runtime": {"spark_conf": {"spark.hadoop.fs.s3a.secret.key": "abc", "spark.hadoop.fs.s3a.access.key": "AK",
                                   "spark.executor.memory": "4g"}},
        "mlflow": {"tracking_uri": "https://user:tok3n@mlflow.example.com/x"},
    }
    assert redact(data) == {
        "runtime": {"spark_conf": {"spark.hadoop.fs.s3a.secret.key": "***", "spark.hadoop.fs.s3a.access.key": "***",
                                   "spark.executor.memory": "4g"}},
        "mlflow": {"tracking_uri": "https://***@mlflow.example.com/x"},
    }


def test_shipped_configuration_is_valid(conf_dir: Path) -> None:
    loaded = load_config("churn", conf_dir)
    assert loaded.config.name == "churn"
    assert loaded.config.storage.backend == "auto"


def test_overrides_are_logged_with_secrets_masked(conf: Path) -> None:
    loaded = load_config("churn", conf, ["mlflow.tracking_uri=https://user:tok3n@mlflow.example.com/x",
                                         "runtime.spark_conf={spark.hadoop.fs.s3a.secret.key: abc, spark.x: 1g}",
                                         "monitoring.drift.psi_threshold=0.3"])
    assert loaded.redacted_overrides() == (
        "mlflow.tracking_uri=https://***@mlflow.example.com/x",
        'runtime.spark_conf={"spark.hadoop.fs.s3a.secret.key": "***", "spark.x": "1g"}',
        "monitoring.drift.psi_threshold=0.3")


def test_workspace_config_reads_base_yaml_without_a_model(tmp_path: Path) -> None:
    from driftline.config import WorkspaceConfig, load_workspace_config

    conf = write_conf(tmp_path / "conf")
    got = load_workspace_config(conf, str(tmp_path / "elsewhere"))
    assert type(got) is WorkspaceConfig   # the model keys of base.yaml (monitoring) are left to the models
    assert (got.runtime.shuffle_partitions, got.runtime.app_name, got.workspace) == (
        4, "base-app", str(tmp_path / "elsewhere"))
    (conf / "base.yaml").write_text("runtime: {shuffle_partitions: 0}\n")
    with pytest.raises(ConfigError, match=r"base.yaml: runtime.shuffle_partitions"):
        load_workspace_config(conf)
    with pytest.raises(ConfigError, match=r"^--conf-dir: expected a folder with base.yaml and models/, found no folder"):
        load_workspace_config(tmp_path / "missing")


def test_a_segment_column_named_twice_is_refused(conf: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("churn", conf, ["monitoring.segments=[plan, region, plan]"])
    assert str(err.value) == ("--set monitoring.segments=[plan, region, plan]: monitoring.segments: expected "
                              "distinct segment columns, found plan more than once")
    assert err.value.exit_code == 2
