"""Kill a process at seeded random points of a table's first commit, and name the state it leaves.

A kill test runs the product's own first write of a table (``add_labels``, ``append_quarantine``,
``register_model`` here; ``SubmitLabels`` in ``ssald serve`` in tests/server), waits until the table's
folder appears (Lance's first commit has begun: it creates the folder, writes the data file, the
transaction, then links the manifest), sleeps a delay drawn from a seeded generator over the time such a
write takes, and sends SIGKILL. Where the kill lands is random but repeatable (same seed, same delays);
what it left is read from disk, never assumed. When no kill lands inside the commit, :func:`half_create`
leaves the state such a kill leaves, so the repair is asserted on every run, never skipped.

The writes run in processes forked from one :class:`Writers` process, which imports the product once and
never touches LanceDB itself (so its forks start with nothing of LanceDB's in flight): a kill costs a
fork, not an interpreter start.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ABSENT, HALF_CREATED, COMMITTED = "absent", "half-created", "committed"
REPO_ROOT = Path(__file__).resolve().parents[1]


def table_folder(db: Path, name: str) -> Path:
    """The folder of table ``name`` in the database ``db``."""
    return db / f"{name}.lance"


def table_state(db: Path, name: str) -> str:
    """``absent`` (no folder), ``half-created`` (a folder but no committed manifest) or ``committed``."""
    folder = table_folder(db, name)
    if not folder.is_dir():
        return ABSENT
    return COMMITTED if list((folder / "_versions").glob("*.manifest")) else HALF_CREATED


def half_create(folder: Path) -> None:
    """What a kill during a table's first commit leaves: data files, no manifest, no transaction."""
    shutil.rmtree(folder / "_versions")
    shutil.rmtree(folder / "_transactions", ignore_errors=True)


def age(folder: Path, seconds: float) -> None:
    """Date every entry of ``folder`` ``seconds`` back, as if the crash that left it was that long ago.

    ``ssald_index.registry.set_aside_incomplete`` waits until a folder without a manifest has not changed
    for ``SETTLE_SECONDS`` (another process may still be writing it); a test's next run starts a moment
    after its kill and need not wait that out (tests/ssald_index/test_registry.py covers the wait).
    """
    then = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (then, then))


def kill_when_created(alive: Callable[[], bool], kill: Callable[[], None], folder: Path, delay: float) -> None:
    """Call ``kill`` ``delay`` seconds after ``folder`` appears, unless ``alive()`` turned false first.

    Gives up waiting for the folder after 120 s (and kills then).
    """
    deadline = time.monotonic() + 120
    while alive() and not folder.exists() and time.monotonic() < deadline:
        time.sleep(0.0002)
    if delay > 0 and alive():
        time.sleep(delay)
    if alive():
        kill()


def commit_seconds(table: str, name: str, db: Path) -> float:
    """Seconds from the table's folder appearing to the end of a first write of ``table`` in ``db`` here."""
    folder, seen = table_folder(db, name), []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() and not folder.exists():
            time.sleep(0.0001)
        seen.append(time.perf_counter())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        first_write(table, db)
    finally:
        end = time.perf_counter()
        done.set()
        watcher.join()
    return max(end - seen[0], 0.0)


def seeded_delays(table: str, name: str, scratch: Path, seed: str, n: int) -> list[float]:
    """``n`` delays drawn uniformly (seed ``seed``) over 1.25 times a first commit of ``table`` on this machine.

    The commit is timed twice, in ``scratch/0`` and ``scratch/1``; the second (warm) time is used.
    """
    window = [commit_seconds(table, name, scratch / str(i)) for i in range(2)][-1]
    rng = random.Random(seed)
    return [rng.uniform(0, 1.25 * window) for _ in range(n)]


def ensure_half_created(states: list[str], table: str, name: str, db: Path) -> list[str]:
    """``states`` with ``db`` (the first one's database) half-created when no kill left a half-created table.

    A kill that came too late left a committed table: its manifests are removed. None may be absent: the
    kills wait for the folder.
    """
    assert ABSENT not in states, states
    if HALF_CREATED in states:
        return states
    half_create(table_folder(db, name))
    return [HALF_CREATED, *states[1:]]


def _running(pid: int) -> bool:
    """Whether process ``pid`` (a child of the writer process, reaped only when told) has not ended."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Writers:
    """A process that forks one child per first write; :meth:`kill_first_write` kills the child in it."""

    def __init__(self) -> None:
        cmd = [sys.executable, "-W", "ignore", "-m", "tests.first_commit"]  # -W: LanceDB warns on every fork
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer, f"the writer process ended (exit {self.proc.wait(10)})"
        return answer

    def kill_first_write(self, table: str, name: str, db: Path, delay: float) -> str:
        """Write ``table`` for the first time into ``db`` in a child, SIGKILL it ``delay`` s into the commit.

        Returns the state the table was left in. The child must have ended by the kill or with success.
        """
        pid = int(self._ask(f"{table} {db}"))
        kill_when_created(lambda: _running(pid), lambda: os.kill(pid, signal.SIGKILL), table_folder(db, name), delay)
        ended = self._ask("reap")
        assert ended in ("signal 9", "exit 0"), f"first write of {table} in {db}: {ended}"
        return table_state(db, name)

    def close(self) -> None:
        """End the writer process."""
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()


def first_write(table: str, db: Path) -> None:
    """The product's first write of ``table`` in ``db``: the call that creates it."""
    if table == "labels":
        from ssald_index.active.labels import Label, add_labels

        add_labels(db, [Label(1, "lens", "killed")])
    elif table == "quarantine":
        from ssald_index.registry import append_quarantine

        append_quarantine(db, [{"source": "killed.fits", "objid": 1, "reason": "unreadable"}])
    elif table == "models":
        from ssald_index.registry import register_model

        register_model(db, {"model_id": "killed", "embedding_dim": 32, "path": "killed.onnx"})
    else:
        raise ValueError(f"no first write for table {table!r}")


def _serve_writes() -> None:
    """The :class:`Writers` process: ``TABLE DB`` forks a child that writes (its pid is printed);
    ``reap`` waits for that child and prints how it ended."""
    import ssald_index.active.labels  # noqa: F401 - imported once here, not in every child
    import ssald_index.registry  # noqa: F401

    pid = 0
    for line in sys.stdin:
        if line.strip() == "reap":
            status = os.waitpid(pid, 0)[1]
            ended = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
            print(ended, flush=True)
            continue
        table, db = line.split()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                first_write(table, Path(db))
            except BaseException:  # noqa: BLE001 - the parent reports the exit status; stderr has the trace
                traceback.print_exc()
                code = 1
            os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":
    _serve_writes()
