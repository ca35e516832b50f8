"""moto's server (DynamoDB) for wasikv's tests, applying one request at a time.

moto serves each request on its own thread and applies an UpdateItem as an
unlocked read-modify-write in Python, so two concurrent `ADD`s to one item
can lose one (seen here with moto 5.2.5: 3,999 of 4,000 concurrent
increments). DynamoDB serialises the writes to an item. A lock around the
application gives the tests that guarantee; it serialises more than
DynamoDB does (every request, not each item's), which no test relies on.

    python moto_serial.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

app = DomainDispatcherApplication(create_backend_app)
app.debug = True  # as moto_server sets it
lock = threading.Lock()


def serial(environ, start_response):
    with lock:
        # The whole response is produced under the lock.
        return list(app(environ, start_response))


if __name__ == "__main__":
    run_simple(
        sys.argv[1],
        int(sys.argv[2]),
        serial,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
