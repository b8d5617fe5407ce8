"""uvicorn's worker supervisor, told at once when a worker dies (imported by the server only)."""

from __future__ import annotations

from uvicorn.supervisors import Multiprocess


class Supervisor(Multiprocess):
    """uvicorn's :class:`~uvicorn.supervisors.Multiprocess`, which pings each worker over a
    pipe every half second. It keeps both ends of that pipe open itself, so a worker killed
    between a ping and its answer (the OOM killer, ``kill -9``) is noticed only when the
    health-check timeout (``LOANRISK_WORKER_HEALTHCHECK_TIMEOUT``) runs out: the port has one
    worker fewer, and a SIGTERM waits, for that long.

    Once a worker has been started (and so holds its end), the supervisor closes its own copy
    of the worker's end: the worker's death is then an end of file on the pipe, the ping
    fails at once and the worker is replaced."""

    def keep_subprocess_alive(self) -> None:
        for process in self.processes:
            if process.pid is not None:
                process.child_conn.close()
        super().keep_subprocess_alive()
