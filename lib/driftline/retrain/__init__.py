"""The retrain policy (a pure truth table over the monitoring history) and its config slice; the job that
evaluates it and trains is `driftline.jobs.retrain`."""
