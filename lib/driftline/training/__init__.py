"""Training: training set, estimators, evaluation, promotion gate, train job."""
