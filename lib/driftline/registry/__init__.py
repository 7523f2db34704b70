"""MLflow model registry access (issue [training]): tracking setup, versions, aliases, verified artifacts.

`client.ModelRegistry` is the entry point; `artifact` holds hashing and the skops allow-list;
`cli.models_command` is ``driftline models``.
"""
