"""Long-running work (data processing, training, batch scoring) as jobs.

A job runs in a child process (:mod:`loanrisk.jobs.child`), its state lives on the shared
storage (:mod:`loanrisk.jobs.store`) so that any replica can answer for it, and a
:class:`~loanrisk.jobs.manager.JobManager` queues, runs, heartbeats and cancels them.
"""

from loanrisk.jobs.child import run_in_process
from loanrisk.jobs.manager import JobManager
from loanrisk.jobs.store import JobStore

__all__ = ["JobManager", "JobStore", "run_in_process"]
