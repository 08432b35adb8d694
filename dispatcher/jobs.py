"""The RQ job's import path: every job already queued or scheduled names ``dispatcher.jobs.deliver``."""

from .worker.batch import deliver

__all__ = ["deliver"]
