"""Training: the ``label``/``estimator``/``training`` config slices, training set, estimators, evaluation,
promotion gate; the job is `driftline.jobs.train`."""
