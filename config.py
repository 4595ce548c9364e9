"""Configuration classes, read from environment variables.

With nothing set the service runs on SQLite under ``instance/`` and a Celery broker that needs
no server (kombu's SQLAlchemy transport on a SQLite file).  ``DATABASE_URL`` and ``REDIS_URL``
move it to PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent
# One configuration for web, worker, beat, Flower and the CLI: every one of them imports this
# module, so settings in .env (KEY=value lines; see .env.example) reach them all. Variables
# already in the environment win. ENV_FILE names another file (the tests point it elsewhere).
ENV_FILE = Path(os.environ.get("ENV_FILE") or BASE_DIR / ".env")
load_dotenv(ENV_FILE, override=False)
INSTANCE_DIR = Path(os.environ.get("INSTANCE_PATH", BASE_DIR / "instance"))

DEV_SECRET_KEY = "dev-secret-key-change-me-0123456789abcdef"
# A valid Fernet key that is public on purpose: development only, refused in production.
DEV_ENCRYPTION_KEY = "ZGV2LWVuY3J5cHRpb24ta2V5LWNoYW5nZS1tZS0wMDA="


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def normalize_database_url(url: str) -> str:
    # Heroku-style URLs name the old driver; psycopg 3 is the one installed.
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


# Every queue the service routes tasks to. A worker started without -Q consumes all of them
# (Celery's task_queues); `-Q` still picks a subset for a split deployment.
SERVICE_QUEUES = ("short", "sync")


def worker_pool(redis_url: str | None) -> str:
    """Celery's pool (WORKER_POOL): threads with Redis, where syncs (I/O-bound: they wait on
    WordPress) run hundreds per process; the embedded SQLite setup keeps two prefork processes
    (SQLite takes one writer at a time, so more threads would only wait on its lock)."""
    return os.environ.get("WORKER_POOL") or ("threads" if redis_url else "prefork")


def worker_concurrency(redis_url: str | None) -> int:
    """Tasks one worker process runs at once (WORKER_CONCURRENCY, or the worker's -c)."""
    return int(os.environ.get("WORKER_CONCURRENCY") or (200 if redis_url else 2))


def database_pool_options(database_url: str, concurrency: int) -> dict[str, Any]:
    """Connection pool bounds per process. A sync holds a connection only while it reads or
    writes (the runner ends its transaction before waiting on WordPress), so a process running
    200 syncs needs ~10, not 200: one per 20 tasks, at least 5 and at most 20, as many again in
    overflow (DATABASE_POOL_SIZE / DATABASE_MAX_OVERFLOW override). SQLite keeps its defaults."""
    if not database_url.startswith("postgresql"):
        return {}
    size = int(os.environ.get("DATABASE_POOL_SIZE") or min(20, max(5, -(-concurrency // 20))))
    return {
        "pool_size": size,
        "max_overflow": int(os.environ.get("DATABASE_MAX_OVERFLOW") or size),
        "pool_timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "30")),
    }


def celery_settings(redis_url: str | None, instance_dir: Path) -> dict:
    scheduler_tick = float(os.environ.get("SCHEDULER_TICK_SECONDS", "5"))
    if redis_url:
        broker_url = redis_url
        result_backend = redis_url
        # Unacked jobs of a worker that died are redelivered after this many seconds...
        visibility_timeout = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
        transport_options: dict = {
            "visibility_timeout": visibility_timeout,
            # ...by a sweep every live worker runs. kombu's default only scans on every 10th
            # 10 s tick (100 s apart), so a job whose worker died could wait 100 s past its
            # timeout; one ZRANGE per worker every <=10 s costs Redis nothing.
            "unacked_restore_interval": max(1, min(10, visibility_timeout)),
            "unacked_restore_throttle": 1,
        }
    else:
        broker_url = f"sqla+sqlite:///{instance_dir / 'celery-broker.sqlite'}"
        result_backend = f"db+sqlite:///{instance_dir / 'celery-results.sqlite'}"
        # Empty: kombu's SQLAlchemy transport hands every option to create_engine(), which
        # refuses unknown ones such as polling_interval (publishing then fails with TypeError).
        transport_options = {}
    return {
        "broker_url": broker_url,
        "result_backend": result_backend,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        # A worker (and beat) waits out a broker outage of any length, reconnecting every
        # BROKER_RECONNECT_INTERVAL_MAX seconds (workers/consumer.py), instead of exiting after
        # Celery's default 100 attempts.
        "broker_connection_max_retries": None,
        "worker_consumer": "workers.consumer:Consumer",
        # The task queues are bound to the default exchange (""): a message is routed by its
        # queue's name alone, with no binding read from Redis. With named exchanges, a Redis
        # that restarted empty (kill -9, no persistence) has lost the bindings the workers
        # declared, and until every worker reconnects and declares them again kombu drops the
        # tasks the API publishes ("no queues bound"), leaving their jobs queued for good.
        "task_queues": [Queue(name, Exchange(""), routing_key=name) for name in SERVICE_QUEUES],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Task events (sent, received, started, succeeded: one PUBLISH each per job) are what
        # Flower shows. CELERY_TASK_EVENTS=0 saves those four commands per job, a fifth of a
        # no-change sync's Redis commands, where nobody watches Flower.
        "worker_send_task_events": _env_bool("CELERY_TASK_EVENTS", True),
        "task_send_sent_event": _env_bool("CELERY_TASK_EVENTS", True),
        "task_track_started": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "short",
        # Threads: a sync is I/O-bound (it waits on WordPress), so one process runs hundreds at
        # once (WORKER_CONCURRENCY) for the memory of one. `--pool prefork` stays available for
        # CPU-heavy work (README "Running workers"). The threads pool enforces no task time
        # limits: every WordPress request has its own timeouts and a pull stops after its slice.
        "worker_pool": worker_pool(redis_url),
        "worker_concurrency": worker_concurrency(redis_url),
        "task_routes": {
            "integration.sync": {"queue": "sync"},
            "integration.*": {"queue": "short"},
        },
        # celery beat (`celery -A celery_app beat`) runs the schedule dispatcher every few seconds;
        # a tick not taken within one period is dropped (the next one does the same work).
        "beat_schedule": {
            "dispatch-due-syncs": {
                "task": "integration.dispatch_due_syncs",
                "schedule": scheduler_tick,
                "options": {"expires": scheduler_tick},
            }
        },
        "beat_schedule_filename": str(instance_dir / "celerybeat-schedule"),
        "task_time_limit": int(os.environ.get("SYNC_TASK_TIME_LIMIT", "3600")),
        "task_soft_time_limit": int(os.environ.get("SYNC_TASK_SOFT_TIME_LIMIT", "3300")),
    }


class Config:
    ENV_NAME = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    # Comma-separated Fernet keys: the first encrypts, every one decrypts (rotation).
    ENCRYPTION_KEYS = os.environ.get("ENCRYPTION_KEYS", DEV_ENCRYPTION_KEY)

    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'integration_service.sqlite'}")
    )
    # No pre-ping: it costs a round trip on every checkout. A pooled connection the server closed
    # (a PostgreSQL restart, a proxy timeout) is found by a poll() of its socket at checkout and
    # replaced before use (integration_service/dbpool.py), and connections are recycled before
    # PostgreSQL or a proxy drops idle ones. While the database is unreachable every request that
    # needs it answers 503 database_unavailable with Retry-After (errors.py).
    REDIS_URL = os.environ.get("REDIS_URL") or None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {
        "pool_pre_ping": False,
        "pool_recycle": int(os.environ.get("DATABASE_POOL_RECYCLE_SECONDS", "1800")),
        **database_pool_options(SQLALCHEMY_DATABASE_URI, worker_concurrency(REDIS_URL)),
    }
    # The checkout poll above (off only to measure it: bench/pool_checkout.py, scripts/bench.sh).
    DATABASE_POOL_LIVENESS_CHECK = _env_bool("DATABASE_POOL_LIVENESS_CHECK", True)

    CELERY = celery_settings(REDIS_URL, INSTANCE_DIR)

    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(1024 * 1024)))
    # Deeper JSON bodies are a 400 (serialization.ServiceJSONProvider); no contract body nests past ~6.
    JSON_MAX_DEPTH = int(os.environ.get("JSON_MAX_DEPTH", "64"))
    ACCESS_TOKEN_TTL_SECONDS = int(os.environ.get("ACCESS_TOKEN_TTL_SECONDS", "3600"))
    JWT_ISSUER = "integration-service"

    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    # Short timeouts: a Redis that hangs must not hold requests. While it is unreachable the
    # limits are counted in each process's memory (ratelimit.py), and Redis is tried again
    # this often.
    RATELIMIT_STORAGE_OPTIONS: dict = {"socket_timeout": 1, "socket_connect_timeout": 1}
    RATELIMIT_STORAGE_RETRY_SECONDS = float(os.environ.get("RATELIMIT_STORAGE_RETRY_SECONDS", "5"))
    RATELIMIT_INTEGRATION = os.environ.get("RATELIMIT_INTEGRATION", "300/minute")
    RATELIMIT_ONBOARDING_IP = os.environ.get("RATELIMIT_ONBOARDING_IP", "20/minute")
    RATELIMIT_ONBOARDING_SITE = os.environ.get("RATELIMIT_ONBOARDING_SITE", "10/minute")
    RATELIMIT_AUTH = os.environ.get("RATELIMIT_AUTH", "30/minute")
    RATELIMIT_HEADERS_ENABLED = True
    # Fixed window, one Redis round trip per limit and request, headers included (ratelimit.py).
    RATELIMIT_STRATEGY = "fixed-window-one-trip"
    RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)

    # Browser frontends on other origins (comma-separated, e.g. https://app.example.com; "*" for
    # any origin). Unset: no CORS headers at all. Never with credentials: callers authenticate
    # with headers (a token or a site key), not cookies (integration_service/cors.py).
    CORS_ORIGINS = _csv(os.environ.get("CORS_ORIGINS", ""))
    CORS_MAX_AGE_SECONDS = int(os.environ.get("CORS_MAX_AGE_SECONDS", "600"))

    # Outbound calls to customer sites.
    ALLOW_PRIVATE_TARGETS = _env_bool("ALLOW_PRIVATE_TARGETS", True)
    WP_CONNECT_TIMEOUT = float(os.environ.get("WP_CONNECT_TIMEOUT", "5"))
    WP_READ_TIMEOUT = float(os.environ.get("WP_READ_TIMEOUT", "30"))
    WP_MAX_RETRIES = int(os.environ.get("WP_MAX_RETRIES", "3"))
    WP_MAX_RESPONSE_BYTES = int(os.environ.get("WP_MAX_RESPONSE_BYTES", str(20 * 1024 * 1024)))
    # A longer Retry-After is not slept through: the call fails as transient (retry_after set).
    WP_MAX_RETRY_WAIT = float(os.environ.get("WP_MAX_RETRY_WAIT", "30"))
    # Politeness (platforms/politeness.py), shared through REDIS_URL by every worker: at most this
    # many requests in flight to one site (host:port) ...
    WP_CONCURRENCY = int(os.environ.get("WP_CONCURRENCY", "4"))
    # ... and at most this many requests per minute to it (0: no budget).
    WP_REQUEST_BUDGET_PER_MINUTE = int(os.environ.get("WP_REQUEST_BUDGET_PER_MINUTE", "0"))
    # The longest a request waits for its turn (slot, budget, a site's Retry-After) before it
    # fails as transient and the job retries later.  A waiting job still heartbeats (from its
    # SYNC_HEARTBEAT_SECONDS thread), so this need not stay below SYNC_STUCK_AFTER_SECONDS.
    WP_SLOT_WAIT_SECONDS = float(os.environ.get("WP_SLOT_WAIT_SECONDS", "30"))
    # A slot's lease, renewed every third of it while the request runs: a killed worker's slot
    # frees itself after at most this long.
    WP_SLOT_LEASE_SECONDS = float(os.environ.get("WP_SLOT_LEASE_SECONDS", "15"))
    # Images a publish uploads to a site's media library (sync/media.py): at most this many bytes
    # per image (streamed to a temp file, never held whole in memory), fetched within this total
    # time, and a media lock waited for at most this long before the job retries later.
    MEDIA_MAX_BYTES = int(os.environ.get("MEDIA_MAX_BYTES", str(20 * 1024 * 1024)))
    MEDIA_FETCH_TIMEOUT_SECONDS = float(os.environ.get("MEDIA_FETCH_TIMEOUT_SECONDS", "60"))
    MEDIA_LOCK_WAIT_SECONDS = float(os.environ.get("MEDIA_LOCK_WAIT_SECONDS", "30"))
    # A site's REST root, post types and taxonomies are remembered this long between syncs
    # (platforms/wordpress/site_cache.py; in REDIS_URL, shared by every worker; 0: never), and
    # dropped everywhere by a structure push, a metadata sync, a reconcile or a 404. Several
    # sync intervals long (6 h against the usual 15 minutes): a TTL of one interval lapsed just
    # before most syncs, which then asked the site three more times. A site without the
    # companion plugin (no structure push) shows a new post type within that long.
    WP_STRUCTURE_CACHE_SECONDS = float(os.environ.get("WP_STRUCTURE_CACHE_SECONDS", "21600"))
    # The whole synchronous connection test (every request, retry and wait) shares this budget;
    # it must stay well under the web server's worker timeout (gunicorn.conf.py: 30 s), or the
    # worker is killed mid-test and the client gets no JSON answer.
    CONNECTION_TEST_DEADLINE_SECONDS = float(os.environ.get("CONNECTION_TEST_DEADLINE_SECONDS", "15"))

    # A running job heartbeats from a thread this often (0: only with its progress reports)...
    SYNC_HEARTBEAT_SECONDS = float(os.environ.get("SYNC_HEARTBEAT_SECONDS", "10"))
    # ...and without a heartbeat for this long (six missed beats) its worker is considered dead.
    SYNC_STUCK_AFTER_SECONDS = int(os.environ.get("SYNC_STUCK_AFTER_SECONDS", "60"))
    # A dead sync is resumed from its checkpoint this many times before it is marked failed.
    SYNC_MAX_RESUMES = int(os.environ.get("SYNC_MAX_RESUMES", "3"))
    # Fairness: a pull stores at most this many pages per task run, then re-enqueues itself
    # behind the waiting jobs and goes on from its checkpoint (0: no slices).
    SYNC_SLICE_PAGES = int(os.environ.get("SYNC_SLICE_PAGES", "50"))
    # Transient errors stop being retried once this long has passed since the first one.
    SYNC_RETRY_MAX_TOTAL_SECONDS = float(os.environ.get("SYNC_RETRY_MAX_TOTAL_SECONDS", "300"))
    # A job still queued after this long never reached a worker: it is failed so it stops blocking.
    SYNC_QUEUED_STUCK_AFTER_SECONDS = int(os.environ.get("SYNC_QUEUED_STUCK_AFTER_SECONDS", "3600"))
    SYNC_MAX_RETRIES = int(os.environ.get("SYNC_MAX_RETRIES", "3"))
    SYNC_RETRY_BACKOFF_SECONDS = float(os.environ.get("SYNC_RETRY_BACKOFF_SECONDS", "10"))
    SYNC_RETRY_BACKOFF_MAX_SECONDS = float(os.environ.get("SYNC_RETRY_BACKOFF_MAX_SECONDS", "600"))
    # Incremental pulls re-read this much before the last high-water mark (clock skew, same-second edits).
    SYNC_PULL_OVERLAP_SECONDS = int(os.environ.get("SYNC_PULL_OVERLAP_SECONDS", "120"))
    # Workers sweep stuck jobs and prune old webhook delivery ids in-process this often (0: never).
    SYNC_RECOVERY_INTERVAL_SECONDS = float(os.environ.get("SYNC_RECOVERY_INTERVAL_SECONDS", "15"))
    WEBHOOK_PRUNE_INTERVAL_SECONDS = float(os.environ.get("WEBHOOK_PRUNE_INTERVAL_SECONDS", "3600"))
    RATELIMIT_WEBHOOKS = os.environ.get("RATELIMIT_WEBHOOKS", "1200/minute")
    WEBHOOK_MAX_BODY_BYTES = int(os.environ.get("WEBHOOK_MAX_BODY_BYTES", str(64 * 1024)))

    # Schedules (integration_service/sync/schedule.py); the tick itself is in CELERY beat_schedule.
    # Integrations claimed per tick: small so a tick stays well under 100 ms (~20 ms + ~1 ms per
    # job, bench/fleet.py); a full batch chains the next tick at once, so a backlog still drains
    # at ~750-950 jobs/s per dispatcher.
    SCHEDULER_BATCH_SIZE = int(os.environ.get("SCHEDULER_BATCH_SIZE", "40"))
    SCHEDULE_JITTER_RATIO = float(os.environ.get("SCHEDULE_JITTER_RATIO", "0.1"))  # interval ± 10 %
    SCHEDULE_BACKOFF_MAX_SECONDS = float(os.environ.get("SCHEDULE_BACKOFF_MAX_SECONDS", str(6 * 3600)))
    SCHEDULE_RECONCILE_INTERVAL_MINUTES = float(os.environ.get("SCHEDULE_RECONCILE_INTERVAL_MINUTES", str(24 * 60)))
    # Scheduled runs pull WordPress changes; pushes follow platform edits (manual "both" syncs).
    SCHEDULE_SYNC_DIRECTION = os.environ.get("SCHEDULE_SYNC_DIRECTION", "from_external")

    # GET /metrics: a bearer token for scrapers (unset: open in development, 404 in production);
    # counters recorded by every process live in this Redis (unset: in the recording process).
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
    METRICS_REDIS_URL = os.environ.get("METRICS_REDIS_URL") or REDIS_URL
    # Request-path counters (webhook deliveries) are summed per process and sent this often.
    METRICS_FLUSH_SECONDS = float(os.environ.get("METRICS_FLUSH_SECONDS", "1"))
    # Delivery ids are kept this long to answer replays; the plugin retries for 24 hours.
    WEBHOOK_DEDUPE_RETENTION_HOURS = int(os.environ.get("WEBHOOK_DEDUPE_RETENTION_HOURS", "72"))

    API_TITLE = "Integration Service"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    # Swagger UI's files come from the service (api/docs.py, package swagger-ui-bundle), not a CDN.
    OPENAPI_SWAGGER_UI_URL = "/api/v1/docs/assets/"
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    # Number of trusted reverse proxies in front of the app (X-Forwarded-For/-Proto/-Host);
    # client IPs for rate limits and page links come from there when set.
    PROXY_FIX_HOPS = int(os.environ.get("PROXY_FIX_HOPS", "0"))
    PASSWORD_HASH_METHOD = "scrypt"


