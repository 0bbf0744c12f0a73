"""Processes that end with their owner: a killed command leaves nothing running behind.

Linux's parent-death signal (prctl PR_SET_PDEATHSIG) kills a process when the thread
that started it ends; a thread polling the owner's pid covers what that signal cannot
(a process started by a fork server or a pool's helper, or a system without prctl).
Steps (`mlops.local.runner`) and batch workers (`mlops.local.batch`) use it; servers
watch their owner in `mlops.local.server` (a graceful SIGTERM, so requests finish).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_S = 0.2


def die_with(owner_pid: int) -> None:
    """SIGKILL this process as soon as `owner_pid` is gone."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while True:
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGKILL)
            except PermissionError:
                pass
            time.sleep(POLL_S)

    threading.Thread(target=watch, name="die-with-owner", daemon=True).start()
