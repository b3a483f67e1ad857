"""One writer at a time on a runs file; damaged lines named (issue 17 item 3)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from groupconv.cli import main
from groupconv.errors import GroupConvError
from groupconv.measure import RunWriter
from groupconv.measure.locking import WriterLock, lock_path_for
from groupconv.platform.runs import open_runs

HOLD = textwrap.dedent("""
    import sys
    from groupconv.measure.locking import WriterLock
    lock = WriterLock(sys.argv[1], "runs file").acquire()
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
""")


@pytest.fixture
def held(tmp_path):
    """A runs file whose lock another process holds until the test ends."""
    path = tmp_path / "runs.csv"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield path, proc
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(timeout=30)


def test_a_second_writer_is_refused_naming_the_file_and_the_holder(held):
    path, proc = held
    with pytest.raises(GroupConvError) as info:
        RunWriter(path)
    message = str(info.value)
    assert str(path) in message and f"pid {proc.pid}" in message and "\n" not in message
    with pytest.raises(GroupConvError, match="calibration runs file .* being written by another process"):
        open_runs(path)


def test_measure_into_a_locked_file_is_one_line_exit_2(held, capsys):
    path, proc = held
    code = main(["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
                 "--groups", "2", "--method", "gc", "--batch", "1", "--mode", "forward", "--out", str(path),
                 "--trials", "2", "--warmup-seconds", "0", "--min-window", "0.005", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("groupconv: error:")
    assert str(path) in err[0] and f"pid {proc.pid}" in err[0]


def test_the_lock_is_released_on_close_and_by_a_killed_holder(tmp_path):
    path = tmp_path / "runs.csv"
    with RunWriter(path):
        assert lock_path_for(path).exists()
    with RunWriter(path):  # reopened after close
        pass
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.kill()  # SIGKILL: the OS drops the lock with the process
    proc.wait(timeout=30)
    with RunWriter(path):
        pass


def test_lock_is_reentrant_per_writer_not_across_writers(tmp_path):
    path = tmp_path / "runs.csv"
    first = WriterLock(path).acquire()
    try:
        out = subprocess.run([sys.executable, "-c", HOLD, str(path)], input="\n", capture_output=True,
                             text=True, timeout=60)
        assert out.returncode != 0 and "being written by another process" in out.stderr
    finally:
        first.release()



@pytest.fixture
def written(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "runs.csv"
    assert main(["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4",
                 "--groups", "2", "4", "--method", "gc", "--batch", "1", "--mode", "forward", "--out", str(path),
                 "--trials", "2", "--warmup-seconds", "0", "--min-window", "0.005", "--quiet",
                 "--threads", "1"]) == 0
    return path


@pytest.mark.parametrize("damage, needle", [
    (lambda ls: [ls[0], ls[1].rstrip("\n") + ls[2]], r"line 2: two rows glued into one line"),
    (lambda ls: [ls[0], ls[1][: len(ls[1]) // 2] + "\n", ls[2]], r"line 2: a short row"),
    (lambda ls: [ls[0], ls[1], ls[0], ls[2]], r"line 3: the header again"),
    (lambda ls: [ls[0], ls[1], ls[2], ls[1]], r"line 4: repeats the configuration of line 2"),
])
@pytest.mark.parametrize("command", ["fit", "measure"])
def test_damaged_lines_are_named_by_fit_and_by_a_resumed_measure(written, capsys, damage, needle, command):
    import re

    lines = written.read_text().splitlines(keepends=True)
    written.write_text("".join(damage(lines)))
    if command == "fit":
        args = ["fit", str(written), "--model", "macs"]
    else:
        args = ["measure", "layer", "--in-channels", "8", "--out-channels", "8", "--size", "4", "--groups", "2",
                "--method", "gc", "--batch", "1", "--mode", "forward", "--out", str(written), "--quiet"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("groupconv: error:"), err
    assert re.search(needle, err[0]), err[0]