class DevelopmentConfig(Config):
    pass


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-0123456789abcdef0123456789"
    SQLALCHEMY_DATABASE_URI = normalize_database_url(os.environ.get("TEST_DATABASE_URL", "sqlite://"))
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"
    CELERY = {
        **Config.CELERY,
        "broker_url": "memory://",
        "result_backend": "cache+memory://",
        "task_always_eager": True,
        "task_eager_propagates": True,
    }
    ALLOW_PRIVATE_TARGETS = True
    METRICS_REDIS_URL = None  # per-process values; tests/test_metrics.py points it at TEST_REDIS_URL
    WP_MAX_RETRIES = 2
    SYNC_MAX_RETRIES = 2
    # SQLite in memory is one connection: no second thread writes heartbeats in unit tests.
    SYNC_HEARTBEAT_SECONDS = float(os.environ.get("SYNC_HEARTBEAT_SECONDS", "0"))
    # Cheap hashing keeps the suite fast; production uses werkzeug's scrypt default.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"


class ProductionConfig(Config):
    ENV_NAME = "production"
    ALLOW_PRIVATE_TARGETS = _env_bool("ALLOW_PRIVATE_TARGETS", False)

    @classmethod
    def validate(cls, settings: Mapping[str, Any] | None = None) -> None:
        """Refuse the development secrets; ``settings`` is the app's effective config."""
        settings = settings or {}
        secret_key = settings.get("SECRET_KEY", cls.SECRET_KEY) or ""
        encryption_keys = settings.get("ENCRYPTION_KEYS", cls.ENCRYPTION_KEYS) or ""
        problems = []
        if secret_key == DEV_SECRET_KEY or len(secret_key) < 32:
            problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
        keys = [key.strip() for key in encryption_keys.split(",") if key.strip()]
        if not keys or DEV_ENCRYPTION_KEY in keys:
            problems.append("ENCRYPTION_KEYS must be set and must not contain the development key")
        if problems:
            raise RuntimeError("Refusing to start in production: " + "; ".join(problems))


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_environment() -> type[Config]:
    name = os.environ.get("APP_ENV", "development").lower()
    try:
        return CONFIGS[name]
    except KeyError as exc:
        raise RuntimeError(f"APP_ENV must be one of {sorted(CONFIGS)}, not {name!r}") from exc
