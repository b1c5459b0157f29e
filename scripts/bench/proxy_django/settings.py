# Minimal Django project for scripts/bench/proxy.sh: one hello view, no
# database. The middleware is the part of `django-admin startproject`'s
# list that needs no database; CommonMiddleware also sets Content-Length,
# as it does in real projects.
SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "urls"
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES = {}
USE_TZ = True
