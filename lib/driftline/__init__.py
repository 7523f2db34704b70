"""driftline: parameterized Spark jobs that keep a batch ML model honest in production."""

__version__ = "0.1.0"
