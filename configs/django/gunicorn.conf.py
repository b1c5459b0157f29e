"""gunicorn settings of the hello example (the same for hostctl and for the
nginx + supervisord comparison). Run from anywhere:

    gunicorn -c configs/django/gunicorn.conf.py

HELLO_GUNICORN_BIND is a unix socket ("unix:/run/hello/gunicorn.sock",
the fast way behind a proxy on the same machine) or host:port."""
import os

chdir = os.path.dirname(os.path.abspath(__file__))
wsgi_app = "hello.wsgi:application"
bind = [os.environ.get("HELLO_GUNICORN_BIND", "unix:/tmp/hostctl-django/gunicorn.sock")]
# Sync workers, one request at a time each; the proxy buffers slow clients.
worker_class = "sync"
workers = int(os.environ.get("HELLO_GUNICORN_WORKERS", "3"))
timeout = 30
# On SIGTERM, workers finish their request within this; hostctl's
# stop_timeout for gunicorn is longer, so a stop is never cut short.
graceful_timeout = 10
# Access logging is the proxy's job; errors go to stderr (captured by the supervisor).
accesslog = None
errorlog = "-"
loglevel = "info"


def post_fork(server, worker):
    # The master's pid, for the X-Served-By header of the hello view
    # (os.getppid() changes once an orphaned worker is reparented).
    os.environ["HELLO_GUNICORN_MASTER"] = str(server.pid)
