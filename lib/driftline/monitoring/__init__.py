"""Monitoring (issue [monitoring]): the distributed profiler lives in `profile`."""
