"""Batch scoring: a pure pandas predict core, its Spark ``mapInPandas`` wrapper, shadow scoring.

Modules: `spec` (the ``scoring:`` config slice), `signature` (what a model version expects and the
check of a feature table against it), `core` (features frame → predictions frame, no Spark),
`worker` (per-Python-worker model cache and thread limits), `spark` (the ``mapInPandas`` wrapper); the
job is `driftline.jobs.score`.
"""
