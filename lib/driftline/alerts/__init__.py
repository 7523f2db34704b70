"""What reaches people: today the on-call status of a model (`driftline.alerts.status`).

Rules over verdicts, notification channels, ``alert_events`` and the metrics export will live here too
(DESIGN §1, the module map).
"""
