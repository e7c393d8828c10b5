"""Komu's one settings module.

Every production behaviour is switched by an environment variable (KOMU_*). Without any, Komu runs as the
embedded trial: SQLite under var/, a generated secret key and key file under var/, DEBUG on, loopback only.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from komu.ops.logs import logging_config as _ops_logging

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent
# Tests never touch the trial install's database or keys: they get their own folder unless told otherwise.
_DEFAULT_VAR = PROJECT_DIR / "var" / ("test" if "pytest" in sys.modules else "")
VAR_DIR = Path(os.environ.get("KOMU_VAR_DIR", _DEFAULT_VAR))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _development_secret_key() -> str:
    # A trial install keeps its own random key in var/, readable only by the owner; production sets KOMU_SECRET_KEY.
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


DEBUG = _env_bool("KOMU_DEBUG", "KOMU_SECRET_KEY" not in os.environ)
SECRET_KEY = os.environ.get("KOMU_SECRET_KEY") or _development_secret_key()
ALLOWED_HOSTS = _env_list("KOMU_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = _env_list("KOMU_CSRF_TRUSTED_ORIGINS", [])

# Encryption keys live outside the database and its backups (domain.md §6): one Tink keyset file per install.
KOMU_KEY_FILE = Path(os.environ.get("KOMU_KEY_FILE", VAR_DIR / "keys" / "komu-keys.json"))
# A trial install creates the key file on first use; production refuses to start without one (see security.keys).
KOMU_CREATE_KEY_FILE = _env_bool("KOMU_CREATE_KEY_FILE", DEBUG)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "axes",
    "django_tasks",
    "django_tasks_db",
    # Serves the API docs' Swagger UI from our own static files instead of a CDN (no third-party requests).
    "ninja",
    "komu.core",
    "komu.security",
    "komu.audit",
    "komu.accounts",
    "komu.directory",
    "komu.students",
    "komu.approvals",
    "komu.rosters",
    "komu.oneroster",
    "komu.attendance",
    "komu.surveys",
    "komu.notices",
    "komu.progress",
    "komu.web",
    "komu.api",
    "komu.demo",
    "komu.ops",
    "komu.trips",
    "komu.disclosures",
    "komu.privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "komu.audit.middleware.RequestContextMiddleware",
    "komu.ops.middleware.OpsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "komu.accounts.middleware.IdleSessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "komu.accounts.middleware.MfaRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    # Last: runs the view itself, in one transaction with the idempotency key it carries (komu.ops.idempotency).
    "komu.ops.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "komu.urls"
WSGI_APPLICATION = "komu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "komu.web.context_processors.shell",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("KOMU_DATABASE_URL", f"sqlite:///{VAR_DIR / 'komu.sqlite3'}"),
        conn_max_age=int(os.environ.get("KOMU_DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            # WAL and a busy timeout let the web process and the task worker share one file.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    VAR_DIR.mkdir(parents=True, exist_ok=True)
# A streaming-replication standby for read-only dashboards and reports (komu.ops.routing); unset: one database.
if os.environ.get("KOMU_REPLICA_DATABASE_URL"):
    DATABASES["replica"] = dj_database_url.parse(os.environ["KOMU_REPLICA_DATABASE_URL"], conn_health_checks=True,
                                                 conn_max_age=int(os.environ.get("KOMU_DB_CONN_MAX_AGE", "0")))
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["komu.ops.routing.StandbyRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Lock out by username + client address with a cool-off, never by address alone: a whole school shares one address.
AXES_FAILURE_LIMIT = int(os.environ.get("KOMU_LOCKOUT_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("KOMU_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_VERBOSE = False

# Sessions end after inactivity: every request renews the cookie, so the age is the idle limit.
SESSION_COOKIE_AGE = int(os.environ.get("KOMU_SESSION_IDLE_SECONDS", str(30 * 60)))
# Renewed by komu.accounts.middleware.IdleSessionMiddleware at most once a minute, not on every request.
SESSION_SAVE_EVERY_REQUEST = False
KOMU_SESSION_REFRESH_SECONDS = int(os.environ.get("KOMU_SESSION_REFRESH_SECONDS", "60"))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Re-authentication (step-up) is valid this long for sensitive account changes.
KOMU_REAUTH_SECONDS = 5 * 60

OTP_TOTP_ISSUER = "Komu"
OTP_WEBAUTHN_RP_ID = os.environ.get("KOMU_WEBAUTHN_RP_ID", "localhost")
OTP_WEBAUTHN_RP_NAME = "校務 Komu"
OTP_WEBAUTHN_ALLOWED_ORIGINS = _env_list(
    "KOMU_WEBAUTHN_ORIGINS", ["http://localhost:8000"]
)

if not DEBUG:
    SECURE_SSL_REDIRECT = _env_bool("KOMU_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("KOMU_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = _env_bool("KOMU_HSTS_PRELOAD", False)
# The load balancer's probes, the operator's checks and Prometheus reach an app server directly over plain HTTP
# (docs/deployment.md, "Services"; docs/operations.md, "Monitoring"): these answer there instead of redirecting to
# an https:// URL on the app server's own address, where nothing listens. They carry no session or form.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS: list[str] = [] if DEBUG or _env_bool("KOMU_HSTS_PRELOAD", False) else ["security.W021"]

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", "日本語"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Tokyo"
USE_TZ = True

STATIC_URL = "static/"
# komu/static holds the shared CSS/JS and vendored assets; the package itself is not an app, so name it here.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("KOMU_STATIC_ROOT", VAR_DIR / "static"))
MEDIA_ROOT = Path(os.environ.get("KOMU_MEDIA_ROOT", VAR_DIR / "media"))

# Attachments (komu.security.blobs): encrypted files under random names, either in a folder
# (KOMU_STORAGE=filesystem, under KOMU_MEDIA_ROOT) or in an S3-compatible bucket (KOMU_STORAGE=s3). The key file
# never goes there: it stays on its own volume (docs/deployment.md). `komu check --deploy` checks this setup.
KOMU_STORAGE = os.environ.get("KOMU_STORAGE", "filesystem").strip().lower()
KOMU_S3_BUCKET = os.environ.get("KOMU_S3_BUCKET", "")
KOMU_S3_ENDPOINT_URL = os.environ.get("KOMU_S3_ENDPOINT_URL", "")
if KOMU_STORAGE == "s3":
    _ATTACHMENTS: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": KOMU_S3_BUCKET,
            "endpoint_url": KOMU_S3_ENDPOINT_URL or None,
            "region_name": os.environ.get("KOMU_S3_REGION") or None,
            # Without these boto3 looks for credentials itself (instance role, AWS_* variables, ~/.aws).
            "access_key": os.environ.get("KOMU_S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("KOMU_S3_SECRET_ACCESS_KEY") or None,
            "location": os.environ.get("KOMU_S3_PREFIX", ""),
            "addressing_style": os.environ.get("KOMU_S3_ADDRESSING_STYLE") or None,
            # No ACL header: new AWS buckets refuse object ACLs (bucket owner enforced), and objects are never
            # served from the bucket anyway — Komu decrypts and streams them itself (block public access).
            "default_acl": None,
        },
    }
elif KOMU_STORAGE == "filesystem":
    _ATTACHMENTS = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700},
    }
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"KOMU_STORAGE={KOMU_STORAGE!r}: filesystem か s3 を指定してください。")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": _ATTACHMENTS,
}

EMAIL_BACKEND = os.environ.get("KOMU_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("KOMU_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("KOMU_EMAIL_PORT", "25"))
# A relay that asks for a login: STARTTLS on 587 (KOMU_EMAIL_USE_TLS) or TLS from the start on 465 (…_USE_SSL).
EMAIL_HOST_USER = os.environ.get("KOMU_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("KOMU_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("KOMU_EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _env_bool("KOMU_EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("KOMU_EMAIL_TIMEOUT", "30"))
DEFAULT_FROM_EMAIL = os.environ.get("KOMU_FROM_EMAIL", "komu@localhost")
# The public address (https://komu.example-city.lg.jp): links in e-mails (notifications, reminders) are made
# absolute with it. Unset, they are bare paths such as /notices/inbox/, which a mail program cannot open.
KOMU_BASE_URL = os.environ.get("KOMU_BASE_URL", "")

# Optional tuning from komu.env; unset, the code that reads them uses its own default.
if os.environ.get("KOMU_APPROVAL_REMIND_DAYS"):  # days before approvers are reminded by e-mail (default 3)
    KOMU_APPROVAL_REMIND_DAYS = int(os.environ["KOMU_APPROVAL_REMIND_DAYS"])
if os.environ.get("KOMU_NOTICE_ATTACHMENT_MAX_BYTES"):  # largest attachment of a notice or letter (default 10 MB)
    KOMU_NOTICE_ATTACHMENT_MAX_BYTES = int(os.environ["KOMU_NOTICE_ATTACHMENT_MAX_BYTES"])
if os.environ.get("KOMU_PDF_FONT_FILES"):  # extra .ttf fonts for PDFs, colon-separated, tried first
    KOMU_PDF_FONT_FILES = [p for p in os.environ["KOMU_PDF_FONT_FILES"].split(":") if p]

TASKS = {"default": {"BACKEND": os.environ.get("KOMU_TASK_BACKEND", "django_tasks_db.DatabaseBackend")}}
# Shared by the web process and the task worker (e.g. an import's progress while its transaction is open): files
# under var/ for a trial or one server; KOMU_CACHE_URL=redis://… (needs the redis package) for several servers.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["KOMU_CACHE_URL"]}
    if os.environ.get("KOMU_CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}
}

# KOMU_LOG_FORMAT=json: one JSON object per line with the request id, never personal data (komu.ops.logs).
LOGGING = _ops_logging(fmt=os.environ.get("KOMU_LOG_FORMAT", "text"), level=os.environ.get("KOMU_LOG_LEVEL", "INFO"))
# /metrics answers loopback, these networks (CIDR, comma-separated) and KOMU_METRICS_TOKEN bearers.
KOMU_METRICS_ALLOWED_NETWORKS = _env_list("KOMU_METRICS_ALLOWED_NETWORKS", [])
