"""The one exception hierarchy of driftline and the exit code each kind maps to.

Expected failures carry a single-line message that says what was expected and what was found;
the job runner prints that line and exits with ``exit_code``. Anything that is not a
``DriftlineError`` is unexpected and exits 1 with a traceback.
"""

from __future__ import annotations


class DriftlineError(Exception):
    """An expected failure: one clear line, non-zero exit."""

    exit_code = 1


class ConfigError(DriftlineError):
    """Bad configuration (file, key path, value): exit 2, raised before Spark starts."""

    exit_code = 2


class UsageError(DriftlineError):
    """Bad command-line usage (arguments, dates): exit 2."""

    exit_code = 2


class EnvironmentProblem(DriftlineError):
    """The machine cannot run the job (e.g. no Java 17+): exit 2, a set-up problem."""

    exit_code = 2


class InputContractError(DriftlineError):
    """An input table does not hold what the job needs: a column missing, retyped, or values outside its
    contract (a features table without a model column, labels that are not 0/1): exit 2, nothing written."""

    exit_code = 2


class MissingInputError(DriftlineError):
    """An input is not there yet (no table, no rows for the date, no reference profile, too few matured
    labels): exit 1; the message names the step that makes it."""


class QualityGateError(DriftlineError):
    """A data-quality check of severity ``error`` failed: exit 3, nothing is written."""

    exit_code = 3


class TableError(DriftlineError):
    """A Delta table operation was refused or failed (name, schema, partition, commit)."""


class ConcurrentRunError(TableError):
    """Another run committed the same (job, table, partition) first."""


class ArtifactIntegrityError(DriftlineError):
    """A model artifact does not match the SHA-256 recorded at registration, or holds untrusted types:
    refused before it is deserialized (R16, R17)."""
