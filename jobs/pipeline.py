"""spark-submit entry point of the pipeline job; `driftline pipeline --help` documents the options."""

import sys

from driftline.cli.runner import run_job

if __name__ == "__main__":
    sys.exit(run_job("pipeline", prog="jobs/pipeline.py"))
