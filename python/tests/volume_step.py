"""A Pipes step that sends many custom messages, then a materialization of their count, each message written in
two halves (two `write` calls on a file kept open, as a Rust step's file channel may be caught): a reader that
parses half a line loses the rest of the session."""

import json
import os
import sys
import time
from contextlib import contextmanager

from dagster_pipes import PipesDefaultMessageWriter, PipesMessageWriterChannel, open_dagster_pipes


class HalvesChannel(PipesMessageWriterChannel):
    def __init__(self, path):
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._written = 0

    def write_message(self, message):
        line = (json.dumps(message) + "\n").encode()
        os.write(self._fd, line[: len(line) // 2])
        self._written += 1
        if self._written % 250 == 0:
            # Now and then a pause mid-line, long enough for the reader to reach the end of the file there.
            time.sleep(0.002)
        os.write(self._fd, line[len(line) // 2:])


class HalvesWriter(PipesDefaultMessageWriter):
    @contextmanager
    def open(self, params):
        yield HalvesChannel(params[self.FILE_PATH_KEY])


count = int(sys.argv[1])
with open_dagster_pipes(message_writer=HalvesWriter()) as pipes:
    for n in range(count):
        pipes.report_custom_message({"n": n})
    pipes.report_asset_materialization(metadata={"sent": count})
