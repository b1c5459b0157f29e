"""The celery app: broker and result backend come from Django's settings
(CELERY_* names), which take them from the environment."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hello.settings")

app = Celery("hello")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["hello"])
