"""The example site: the seed's "Hello World!" page, plus one view per
service behind it (memcached through Django's cache, rabbitmq and the celery
worker through a task), each answering 503 when its service is down so that
a probe can tell which part is broken."""
import os

from celery.result import AsyncResult
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .tasks import add


@require_GET
def hello(request):
    resp = HttpResponse("Hello World!\n", content_type="text/plain")
    # Which gunicorn master/worker answered: lets the benchmark tell a
    # restarted gunicorn from orphaned workers of a killed one.
    resp["X-Served-By"] = "%s/%d" % (os.environ.get("HELLO_GUNICORN_MASTER", "-"), os.getpid())
    return resp


@require_GET
def healthz(request):
    """Liveness for hostctl's ready probe and health check: answered by a
    worker without touching memcached, rabbitmq or a database, so that it
    fails only when gunicorn itself cannot serve (workers hung, not booted)
    and costs next to nothing every few seconds."""
    return HttpResponse("ok\n", content_type="text/plain")


@require_GET
def cache_hits(request):
    """Counts hits in memcached."""
    try:
        cache.add("hits", 0, timeout=None)
        hits = cache.incr("hits")
    except Exception as e:  # pylibmc raises its own errors when memcached is down
        return JsonResponse({"error": "cache unavailable: %s" % e}, status=503)
    return JsonResponse({"hits": hits})


@csrf_exempt
@require_POST
def echo(request):
    """Answers a POST with the size of its body, touching no other service:
    a form post, which a proxy must not send twice, so it does not retry it
    on another upstream once it was sent (the rolling-restart test posts
    here to see that no request is sent to a gunicorn that is stopping)."""
    return JsonResponse({"received": len(request.body)})


@csrf_exempt
@require_POST
def enqueue_add(request):
    """Enqueues add(x, y) on rabbitmq; answers 202 with the task id."""
    try:
        x, y = int(request.GET.get("x", "2")), int(request.GET.get("y", "3"))
    except ValueError:
        return JsonResponse({"error": "x and y must be integers"}, status=400)
    try:
        r = add.delay(x, y)
    except Exception as e:  # kombu's OperationalError when rabbitmq is down
        return JsonResponse({"error": "broker unavailable: %s" % e}, status=503)
    return JsonResponse({"id": r.id}, status=202)


@require_GET
def task_result(request, task_id):
    """The task's state, and its result once it succeeded (from memcached)."""
    try:
        r = AsyncResult(task_id)
        state = r.state
        body = {"id": task_id, "state": state}
        if state == "SUCCESS":
            body["result"] = r.result
    except Exception as e:
        return JsonResponse({"error": "result backend unavailable: %s" % e}, status=503)
    return JsonResponse(body)
