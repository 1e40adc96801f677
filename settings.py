"""Herald configuration: every tunable, read once from an environment variable with a default.

Code reads these as ``settings.NAME`` at the moment it needs them, so tests can change one with
``monkeypatch.setattr(settings, "NAME", value)``. ``SETTINGS`` keeps each setting's default and
meaning; ``herald settings`` prints them as the table in the README.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    meaning: str


SETTINGS: dict[str, Setting] = {}


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _setting(name: str, default: Any, meaning: str, cast: Callable[[str], Any] = str) -> Any:
    """Declare a setting and return its value from the environment (empty means default)."""
    SETTINGS[name] = Setting(name, default, meaning)
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as error:
        raise SystemExit(f"settings: {name}={raw!r} is not valid: {error}") from None


def _channel(
    prefix: str, label: str, max_retries: int, min_backoff_ms: int, rate: float = 0
) -> None:
    """Declare a channel's retry and rate settings: <PREFIX>_MAX_RETRIES, _MIN_BACKOFF_MS,
    _MAX_BACKOFF_MS and _RATE_LIMIT_PER_SECOND (0: unlimited), as module globals."""
    values = {
        "MAX_RETRIES": (max_retries, f"Retries after the first {label} attempt", int),
        "MIN_BACKOFF_MS": (min_backoff_ms, f"First {label} retry delay; doubles, with jitter", int),
        "MAX_BACKOFF_MS": (3600000, f"Longest {label} retry delay", int),
        "RATE_LIMIT_PER_SECOND": (
            rate,
            f"{label} sends per second, all workers (0: no limit)",
            float,
        ),
    }
    for suffix, (default, meaning, cast) in values.items():
        globals()[f"{prefix}_{suffix}"] = _setting(f"{prefix}_{suffix}", default, meaning, cast)


# --- storage -------------------------------------------------------------------------------
VAR_DIR = _setting(
    "VAR_DIR", "var", "Directory for local state: SQLite file, embedded Redis, outbox"
)
DATABASE_URL = _setting(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR}/herald.db",
    "sqlite:///path (WAL mode, shared by all processes) or postgresql://user:pass@host/db",
)
DATABASE_POOL_SIZE = _setting(
    "DATABASE_POOL_SIZE", 20, "PostgreSQL connections kept per process (pooled)", int
)
SENDER_CACHE_SECONDS = _setting(
    "SENDER_CACHE_SECONDS",
    5,
    "How long a process trusts what it read of a sender: web, an API key it checked; worker, "
    "a notification's callback URL and secret (changes are seen within this time; 0: always read)",
    float,
)
SQLITE_BUSY_TIMEOUT_MS = _setting(
    "SQLITE_BUSY_TIMEOUT_MS", 10000, "How long a SQLite writer waits for the lock", int
)

# --- broker and Redis ----------------------------------------------------------------------
REDIS_URL = _setting(
    "REDIS_URL", "", "Redis for locks and rate limits; empty: `herald run` starts an embedded one"
)
BROKER_URL = _setting(
    "BROKER_URL", "", "Dramatiq broker: redis://… or amqp://… (RabbitMQ); empty: REDIS_URL"
)
BROKER_TIMEOUT_SECONDS = _setting(
    "BROKER_TIMEOUT_SECONDS",
    3.0,
    "Connect/read timeout when enqueueing; a down broker fails fast",
    float,
)

# --- API -----------------------------------------------------------------------------------
MAX_REQUEST_BYTES = _setting(
    "MAX_REQUEST_BYTES", 1024 * 1024, "Largest request body (413 above)", int
)
MAX_RECIPIENTS_PER_REQUEST = _setting(
    "MAX_RECIPIENTS_PER_REQUEST", 10000, "Most recipients in one POST /v1/notifications", int
)
MAX_IMPORT_BYTES = _setting(
    "MAX_IMPORT_BYTES", 16 * 1024 * 1024, "Largest POST /v1/contacts/import body (413 above)", int
)
MAX_IMPORT_ROWS = _setting("MAX_IMPORT_ROWS", 10000, "Most contacts in one import", int)
IDEMPOTENCY_KEY_MAX_LENGTH = _setting(
    "IDEMPOTENCY_KEY_MAX_LENGTH", 255, "Longest accepted Idempotency-Key header", int
)

# --- templates -------------------------------------------------------------------------------
MAX_ATTRIBUTES_BYTES = _setting(
    "MAX_ATTRIBUTES_BYTES",
    16384,
    "Largest attributes object (shared or per recipient)",
    int,
)
TEMPLATE_MAX_BYTES = _setting(
    "TEMPLATE_MAX_BYTES", 65536, "Largest template part (subject, body or html), in bytes", int
)

# --- email channel -------------------------------------------------------------------------
SMTP_HOST = _setting("SMTP_HOST", "127.0.0.1", "SMTP server host")
SMTP_PORT = _setting("SMTP_PORT", 1025, "SMTP server port (1025: the dev mail catcher)", int)
SMTP_USER = _setting("SMTP_USER", "", "SMTP username; empty: no AUTH")
SMTP_PASSWORD = _setting("SMTP_PASSWORD", "", "SMTP password")
SMTP_TLS = _setting("SMTP_TLS", "none", "none, starttls or ssl")
SMTP_CA_FILE = _setting("SMTP_CA_FILE", "", "Extra CA bundle to trust for SMTP TLS (internal CAs)")
SMTP_TIMEOUT_SECONDS = _setting("SMTP_TIMEOUT_SECONDS", 30.0, "SMTP socket timeout", float)
MAIL_FROM = _setting("MAIL_FROM", "Herald <herald@localhost>", "From header of every email")
_channel("EMAIL", "email", max_retries=8, min_backoff_ms=15000)
MAX_ATTACHMENT_BYTES = _setting(
    "MAX_ATTACHMENT_BYTES",
    10 * 1024 * 1024,
    "Total decoded size of a notification's attachments",
    int,
)
ATTACHMENT_CONTENT_TYPES = _setting(
    "ATTACHMENT_CONTENT_TYPES",
    "application/pdf,image/png,image/jpeg,text/plain,text/csv",
    "Comma-separated content types allowed as email attachments",
)

# --- web push --------------------------------------------------------------------------------
VAPID_PRIVATE_KEY = _setting(
    "VAPID_PRIVATE_KEY", "", "VAPID private key (base64url, from `herald vapid generate`)"
)
VAPID_PUBLIC_KEY = _setting("VAPID_PUBLIC_KEY", "", "VAPID public key served to browsers")
VAPID_SUBJECT = _setting("VAPID_SUBJECT", "mailto:herald@localhost", "VAPID `sub` claim")
WEBPUSH_TTL_SECONDS = _setting(
    "WEBPUSH_TTL_SECONDS", 86400, "How long a push service keeps a push", int
)
_channel("WEBPUSH", "web push", max_retries=6, min_backoff_ms=5000)

# --- Telegram, Viber, WhatsApp, SMS ------------------------------------------------------------
TELEGRAM_API_URL = _setting(
    "TELEGRAM_API_URL", "https://api.telegram.org", "Telegram Bot API base URL"
)
TELEGRAM_BOT_TOKEN = _setting("TELEGRAM_BOT_TOKEN", "", "Telegram bot token")
_channel("TELEGRAM", "Telegram", max_retries=6, min_backoff_ms=2000, rate=30)
VIBER_API_URL = _setting("VIBER_API_URL", "https://chatapi.viber.com/pa", "Viber REST API base URL")
VIBER_AUTH_TOKEN = _setting("VIBER_AUTH_TOKEN", "", "Viber bot authentication token")
VIBER_SENDER_NAME = _setting("VIBER_SENDER_NAME", "Herald", "Sender name shown in Viber")
VIBER_SENDER_AVATAR = _setting("VIBER_SENDER_AVATAR", "", "Sender avatar URL shown in Viber")
_channel("VIBER", "Viber", max_retries=6, min_backoff_ms=2000)
WHATSAPP_API_URL = _setting(
    "WHATSAPP_API_URL", "https://graph.facebook.com/v21.0", "WhatsApp Cloud API base URL"
)
WHATSAPP_TOKEN = _setting("WHATSAPP_TOKEN", "", "WhatsApp Cloud API bearer token")
WHATSAPP_PHONE_NUMBER_ID = _setting(
    "WHATSAPP_PHONE_NUMBER_ID", "", "WhatsApp sender phone number id"
)
_channel("WHATSAPP", "WhatsApp", max_retries=6, min_backoff_ms=5000)
SMS_PROVIDER = _setting(
    "SMS_PROVIDER", "twilio", "SMS provider adapter: twilio (Twilio-compatible API)"
)
SMS_API_URL = _setting("SMS_API_URL", "https://api.twilio.com", "SMS provider API base URL")
SMS_ACCOUNT_SID = _setting("SMS_ACCOUNT_SID", "", "SMS provider account id (basic-auth user)")
SMS_AUTH_TOKEN = _setting("SMS_AUTH_TOKEN", "", "SMS provider auth token (basic-auth password)")
SMS_FROM = _setting("SMS_FROM", "", "SMS sender number or alphanumeric id")
SMS_MAX_SEGMENTS = _setting(
    "SMS_MAX_SEGMENTS", 6, "Longest SMS accepted, in segments (400 above)", int
)
SMS_DEFAULT_REGION = _setting(
    "SMS_DEFAULT_REGION", "MD", "Region for phone numbers written without +country code"
)
_channel("SMS", "SMS", max_retries=6, min_backoff_ms=5000)

# --- webhooks, callbacks, letters, in-app ----------------------------------------------------
ALLOW_PRIVATE_URLS = _setting(
    "ALLOW_PRIVATE_URLS",
    False,
    "Allow http:// and private/loopback webhook and callback URLs",
    _flag,
)
OUTBOUND_TIMEOUT_SECONDS = _setting(
    "OUTBOUND_TIMEOUT_SECONDS", 10.0, "Timeout of provider, webhook and callback HTTP calls", float
)
_channel("WEBHOOK", "webhook", max_retries=8, min_backoff_ms=5000)
_channel("CALLBACK", "delivery callback", max_retries=10, min_backoff_ms=5000)
DOCUMENT_STORE_DIR = _setting(
    "DOCUMENT_STORE_DIR", f"{VAR_DIR}/documents", "Where letters (PDF) and attachments are stored"
)
_channel("LETTER", "letter", max_retries=3, min_backoff_ms=5000)
_channel("INAPP", "in-app", max_retries=3, min_backoff_ms=1000)

# --- delivery and recovery -----------------------------------------------------------------
DELIVERY_LEASE_SECONDS = _setting(
    "DELIVERY_LEASE_SECONDS", 120, "How long a worker owns a message it is sending", int
)
REPLAY_INTERVAL_SECONDS = _setting(
    "REPLAY_INTERVAL_SECONDS", 10, "How often the scheduler looks for stuck messages", int
)
REPLAY_AFTER_SECONDS = _setting(
    "REPLAY_AFTER_SECONDS",
    60,
    "A message queued (or overdue for retry) this long is re-enqueued",
    int,
)
MESSAGE_RETENTION_DAYS = _setting(
    "MESSAGE_RETENTION_DAYS", 7, "Days a message's destination and bodies are kept", int
)
SEARCH_COUNT_LIMIT = _setting(
    "SEARCH_COUNT_LIMIT",
    10_000,
    "History searches count matches up to this; past it X-Pagination says totalCapped",
    int,
)
FANOUT_CHUNK_SIZE = _setting(
    "FANOUT_CHUNK_SIZE", 1000, "IDNP recipients or subscribers resolved per fan-out job", int
)
REPLAY_BATCH_SIZE = _setting("REPLAY_BATCH_SIZE", 1000, "Messages re-enqueued per replay pass", int)
LEADER_LOCK_TTL_SECONDS = _setting(
    "LEADER_LOCK_TTL_SECONDS",
    15,
    "Scheduler leader lock lifetime; a standby takes over after it",
    int,
)

# --- in-app inbox --------------------------------------------------------------------------
USER_TOKEN_SECRET = _setting(
    "USER_TOKEN_SECRET",
    "",
    "Signs user (inbox) tokens; empty: a random one kept in the database, shared by processes",
)
USER_TOKEN_MAX_TTL_SECONDS = _setting(
    "USER_TOKEN_MAX_TTL_SECONDS", 86400, "Longest lifetime a user token may be minted with", int
)
INBOX_POLL_SECONDS = _setting(
    "INBOX_POLL_SECONDS", 30, "How often the /inbox page refreshes its unread badge", int
)

# --- the scheduler's jobs ------------------------------------------------------------------
SCHEDULE_INTERVAL_SECONDS = _setting(
    "SCHEDULE_INTERVAL_SECONDS",
    5,
    "How often scheduled sends, reminders and expiry are checked (bounds their lateness)",
    int,
)
AUTO_RESEND_AFTER = _setting(
    "AUTO_RESEND_AFTER", 3600, "Seconds before a RETRIES_EXHAUSTED message is resent", int
)
AUTO_RESEND_MAX = _setting("AUTO_RESEND_MAX", 3, "Automatic resends of one message at most", int)
HOUSEKEEPING_INTERVAL_SECONDS = _setting(
    "HOUSEKEEPING_INTERVAL_SECONDS", 60, "How often auto-resend and the retention purge run", int
)
PURGE_BATCH_SIZE = _setting(
    "PURGE_BATCH_SIZE", 500, "Notifications (and messages) redacted per purge transaction", int
)
SCHEDULE_BATCH_SIZE = _setting(
    "SCHEDULE_BATCH_SIZE", 1000, "Scheduled messages or reminders handled per pass", int
)
MAX_REMINDER_OCCURRENCES = _setting(
    "MAX_REMINDER_OCCURRENCES", 100, "Occurrences one reminder may have (cron: with endAt)", int
)

# --- processes -----------------------------------------------------------------------------
LOG_LEVEL = _setting("LOG_LEVEL", "INFO", "Python log level for all processes")
HOST = _setting("HOST", "0.0.0.0", "Address the web process binds (`herald run`: 127.0.0.1)")
PORT = _setting("PORT", 8000, "Port the web process binds", int)
WORKER_THREADS = _setting("WORKER_THREADS", 8, "Dramatiq threads per worker process", int)
WORKER_PROCESSES = _setting(
    "WORKER_PROCESSES", "", "Dramatiq worker processes; empty: one per CPU (Dramatiq's default)"
)
MAILCATCHER = _setting(
    "MAILCATCHER", True, "`herald run` starts a mail catcher on SMTP_HOST:SMTP_PORT", _flag
)


def broker_url() -> str:
    """The broker URL in force: BROKER_URL, else REDIS_URL."""
    return BROKER_URL or REDIS_URL


def markdown_table() -> str:
    """The settings as a Markdown table (the README's configuration section)."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for item in SETTINGS.values():
        default = "" if item.default == "" else f"`{item.default}`"
        rows.append(f"| `{item.name}` | {default} | {item.meaning} |")
    return "\n".join(rows)
