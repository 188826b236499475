"""The line-safe reader: whole lines only, however the writer splits them, and everything once it stops."""

import threading
import time

from dagster_wandb_rust.reader import tail_whole_lines


def test_half_written_lines_are_held_back_until_complete(tmp_path):
    path = tmp_path / "messages"
    path.write_bytes(b"")
    stopped = threading.Event()
    written = []

    def writer():
        with open(path, "ab", buffering=0) as stream:
            for n in range(200):
                line = ('{"n": %d, "pad": "%s"}\n' % (n, "x" * (n % 37))).encode()
                # Each line in two writes, with a pause between, so the reader catches it half written.
                stream.write(line[: len(line) // 2])
                time.sleep(0.0005)
                stream.write(line[len(line) // 2:])
                written.append(line.decode().rstrip("\n"))
        stopped.set()

    thread = threading.Thread(target=writer)
    thread.start()
    lines = list(tail_whole_lines(str(path), stopped.is_set))
    thread.join()
    assert lines == written


def test_what_was_written_before_the_stop_is_drained(tmp_path):
    path = tmp_path / "messages"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    assert list(tail_whole_lines(str(path), lambda: True)) == ['{"a": 1}', '{"b": 2}']


def test_a_last_line_without_newline_is_given_as_is(tmp_path):
    path = tmp_path / "messages"
    path.write_bytes(b'{"a": 1}\n{"b": ')
    assert list(tail_whole_lines(str(path), lambda: True)) == ['{"a": 1}', '{"b": ']
