"""Monitoring: the ``monitoring:`` config slice and drift spec (`spec`), every read of a run (`inputs`, given a
`inputs.Scope`); drift, bottom up: measures on cell counts (`measures`), one column's measures from two profiles
(`comparison`), its verdict against the thresholds (`verdict`), the dataset decision under FDR control and its
long-format rows (`drift`); calibrated distance thresholds (`thresholds` from chunk profiles, `calibration` to cut,
profile and store the chunks); data quality (`quality`), late-label performance (`performance`), metric rows
(`metrics`), windows, the HTML report (`report`) and the Evidently page; the job is `driftline.jobs.monitor`."""
