"""The line-safe reader: whole lines only, however the writer splits them, and everything once it stops."""

import sys
import threading
import time
from pathlib import Path

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


VOLUME = 20_000


def test_no_message_is_lost_in_a_real_pipes_session_under_volume():
    """A real session: Dagster's Pipes client with this reader, and a step writing its messages in halves."""
    import dagster as dg

    from dagster_wandb_rust import LineSafeFileMessageReader

    step = [sys.executable, str(Path(__file__).with_name("volume_step.py")), str(VOLUME)]

    @dg.asset
    def chatty(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient):
        invocation = pipes.run(command=step, context=context)
        messages = invocation.get_custom_messages()
        in_order = all(message == {"n": n} for n, message in enumerate(messages))
        sent = invocation.get_materialize_result().metadata["sent"]
        return dg.MaterializeResult(metadata={"received": len(messages), "in_order": in_order, "sent": sent})

    client = dg.PipesSubprocessClient(message_reader=LineSafeFileMessageReader())
    result = dg.materialize([chatty], resources={"pipes": client})
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    assert metadata == {"received": VOLUME, "in_order": True, "sent": VOLUME}
