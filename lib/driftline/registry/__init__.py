"""MLflow model registry access: tracking setup, versions, aliases, verified artifacts.

`client.ModelRegistry` is the entry point; `artifact` holds hashing and the skops allow-list; `spec` the
``mlflow:`` config slice;
``driftline models`` is `driftline.cli.models`.
"""
