"""Prefect flows: the pipeline as users start it (CLI, UI, schedules)."""
