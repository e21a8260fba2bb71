"""Incident snapshots: the bundle (zip) of report, charts, tables and manifest."""
