"""Feature preparation: the ``sources``/``features`` config slice (`spec`), the compiled plan (`compile`) and the
point-in-time transforms (`pit`); the job is `driftline.jobs.prepare_features`."""
