"""Errors the stages and the CLI turn into one-line messages instead of tracebacks."""

import contextlib
import functools
import os
import signal
import sys
import threading


class SerError(Exception):
    """A problem with the user's input (params, data, files), reported as one line."""


class ConfigError(SerError):
    """An invalid value in params.yaml; the message names the key."""


class DataError(SerError):
    """Unusable input data; the message names the file or folder."""


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT, SIGTERM or SIGHUP (``signals_as_interrupts``).

    A KeyboardInterrupt, so that a termination unwinds the program as Ctrl-C does: ``finally``
    blocks run (``ser.core.files.atomic_path`` removes its hidden temporary file, ``ser.core.parallel.pmap``
    ends its workers) and every ``except KeyboardInterrupt`` handles it. ``status`` is the
    shell's exit status for the signal, 128 + its number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def status(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def __str__(self) -> str:
        return f"interrupted by {self.name}"


EXIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def signals_as_interrupts():
    """Within the block, SIGINT, SIGTERM and SIGHUP raise ``Interrupted`` in the main thread.

    Their default actions end the process on the spot, without running ``finally`` blocks, and
    leave hidden temporary files behind. A second signal while the first one's orderly exit
    runs ends the process at once, by that signal: a way out should that exit itself get stuck.
    Signals the process was started with ignored (``nohup``, a background job) stay ignored, and
    a handler someone else installed is kept. Elsewhere than in the main thread, where Python
    cannot install handlers, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if fired:   # the orderly exit of the first signal is under way: stop now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        fired.append(signum)
        raise Interrupted(signum)

    previous = {}
    for signum in EXIT_SIGNALS:
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def one_line_errors(main):
    """Run ``main`` and turn ``SerError`` into a one-line message and exit status 2, and Ctrl-C,
    SIGTERM and SIGHUP (``signals_as_interrupts``) into one line and exit status 128 + signal
    (130, 143, 129) after ``finally`` blocks have cleaned up."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        with signals_as_interrupts():
            try:
                return main(*args, **kwargs)
            except SerError as err:
                print(f"error: {err}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt as err:
                status = getattr(err, "status", 130)
                print("error: interrupted" if status == 130 else f"error: {err}", file=sys.stderr)
                sys.exit(status)

    return wrapper
