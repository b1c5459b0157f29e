from django.urls import path

from . import views

urlpatterns = [
    path("", views.hello),
    path("healthz", views.healthz),
    path("cache/", views.cache_hits),
    path("tasks/add/", views.enqueue_add),
    path("tasks/<str:task_id>/", views.task_result),
]
