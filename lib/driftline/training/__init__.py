"""Training (issue [training]): training set, estimators, evaluation, promotion gate, train job."""
