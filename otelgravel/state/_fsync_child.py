"""The fsync process's program (see ``fsync_process.py``): run as a script, it imports nothing of
otelgravel and nothing but the standard library's ``os``, ``signal``, ``socket`` and ``sys``.

It reads requests from the socket whose fd is its one argument. A request is one byte with the
fds to fsync attached (SCM_RIGHTS): it fsyncs them in order, closes them, and answers with one
byte, 0 or the errno of the first fsync that failed. It leaves when the socket closes (the
gateway stopped, or died: nothing outlives it), and only then: it ignores SIGINT, SIGTERM and
SIGHUP, which reach it with its gateway's (Ctrl-C in a terminal goes to the whole process
group, systemd's stop to the whole cgroup) while the gateway still has its last fsyncs to do.
"""
import os
import signal
import socket
import sys

MAX_FDS = 64


def serve(sock: socket.socket) -> None:
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1, MAX_FDS)
        except OSError:
            return
        if not message:
            return
        error = 0
        for fd in fds:
            if not error:
                try:
                    os.fsync(fd)
                except OSError as exc:
                    error = exc.errno or 5  # EIO when the OS gave none
            os.close(fd)
        try:
            sock.send(bytes((min(error, 255),)))
        except OSError:
            return


if __name__ == "__main__":
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    serve(socket.socket(fileno=int(sys.argv[1])))
