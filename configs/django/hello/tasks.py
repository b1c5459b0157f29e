import os

from celery import shared_task


@shared_task
def add(x, y):
    """The example task: the sum, and which worker process computed it."""
    return {"sum": x + y, "worker_pid": os.getpid()}
