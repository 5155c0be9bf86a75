"""fsync(2) done by a small child process, its completion seen by the event loop as a readable
socket.

Why not a thread: an fsync in a thread of ours costs two GIL handoffs and two thread wakeups per
round, and under load the event loop holds the GIL almost all the time. Measured with
``sync: always`` (wrk, 16 kept-alive connections, 2 vCPU): with the fsync in a thread, 25% of
the gateway's CPU was in waking and switching threads (``pthread_cond_signal``, futex waits),
a push cost 165 µs of CPU against memory-only's 83, and throughput was 0.49 of memory-only;
with this process, 105 to 130 µs and 0.73 to 0.77 in the bench (up to 0.82 in A/B runs). The
fsync still runs in parallel with the event loop, and the loop pays one ``sendmsg`` and one
readable event per round.

The child (``_fsync_child.py``) is a plain interpreter running a script of about 45 lines that
imports only ``os``, ``signal``, ``socket`` and ``sys`` (``-I -S``: no site, no environment).
It gets the fds to fsync with each request (SCM_RIGHTS), so it holds no state: one that dies
(killed, OOM) is started again and the request sent again. It leaves by itself when the
gateway's end of the socket closes, whatever way the gateway ended, and ignores the signals
that reach it with its gateway's (SIGINT, SIGTERM, SIGHUP).
"""
from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys
from typing import Callable

from ..errors import GravelError

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_fsync_child.py")
_STOP_WAIT = 5.0

Done = Callable[[OSError | None], None]


class FsyncProcessError(GravelError):
    """The fsync process cannot be started."""


class FsyncProcess:
    """One request at a time: ``fsync(fds, done)`` fsyncs ``fds`` in order in the child and
    calls ``done(None)``, or ``done(OSError)`` with the first fsync's error, from the event loop.
    The caller keeps its fds open until ``done`` (a request is sent again after a restart)."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._request: tuple[list[int], Done] | None = None
        self._retried = False  # the request in flight was sent again after a death
        self.rounds = 0    # requests answered without an error (the tests read it)
        self.starts = 0    # processes started

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._spawn()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", CHILD, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            ours.close()
            raise FsyncProcessError(f"cannot start the fsync process ({sys.executable!r} "
                                    f"{CHILD}): {exc}") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self.starts += 1
        self._loop.add_reader(ours.fileno(), self._readable)

    def fsync(self, fds: list[int], done: Done) -> None:
        if self._request is not None:
            raise RuntimeError("an fsync request is already in flight")
        self._request = (fds, done)
        self._send()

    def _send(self) -> None:
        fds, _ = self._request
        try:
            if self._sock is None:
                self._spawn()
            socket.send_fds(self._sock, [b"s"], fds)
        except FsyncProcessError as exc:
            self._answer(OSError(errno.EIO, str(exc)))
        except OSError:  # the child is gone (EPIPE, ECONNRESET): the readable event says so
            pass

    def _readable(self) -> None:
        try:
            reply = self._sock.recv(16)
        except BlockingIOError:
            return
        except OSError:
            reply = b""
        if not reply:  # the child died
            self._lost()
            return
        if self._request is not None:
            code = reply[-1]
            self._answer(None if code == 0 else OSError(code, os.strerror(code)))

    def _lost(self) -> None:
        pid = self._proc.pid
        self._drop()
        if self._request is None:
            return  # started again when next needed
        if self._retried:
            self._answer(OSError(errno.EIO, f"the fsync process (pid {pid}) died twice during "
                                            "one request"))
            return
        self._retried = True  # its fsync may not have run: the next child does it again
        self._send()

    def _answer(self, error: OSError | None) -> None:
        _, done = self._request
        self._request = None
        self._retried = False
        if error is None:
            self.rounds += 1
        done(error)

    def _drop(self) -> None:
        """Forget the child: stop watching its socket, close it, reap it."""
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(_STOP_WAIT)  # it leaves on the socket's end-of-file
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """Stop the child (after the last request has been answered)."""
        if self._loop is not None:
            self._drop()
