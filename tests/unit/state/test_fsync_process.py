"""The fsync process: it fsyncs the fds it is sent and says how that went; a push with
``sync: always`` waits for it; one that dies is started again; none outlives its gateway.

Real processes and real fds throughout: the child is the one the gateway runs.
"""
import asyncio
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from otelgravel.errors import StateUnavailable
from otelgravel.state.file import FileBackend
from otelgravel.state.fsync_process import FsyncProcess

from .test_file import JOB, applier, push


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it has ended, only not yet been reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def always(tmp_path):
    """An open backend with ``sync: always`` and its applier."""
    b = FileBackend(str(tmp_path / "s"), "always", 1.0, 0)
    a = applier()
    await b.open(a)
    return b, a


async def fsync(proc: FsyncProcess, fds: list[int]) -> OSError | None:
    done = asyncio.get_running_loop().create_future()
    proc.fsync(fds, done.set_result)
    return await asyncio.wait_for(done, 20)


def test_it_fsyncs_each_fd_it_is_sent_and_reports_the_first_error(tmp_path):
    async def main():
        proc = FsyncProcess()
        proc.start()
        fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x")
        r, w = os.pipe()  # fsync(2) of a pipe fails with EINVAL: proof that it was called
        try:
            assert await fsync(proc, [fd]) is None
            error = await fsync(proc, [fd, w])
            assert isinstance(error, OSError) and error.errno == errno.EINVAL, error
            assert await fsync(proc, [fd]) is None  # one error does not stop the process
            assert proc.rounds == 2 and proc.starts == 1
        finally:
            proc.close()
            for f in (fd, r, w):
                os.close(f)

    asyncio.run(main())


def test_it_outlives_the_signals_that_reach_it_with_its_gateway(tmp_path):
    """Ctrl-C reaches the whole process group, systemd's stop the whole cgroup: the gateway
    still has its last fsyncs to do then, so the child ignores them and leaves on end-of-file."""
    async def main():
        proc = FsyncProcess()
        proc.start()
        fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            assert await fsync(proc, [fd]) is None  # started, its handlers set
            pid = proc.pid
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                os.kill(pid, number)
            await asyncio.sleep(0.3)
            assert alive(pid)
            assert await fsync(proc, [fd]) is None
            assert proc.pid == pid and proc.starts == 1
        finally:
            proc.close()
            os.close(fd)
        assert not alive(pid)

    asyncio.run(main())


def test_a_push_with_sync_always_waits_for_the_fsync_process(tmp_path):
    async def main():
        b, a = await always(tmp_path)
        pid = b._syncer.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            pending = asyncio.ensure_future(b.submit(push(0)))
            await asyncio.sleep(0.5)
            assert not pending.done()  # applied and written, not answered: no fsync yet
            assert a.store.get("c", JOB).point.value == 1
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.wait_for(pending, 20)
        await b.close()

    asyncio.run(main())


def test_a_killed_fsync_process_is_started_again_and_its_request_sent_again(tmp_path):
    async def main():
        b, a = await always(tmp_path)
        first = b._syncer.pid
        os.kill(first, signal.SIGKILL)  # idle: the next round starts another
        await asyncio.wait_for(b.submit(push(0)), 20)
        second = b._syncer.pid
        assert second != first and not alive(first)
        os.kill(second, signal.SIGSTOP)  # in the middle of a round: that round goes again
        pending = asyncio.ensure_future(b.submit(push(1)))
        await asyncio.sleep(0.3)
        assert not pending.done()
        os.kill(second, signal.SIGKILL)
        await asyncio.wait_for(pending, 20)
        assert b._syncer.pid not in (first, second) and b._syncer.starts == 3
        assert a.store.get("c", JOB).point.value == 2 and b.available
        await b.close()
        assert not alive(second)

    asyncio.run(main())


def test_an_fsync_that_fails_is_a_503_and_the_backend_refuses_pushes_after_it(tmp_path):
    async def main():
        b, _ = await always(tmp_path)
        r, w = os.pipe()
        os.dup2(w, b._fd)  # the log's fd is a pipe now: its write succeeds, its fsync fails
        try:
            with pytest.raises(StateUnavailable, match="Invalid argument"):
                await asyncio.wait_for(b.submit(push(0)), 20)
            assert not b.available
            with pytest.raises(StateUnavailable):
                await b.submit(push(1))
        finally:
            await b.close()
            os.close(r)
            os.close(w)

    asyncio.run(main())


def test_the_fsync_process_ends_when_its_gateway_is_killed(tmp_path):
    script = textwrap.dedent("""
        import asyncio, sys, time
        from otelgravel.state.fsync_process import FsyncProcess
        async def main():
            proc = FsyncProcess()
            proc.start()
            print(proc.pid, flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()



def test_close_while_the_periodic_task_awaits_its_round_writes_the_last_snapshot(tmp_path):
    """``sync: interval``: close() comes in the turn after the periodic task asked for a round
    (its future made, the round not yet started) and cancels that task. The cancellation must
    not reach the round's future, which close() awaits too: it did, and close() raised
    CancelledError without writing the last snapshot."""
    directory = str(tmp_path / "s")

    async def main():
        b = FileBackend(directory, "interval", 0.005, 0)
        await b.open(applier())
        caught = 0
        deadline = time.monotonic() + 20
        while not caught and time.monotonic() < deadline:
            await b.submit(push(caught))  # something to sync
            while time.monotonic() < deadline:
                await asyncio.sleep(0)
                if b._next_sync is not None and b._syncing is None:
                    caught = 1  # asked for, not started: the periodic task awaits it
                    break
        assert caught, "the periodic task never asked for a round"
        await b.close()  # in this turn (a task of its own would start after the round did)

    asyncio.run(main())
    again = applier()

    async def reopen():
        b = FileBackend(directory, "never", 1.0, 0)
        await b.open(again)
        restored = b._restored
        await b.close()
        return restored

    restored = asyncio.run(reopen())
    assert again.store.get("c", JOB).point.value == 1
    assert restored["replayed"] == 0 and restored["snapshot_position"] == 1, restored


def test_a_push_cancelled_while_it_waits_for_its_round_fails_no_other_push(tmp_path):
    """``sync: always``: two pushes wait for one round (the child is stopped); one's task is
    cancelled (a handler aiohttp gives up on). The other is still answered when the round ends:
    the cancellation did not reach the round's future."""
    async def main():
        b, a = await always(tmp_path)
        os.kill(b._syncer.pid, signal.SIGSTOP)
        try:
            first = asyncio.ensure_future(b.submit(push(0)))
            second = asyncio.ensure_future(b.submit(push(1)))
            await asyncio.sleep(0.1)
            assert not first.done() and not second.done()
            first.cancel()
            await asyncio.sleep(0.05)
        finally:
            os.kill(b._syncer.pid, signal.SIGCONT)
        await asyncio.wait_for(second, 20)
        assert first.cancelled()
        assert a.store.get("c", JOB).point.value == 2  # both written and applied
        await b.close()

    asyncio.run(main())
