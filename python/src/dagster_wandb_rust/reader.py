"""A Pipes message reader that never parses half a line.

Dagster's ``PipesFileMessageReader`` tails the messages file with ``readline()``, which returns a partial line
when it catches the writer mid-write; ``json.loads`` then fails, the reader thread dies, and every later message
(the materialization included) is lost while the step still reports success. This reader buffers bytes until a
newline and, once the external process has exited, drains the file to its end before stopping.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from threading import Event
from typing import Callable, Iterator

import dagster as dg


def tail_whole_lines(path: str, should_stop: Callable[[], bool]) -> Iterator[str]:
    """Yields each complete line appended to ``path`` until ``should_stop()``, then the rest of the file."""
    pending = b""
    with open(path, "rb") as stream:
        while True:
            chunk = stream.read(1 << 16)
            if not chunk:
                if not should_stop():
                    time.sleep(0.01)
                    continue
                # The process has exited: whatever it wrote is in the file now.
                chunk = stream.read()
                if not chunk:
                    break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield line.decode("utf-8")
    if pending.strip():
        # A last line without its newline: the writer died mid-message. Parsing it fails loudly.
        yield pending.decode("utf-8", errors="replace")


class LineSafeFileMessageReader(dg.PipesFileMessageReader):
    """``PipesFileMessageReader`` with a line-safe tail, in a fresh temporary file per session."""

    def __init__(self, include_stdio_in_messages: bool = False):
        super().__init__(path=os.devnull, include_stdio_in_messages=include_stdio_in_messages, cleanup_file=True)

    @contextmanager
    def read_messages(self, handler) -> Iterator[dict]:
        with tempfile.TemporaryDirectory(prefix="dagster-pipes-") as directory:
            self._path = os.path.join(directory, "messages")
            with super().read_messages(handler) as params:
                yield params

    def _reader_thread(self, handler, is_resource_complete: Event) -> None:
        try:
            for line in tail_whole_lines(self._path, is_resource_complete.is_set):
                handler.handle_message(json.loads(line))
        except BaseException:
            handler.report_pipes_framework_exception(f"{self.__class__.__name__} reader thread", sys.exc_info())
            raise
