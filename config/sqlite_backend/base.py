"""SQLite with a fair queue in front of its single writer.

Every write transaction here is `BEGIN IMMEDIATE` (settings), so SQLite lets one writer in at a time and makes the
others poll: its busy handler sleeps 1, 2, 5 ... up to 100 ms between tries, so under load a waiting request can
sleep long after the lock was freed (the labeling load benchmark saw p95 latencies near a second). Here each
transaction first takes an exclusive `flock` on a file beside the database: the kernel wakes a waiter as soon as the
holder commits, and nobody sleeps on a timer. SQLite's own locking still guarantees correctness; the file lock
only orders the waiting. No library does this for Django (django's backend exposes no busy-handler hook), hence
this small subclass.
"""

import fcntl
import os

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _queue_fd: int | None = None

    def _queue_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        return None if self.is_in_memory_db() else f"{name}.writequeue"

    def _queue_enter(self) -> None:
        path = self._queue_path()
        if path is None:
            return
        if self._queue_fd is None:
            self._queue_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._queue_fd, fcntl.LOCK_EX)

    def _queue_leave(self) -> None:
        if self._queue_fd is not None:
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    def _start_transaction_under_autocommit(self):
        self._queue_enter()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._queue_leave()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._queue_leave()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._queue_leave()

    def _close(self):
        try:
            return super()._close()
        finally:
            if self._queue_fd is not None:
                os.close(self._queue_fd)  # closing the descriptor also releases a lock still held
                self._queue_fd = None
