"""Scheduler renderings of the pipeline (cron line, Airflow DAG, Databricks job or bundle); the pipeline job
itself is `driftline.jobs.pipeline`."""
