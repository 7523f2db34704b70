"""The pipeline job: prepare_features → score → monitor → retrain per date, resumable; scheduler renderings."""
