"""spark-submit entry point of the score job; `driftline score --help` documents the options."""

import sys

from driftline.cli.runner import run_job

if __name__ == "__main__":
    sys.exit(run_job("score", prog="jobs/score.py"))
