"""The tests use the same worker launcher as `gpushield demo`."""

from gpushield.devtools.runpod_worker import RunningWorker, start_runpod_worker

__all__ = ["RunningWorker", "start_runpod_worker"]
