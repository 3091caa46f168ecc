"""Random bytes for ids (event ids, span ids): os.urandom drawn 4 KiB at a time, so that making an id
costs no system call (they are made by the thousand per second). A forked child starts afresh, so it
never repeats its parent's."""

from __future__ import annotations

import os


class _RandomBytes:
    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._buffer, self._at = b"", 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._buffer):
            self._buffer, self._at = os.urandom(4096), 0
        self._at += n
        return self._buffer[self._at - n : self._at]


random_bytes = _RandomBytes().take
"""``random_bytes(n)``: n bytes from the operating system's generator (n at most 4096)."""
