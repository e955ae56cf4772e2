#!/usr/bin/python3
"""A second, independent Socket.IO client against Parley: Debian's
python3-socketio (5.7) on python3-engineio and python3-websocket. Run with
/usr/bin/python3 (Debian's packages are not on a pyenv interpreter's path).

    python_client.py URL

Connects with transports ['polling', 'websocket'] (starts on long-polling,
then upgrades), checks from the client side that the upgrade happened, emits
"message-with-ack" with a callback and checks the answer, emits "message"
and waits for "message-back". Prints one "ok ..." line per check, or a
"FAIL ..." line; exits 0 when every check passed, 1 otherwise.
Used by python.test.mjs against build/conformance-server.
"""
import logging
import sys
import threading

import socketio

TIMEOUT = 5


def missing_modules():
    """python-engineio needs these for polling and websocket, yet Debian's
    packages only recommend them; without them connect() fails vaguely."""
    missing = []
    for module, package in (('requests', 'python3-requests'), ('websocket', 'python3-websocket')):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    return missing


class Recorder(logging.Handler):
    """Keeps what python-engineio logs, to see the transport steps it took."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main(url):
    missing = missing_modules()
    if missing:
        print('FAIL missing Debian packages %s (make deps-test installs them)' % ' '.join(missing), flush=True)
        return 1
    recorder = Recorder()
    eio_logger = logging.getLogger('parley.engineio')
    eio_logger.setLevel(logging.INFO)
    eio_logger.propagate = False
    eio_logger.addHandler(recorder)

    sio = socketio.Client(reconnection=False, engineio_logger=eio_logger)
    got_auth = threading.Event()
    got_back = threading.Event()
    backs = []

    @sio.on('auth')
    def on_auth(data):
        got_auth.set()

    @sio.on('message-back')
    def on_message_back(*args):
        backs.append(list(args))
        got_back.set()

    failures = []

    def check(cond, what):
        print(('ok ' if cond else 'FAIL ') + what, flush=True)
        if not cond:
            failures.append(what)

    sio.connect(url, transports=['polling', 'websocket'], wait_timeout=TIMEOUT)
    try:
        check(any(line.startswith('Attempting polling connection') for line in recorder.lines),
              'handshake over polling')
        check(any(line == 'WebSocket upgrade was successful' for line in recorder.lines),
              'upgrade to websocket')
        check(sio.transport() == 'websocket', 'transport=%s' % sio.transport())
        check(got_auth.wait(TIMEOUT), 'received "auth" on connect')

        answer = sio.call('message-with-ack', {'text': 'héllo 🌍', 'n': [1, 2, 3]}, timeout=TIMEOUT)
        check(answer == {'text': 'héllo 🌍', 'n': [1, 2, 3]}, 'ack answer %r' % (answer,))

        sio.emit('message', ('from python', 42))
        check(got_back.wait(TIMEOUT) and backs == [['from python', 42]],
              'message-back %r' % (backs,))
    finally:
        sio.disconnect()

    if failures:
        print('python client: %d check(s) failed' % len(failures), flush=True)
        return 1
    print('python client: all checks passed', flush=True)
    return 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        print('usage: python_client.py URL', file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(main(sys.argv[1]))
    except Exception as e:  # a connection error is a failure, not a traceback
        print('FAIL %s: %s' % (type(e).__name__, e), flush=True)
        sys.exit(1)
