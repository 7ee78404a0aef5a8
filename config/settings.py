"""One settings module; behaviour changes through environment variables (see README, "Settings")."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local, git-ignored .env (written by `make`, with a freshly generated development key) feeds the environment.
# Real environment variables win over it.
ENV_FILE = Path(environ.Env().str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.exists():
    env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY")  # no literal fallback: production refuses to start without one
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / ReDoc files served locally: no CDN
    "django_tasks",
    "django_tasks_db",
    "axes",  # login throttling: failed sign-ins per user name and per client address lock for a while
    "annotation",
    "rlhf",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "annotation.api.middleware.ApiErrorMiddleware",  # under /api/, every error is JSON with a stable code
    "axes.middleware.AxesMiddleware",  # last: answers a locked-out sign-in with the lockout response
]

# Login throttling (django-axes): slow down (below), then after LOGIN_FAILURE_LIMIT failed sign-ins for one user
# name, or from one client address, further attempts from it are refused for LOGIN_LOCKOUT_MINUTES (the lock lifts
# by itself; an admin can lift it sooner with `manage.py axes_reset`). The API token endpoint uses the same backend.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "annotation.auth.lockout_response"
# Slow down before the lock: from LOGIN_SLOWDOWN_AFTER failures, the next attempt waits LOGIN_SLOWDOWN_SECONDS,
# doubling with each further failure (annotation/auth.py); 0 turns the slow-down off. An attempt refused while
# waiting (or locked) is not counted, so waiting it out is all a person who mistyped needs to do.
AXES_HANDLER = "annotation.auth.SlowdownAxesHandler"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
LOGIN_SLOWDOWN_AFTER = env.int("LOGIN_SLOWDOWN_AFTER", default=2)
LOGIN_SLOWDOWN_SECONDS = env.float("LOGIN_SLOWDOWN_SECONDS", default=1.0)
# Behind a proxy, set AXES_IPWARE_META_PRECEDENCE_ORDER (e.g. HTTP_X_FORWARDED_FOR) so the client address is right.

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE: every atomic block takes SQLite's write lock up front, so the read-check-write of assignment and
    # submission is serialised (no "database is locked" upgrades mid-transaction). WAL lets readers run meanwhile.
    DATABASES["default"]["ENGINE"] = "config.sqlite_backend"  # SQLite plus a fair queue for writers (see there)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotation:project-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

# Uploaded import files: refuse anything larger than this (bytes) before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=200 * 1024 * 1024)
# After each batch of an import (100 prompts) it pauses this many times as long as the batch took, so labelers get
# the database and the CPU in between (0: write back to back). See annotation/services/imports.py.
IMPORT_PAUSE_RATIO = env.float("IMPORT_PAUSE_RATIO", default=1.0)
# Prompt hygiene: how phone numbers written without a country code are read (an ISO 3166 region, e.g. GB or DE).
HYGIENE_PHONE_REGION = env("HYGIENE_PHONE_REGION", default="US")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "annotation.api.authentication.TrackedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "annotation.api.parsers.StrictJSONParser",  # 400, not 500, for deep nesting and unstorable strings
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Preference annotation & RLHF platform API",
    "DESCRIPTION": "Projects, prompt import, labeling queue, rankings, progress, agreement, exports and training runs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No validator badge: Swagger UI would load it from validator.swagger.io on any host but localhost.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "MembershipRoleEnum": "annotation.models.Membership.Role",
        "ProjectRoleEnum": ["admin", "manager", "labeler"],
        "TrainingRunKindEnum": "rlhf.models.TrainingRun.Kind",
        "ProjectKindEnum": "annotation.models.Project.Kind",
        "OverlapModeEnum": ["fixed", "adaptive"],
        "WritingModeEnum": ["off", "prompts", "red_team"],
        "PiiPolicyEnum": ["redact", "refuse", "off"],
        "ImportRefusalsEnum": ["all_or_nothing", "per_line"],
    },
}

# Background jobs in the database (django-tasks-db), FIFO per queue: "gpu" takes the training runs, "default" the
# jobs on a finished run (scoring, generation). `rlhf_worker` serves both unless told `--queue` (docs/deploy.md).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "gpu"]}}

# Local model directories (besides this project's run directories) that managers may name as a run's base model or
# policy; anything else they type must be a run ('run:ID') or a model id. Admins are not limited.
RLHF_ALLOWED_MODEL_DIRS = env.list("RLHF_ALLOWED_MODEL_DIRS", default=[])

# Labeling defaults (per project overridable).
ANNOTATION_DEFAULT_LEASE_MINUTES = env.int("ANNOTATION_DEFAULT_LEASE_MINUTES", default=30)

# Production hardening: on unless DJANGO_DEBUG is set (see `manage.py check --deploy`).
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
