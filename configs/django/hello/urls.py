from django.urls import path

from . import views

urlpatterns = [
    path("", views.hello),
    path("healthz", views.healthz),
    path("cache/", views.cache_hits),
    path("echo/", views.echo),
    path("tasks/add/", views.enqueue_add),
    path("tasks/<str:task_id>/", views.task_result),
]
