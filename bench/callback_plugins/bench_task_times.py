# Copyright: run-buildset-registry developers
# Apache License 2.0 (see galaxy.yml)
"""Write when each task of a play starts, for bench/run.py.

A task's cost is the time from its start to the next task's start (or the
end of the playbook), the way profile_tasks counts: module transfer, run
and result handling included. Enabled only by bench/run.py, through
ANSIBLE_CALLBACK_PLUGINS and ANSIBLE_CALLBACKS_ENABLED; the file to write is
$BENCH_TASK_TIMES (JSON lines: {"t": epoch seconds, "task": name or null}).
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_task_times
type: aggregate
short_description: write task start times for bench/run.py
description: Writes one JSON line per task start, and one at the end, to $BENCH_TASK_TIMES.
requirements: [enabled in the callbacks_enabled setting]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("BENCH_TASK_TIMES")

    def _mark(self, task_name):
        if self._path:
            with open(self._path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"t": time.time(), "task": task_name}) + "\n")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._mark(task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._mark(task.get_name())

    def v2_playbook_on_stats(self, stats):
        self._mark(None)
