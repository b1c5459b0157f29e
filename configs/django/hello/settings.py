"""Settings of the hello example: the seed's "Hello World!" site with the
services it runs with (memcached for the cache and celery results,
rabbitmq as celery's broker). No database. Everything that differs between
machines comes from the environment, which configs/webserver.toml sets:

  HELLO_STATIC_ROOT   where collectstatic writes (the proxy serves it at /static/)
  HELLO_MEMCACHED     memcached's host:port
  HELLO_BROKER_URL    rabbitmq's AMQP URL
  HELLO_ALLOWED_HOSTS comma-separated host names (default 127.0.0.1,localhost)
  HELLO_SECRET_KEY    Django's secret key (set it in production)
  HELLO_SECRET_KEY_FILE
                      or a file holding it (read at start; a missing or
                      empty file stops the workers from booting)
"""
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SECRET_KEY = os.environ.get("HELLO_SECRET_KEY", "hello-example-not-secret")
if os.environ.get("HELLO_SECRET_KEY_FILE"):
    with open(os.environ["HELLO_SECRET_KEY_FILE"]) as f:
        SECRET_KEY = f.read().strip()
    if not SECRET_KEY:
        raise ValueError("HELLO_SECRET_KEY_FILE %s is empty" % os.environ["HELLO_SECRET_KEY_FILE"])
DEBUG = False
ALLOWED_HOSTS = os.environ.get("HELLO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "hello",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "hello.urls"
WSGI_APPLICATION = "hello.wsgi.application"
DATABASES = {}
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("HELLO_STATIC_ROOT", "/tmp/hostctl-django/static")

MEMCACHED = os.environ.get("HELLO_MEMCACHED", "127.0.0.1:11211")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
        "LOCATION": MEMCACHED,
        "OPTIONS": {
            # Fail fast while memcached restarts instead of holding a worker.
            "behaviors": {"tcp_nodelay": True, "connect_timeout": 500, "retry_timeout": 1},
        },
    }
}

CELERY_BROKER_URL = os.environ.get("HELLO_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_HEARTBEAT = 10
# Results in memcached: a task enqueued by one gunicorn worker can be read by
# another (rpc:// would deliver it only to the enqueuing process).
CELERY_RESULT_BACKEND = "cache+memcached://%s/" % MEMCACHED
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Publishing while rabbitmq restarts: retry briefly, then the view answers 503.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Errors, with their tracebacks, go to stderr (captured by hostctl), not to
# mail: hostctl's log rules alert on them at a rate (configs/webserver.toml).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
