"""spark-submit entry point of the prepare_features job; `driftline prepare_features --help` documents the options."""

import sys

from driftline.cli.runner import run_job

if __name__ == "__main__":
    sys.exit(run_job("prepare_features", prog="jobs/prepare_features.py"))
