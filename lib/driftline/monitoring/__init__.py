"""Monitoring: the ``monitoring:`` config slice and drift spec (`spec`), every read of a run (`inputs`, given a
`inputs.Scope`), drift statistics (`drift`, `measures`), data quality (`quality`), late-label performance
(`performance`), calibration, metric rows (`metrics`), windows, the HTML report and the Evidently page; the
job is `driftline.jobs.monitor`."""
