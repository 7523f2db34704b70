"""Monitoring: the distributed profiler lives in `profile`."""
