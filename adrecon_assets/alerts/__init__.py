"""Alerts (DATA_CONTRACT.md section 6): the webhook resource, in-run hooks and the sensors
that alert failed runs and failed checks."""
