"""Herald configuration: every tunable, read once from an environment variable with a default.

Code reads these as ``settings.NAME`` at the moment it needs them, so tests can change one with
``monkeypatch.setattr(settings, "NAME", value)``. ``SETTINGS`` keeps each setting's default,
kind (its type and allowed values) and meaning; ``markdown_table()`` is the README's table.

Every value given in the environment is checked when this module is imported, which every
process does first (web, worker, scheduler, the ``herald`` command): one outside its kind stops
the process with ``settings: NAME='value' is not <allowed values>`` on stderr and exit status
``EXIT_INVALID``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setting_kinds import Choice, Flag, Kind, Number, Pattern, Rate, Text, Url
from setting_kinds import InvalidSetting as InvalidSetting
from setting_kinds import Setting as Setting
from setting_kinds import rate_window as rate_window

#: Exit status of a process stopped by an invalid setting. gunicorn's "worker failed to boot":
#: with it the web master stops, where any other status makes it restart its workers forever.
EXIT_INVALID = 3

TEXT, ANY_TEXT, FLAG = Text(), Kind(), Flag()
HTTP_URL = Url(("http", "https"))
#: Batch sizes: large enough for any load, small enough for one SQL statement's parameters.
BATCH = Number(1, 10000)
PORT_NUMBER = Number(1, 65535)
SECONDS_OF_A_DAY = Number(1, 86400)
TIMEOUT = Number(0.1, 3600, float)
RETRY_DELAY_MS = Number(0, 7 * 86400 * 1000)
BYTES = Number(1024, 2**30)


SETTINGS: dict[str, Setting] = {}
_INVALID: list[str] = []


def _setting(name: str, default: Any, meaning: str, kind: Kind = TEXT, secret: bool = False):
    """Declare a setting and return its value from the environment (empty means default)."""
    item = SETTINGS[name] = Setting(name, default, meaning, kind, secret)
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return item.read(raw)
    except InvalidSetting as error:
        _INVALID.append(str(error))
        return default


def _channel(
    prefix: str, label: str, max_retries: int, min_backoff_ms: int, rate: float = 0
) -> None:
    """Declare a channel's retry and rate settings: <PREFIX>_MAX_RETRIES, _MIN_BACKOFF_MS,
    _MAX_BACKOFF_MS and _RATE_LIMIT_PER_SECOND (0: unlimited), as module globals."""
    values = {
        "MAX_RETRIES": (max_retries, f"Retries after the first {label} attempt", Number(0, 1000)),
        "MIN_BACKOFF_MS": (
            min_backoff_ms,
            f"First {label} retry delay; doubles, with jitter",
            RETRY_DELAY_MS,
        ),
        "MAX_BACKOFF_MS": (3600000, f"Longest {label} retry delay", RETRY_DELAY_MS),
        "RATE_LIMIT_PER_SECOND": (
            rate,
            f"{label} sends per second, all workers (0: no limit)",
            Rate(),
        ),
    }
    for suffix, (default, meaning, kind) in values.items():
        globals()[f"{prefix}_{suffix}"] = _setting(f"{prefix}_{suffix}", default, meaning, kind)


# --- storage -------------------------------------------------------------------------------
VAR_DIR = _setting(
    "VAR_DIR", "var", "Directory for local state: SQLite file, embedded Redis, outbox"
)
DATABASE_URL = _setting(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR}/herald.db",
    "sqlite:///path (WAL mode, shared by all processes) or postgresql://user:pass@host/db",
    Url(("sqlite", "postgresql", "postgres")),
)
DATABASE_POOL_SIZE = _setting(
    "DATABASE_POOL_SIZE", 20, "PostgreSQL connections kept per process (pooled)", Number(1, 1000)
)
SENDER_CACHE_SECONDS = _setting(
    "SENDER_CACHE_SECONDS",
    5,
    "How long a process trusts what it read of a sender: web, an API key it checked; worker, "
    "a notification's callback URL and secret (changes are seen within this time; 0: always read)",
    Number(0, 3600, float),
)
SQLITE_BUSY_TIMEOUT_MS = _setting(
    "SQLITE_BUSY_TIMEOUT_MS",
    10000,
    "How long a SQLite writer waits for the lock",
    Number(0, 600000),
)

# --- broker and Redis ----------------------------------------------------------------------
REDIS_URL = _setting(
    "REDIS_URL",
    "",
    "Redis for locks and rate limits; empty: `herald run` starts an embedded one",
    Url(("redis", "rediss", "unix"), optional=True),
)
BROKER_URL = _setting(
    "BROKER_URL",
    "",
    "Dramatiq broker: redis://… or amqp://… (RabbitMQ); empty: REDIS_URL",
    Url(("redis", "rediss", "unix", "amqp", "amqps"), optional=True),
)
BROKER_TIMEOUT_SECONDS = _setting(
    "BROKER_TIMEOUT_SECONDS",
    3.0,
    "Connect/read timeout of each Redis and broker call (a timed-out call is not retried); "
    "a down or hung broker fails fast",
    Number(0.1, 300, float),
)
BROKER_BREAKER_SECONDS = _setting(
    "BROKER_BREAKER_SECONDS",
    5.0,
    "After a broker error, how long a process skips the enqueues the replay job also does (after "
    "accepting, retries, fan-outs, callbacks) instead of waiting on the broker; then a "
    "background ping decides (0: never skip)",
    Number(0, 3600, float),
)

# --- API -----------------------------------------------------------------------------------
MAX_REQUEST_BYTES = _setting(
    "MAX_REQUEST_BYTES", 1024 * 1024, "Largest request body (413 above)", BYTES
)
MAX_RECIPIENTS_PER_REQUEST = _setting(
    "MAX_RECIPIENTS_PER_REQUEST",
    10000,
    "Most recipients in one POST /v1/notifications",
    Number(1, 1000000),
)
MAX_IMPORT_BYTES = _setting(
    "MAX_IMPORT_BYTES", 16 * 1024 * 1024, "Largest POST /v1/contacts/import body (413 above)", BYTES
)
MAX_IMPORT_ROWS = _setting(
    "MAX_IMPORT_ROWS", 10000, "Most contacts in one import", Number(1, 1000000)
)
IDEMPOTENCY_KEY_MAX_LENGTH = _setting(
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    255,
    "Longest accepted Idempotency-Key header (the stored key holds 255)",
    Number(1, 255),
)
IDEMPOTENCY_TTL_SECONDS = _setting(
    "IDEMPOTENCY_TTL_SECONDS",
    86400,
    "How long an Idempotency-Key is remembered (at most until its notification is purged)",
    Number(60, 30 * 86400),
)

# --- templates -------------------------------------------------------------------------------
MAX_ATTRIBUTES_BYTES = _setting(
    "MAX_ATTRIBUTES_BYTES",
    16384,
    "Largest attributes object (shared or per recipient)",
    Number(2, 2**24),
)
TEMPLATE_MAX_BYTES = _setting(
    "TEMPLATE_MAX_BYTES",
    65536,
    "Largest template part (subject, body or html), in bytes",
    Number(1, 2**24),
)
TEMPLATE_RENDER_MAX_BYTES = _setting(
    "TEMPLATE_RENDER_MAX_BYTES",
    1024 * 1024,
    "Most bytes one template render may write, all parts together; also its largest value",
    Number(1024, 2**26),
)
TEMPLATE_RENDER_MAX_MS = _setting(
    "TEMPLATE_RENDER_MAX_MS",
    1000,
    "Longest one template render may take, in ms (a save renders all its contents within it)",
    Number(10, 30000),
)

# --- email channel -------------------------------------------------------------------------
SMTP_HOST = _setting("SMTP_HOST", "127.0.0.1", "SMTP server host")
SMTP_PORT = _setting(
    "SMTP_PORT", 1025, "SMTP server port (1025: the dev mail catcher)", PORT_NUMBER
)
SMTP_USER = _setting("SMTP_USER", "", "SMTP username; empty: no AUTH", ANY_TEXT)
SMTP_PASSWORD = _setting("SMTP_PASSWORD", "", "SMTP password", ANY_TEXT, secret=True)
SMTP_TLS = _setting(
    "SMTP_TLS", "none", "TLS to the SMTP server", Choice(("none", "starttls", "ssl"))
)
SMTP_CA_FILE = _setting(
    "SMTP_CA_FILE", "", "Extra CA bundle to trust for SMTP TLS (internal CAs)", ANY_TEXT
)
SMTP_TIMEOUT_SECONDS = _setting("SMTP_TIMEOUT_SECONDS", 30.0, "SMTP socket timeout", TIMEOUT)
MAIL_FROM = _setting("MAIL_FROM", "Herald <herald@localhost>", "From header of every email")
_channel("EMAIL", "email", max_retries=8, min_backoff_ms=15000)
MAX_ATTACHMENT_BYTES = _setting(
    "MAX_ATTACHMENT_BYTES",
    10 * 1024 * 1024,
    "Total decoded size of a notification's attachments",
    Number(0, 2**30),
)
ATTACHMENT_CONTENT_TYPES = _setting(
    "ATTACHMENT_CONTENT_TYPES",
    "application/pdf,image/png,image/jpeg,text/plain,text/csv",
    "Comma-separated content types allowed as email attachments (empty: none)",
    Pattern(
        r"\s*[\w.+-]+/[\w.+-]+\s*(,\s*[\w.+-]+/[\w.+-]+\s*)*",
        "type/subtype, comma-separated",
        optional=True,
    ),
)

# --- web push --------------------------------------------------------------------------------
VAPID_PRIVATE_KEY = _setting(
    "VAPID_PRIVATE_KEY",
    "",
    "VAPID private key (base64url, from `herald vapid generate`)",
    ANY_TEXT,
    secret=True,
)
VAPID_PUBLIC_KEY = _setting("VAPID_PUBLIC_KEY", "", "VAPID public key served to browsers", ANY_TEXT)
VAPID_SUBJECT = _setting(
    "VAPID_SUBJECT", "mailto:herald@localhost", "VAPID `sub` claim", Url(("mailto", "https"))
)
WEBPUSH_TTL_SECONDS = _setting(
    "WEBPUSH_TTL_SECONDS", 86400, "How long a push service keeps a push", Number(0, 2419200)
)
_channel("WEBPUSH", "web push", max_retries=6, min_backoff_ms=5000)

# --- Telegram, Viber, WhatsApp, SMS ------------------------------------------------------------
TELEGRAM_API_URL = _setting(
    "TELEGRAM_API_URL", "https://api.telegram.org", "Telegram Bot API base URL", HTTP_URL
)
TELEGRAM_BOT_TOKEN = _setting("TELEGRAM_BOT_TOKEN", "", "Telegram bot token", ANY_TEXT, secret=True)
_channel("TELEGRAM", "Telegram", max_retries=6, min_backoff_ms=2000, rate=30)
VIBER_API_URL = _setting(
    "VIBER_API_URL", "https://chatapi.viber.com/pa", "Viber REST API base URL", HTTP_URL
)
VIBER_AUTH_TOKEN = _setting(
    "VIBER_AUTH_TOKEN", "", "Viber bot authentication token", ANY_TEXT, secret=True
)
VIBER_SENDER_NAME = _setting("VIBER_SENDER_NAME", "Herald", "Sender name shown in Viber")
VIBER_SENDER_AVATAR = _setting(
    "VIBER_SENDER_AVATAR",
    "",
    "Sender avatar URL shown in Viber",
    Url(("http", "https"), optional=True),
)
_channel("VIBER", "Viber", max_retries=6, min_backoff_ms=2000)
WHATSAPP_API_URL = _setting(
    "WHATSAPP_API_URL",
    "https://graph.facebook.com/v21.0",
    "WhatsApp Cloud API base URL",
    HTTP_URL,
)
WHATSAPP_TOKEN = _setting(
    "WHATSAPP_TOKEN", "", "WhatsApp Cloud API bearer token", ANY_TEXT, secret=True
)
WHATSAPP_PHONE_NUMBER_ID = _setting(
    "WHATSAPP_PHONE_NUMBER_ID", "", "WhatsApp sender phone number id", ANY_TEXT
)
_channel("WHATSAPP", "WhatsApp", max_retries=6, min_backoff_ms=5000)
SMS_PROVIDER = _setting(
    "SMS_PROVIDER",
    "twilio",
    "SMS provider adapter (twilio: Twilio-compatible API)",
    Choice(("twilio",)),
)
SMS_API_URL = _setting(
    "SMS_API_URL", "https://api.twilio.com", "SMS provider API base URL", HTTP_URL
)
SMS_ACCOUNT_SID = _setting(
    "SMS_ACCOUNT_SID", "", "SMS provider account id (basic-auth user)", ANY_TEXT
)
SMS_AUTH_TOKEN = _setting(
    "SMS_AUTH_TOKEN",
    "",
    "SMS provider auth token (basic-auth password)",
    ANY_TEXT,
    secret=True,
)
SMS_FROM = _setting("SMS_FROM", "", "SMS sender number or alphanumeric id", ANY_TEXT)
SMS_MAX_SEGMENTS = _setting(
    "SMS_MAX_SEGMENTS", 6, "Longest SMS accepted, in segments (400 above)", Number(1, 255)
)
SMS_DEFAULT_REGION = _setting(
    "SMS_DEFAULT_REGION",
    "MD",
    "Region for phone numbers written without +country code (empty: they are refused)",
    Pattern("[A-Z]{2}", "a region code of two capital letters (MD)", optional=True),
)
_channel("SMS", "SMS", max_retries=6, min_backoff_ms=5000)

# --- webhooks, callbacks, letters, in-app ----------------------------------------------------
ALLOW_PRIVATE_URLS = _setting(
    "ALLOW_PRIVATE_URLS",
    False,
    "Allow http:// and private/loopback webhook and callback URLs",
    FLAG,
)
OUTBOUND_TIMEOUT_SECONDS = _setting(
    "OUTBOUND_TIMEOUT_SECONDS",
    10.0,
    "Timeout of provider, webhook and callback HTTP calls",
    Number(0.1, 600, float),
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
    "DELIVERY_LEASE_SECONDS",
    120,
    "How long a worker owns a message it is sending",
    SECONDS_OF_A_DAY,
)
REPLAY_INTERVAL_SECONDS = _setting(
    "REPLAY_INTERVAL_SECONDS",
    10,
    "How often the scheduler looks for stuck messages",
    SECONDS_OF_A_DAY,
)
REPLAY_AFTER_SECONDS = _setting(
    "REPLAY_AFTER_SECONDS",
    60,
    "A message queued (or overdue for retry) this long is re-enqueued",
    Number(1, 7 * 86400),
)
MESSAGE_RETENTION_DAYS = _setting(
    "MESSAGE_RETENTION_DAYS",
    7,
    "Days a notification's personal data is kept after its last message became final",
    Number(1, 36500),
)
SEARCH_COUNT_LIMIT = _setting(
    "SEARCH_COUNT_LIMIT",
    10_000,
    "History searches count matches up to this; past it X-Pagination says totalCapped",
    Number(1, 10_000_000),
)
FANOUT_CHUNK_SIZE = _setting(
    "FANOUT_CHUNK_SIZE", 1000, "IDNP recipients or subscribers resolved per fan-out job", BATCH
)
REPLAY_BATCH_SIZE = _setting(
    "REPLAY_BATCH_SIZE", 1000, "Messages re-enqueued per replay pass", BATCH
)
LEADER_LOCK_TTL_SECONDS = _setting(
    "LEADER_LOCK_TTL_SECONDS",
    15,
    "Scheduler leader lock lifetime; a standby takes over after it",
    Number(2, 3600),
)

# --- in-app inbox --------------------------------------------------------------------------
USER_TOKEN_SECRET = _setting(
    "USER_TOKEN_SECRET",
    "",
    "Signs user (inbox) tokens; empty: a random one kept in the database, shared by processes",
    Text(min_length=32, optional=True),
    secret=True,
)
USER_TOKEN_MAX_TTL_SECONDS = _setting(
    "USER_TOKEN_MAX_TTL_SECONDS",
    86400,
    "Longest lifetime a user token may be minted with",
    Number(60, 366 * 86400),
)
INBOX_POLL_SECONDS = _setting(
    "INBOX_POLL_SECONDS",
    30,
    "How often the /inbox page refreshes its unread badge",
    Number(1, 3600),
)

# --- the scheduler's jobs ------------------------------------------------------------------
SCHEDULE_INTERVAL_SECONDS = _setting(
    "SCHEDULE_INTERVAL_SECONDS",
    5,
    "How often scheduled sends, reminders and expiry are checked (bounds their lateness)",
    Number(1, 3600),
)
AUTO_RESEND_AFTER = _setting(
    "AUTO_RESEND_AFTER",
    3600,
    "Seconds before a RETRIES_EXHAUSTED message is resent",
    Number(1, 30 * 86400),
)
AUTO_RESEND_MAX = _setting(
    "AUTO_RESEND_MAX", 3, "Automatic resends of one message at most (0: none)", Number(0, 100)
)
HOUSEKEEPING_INTERVAL_SECONDS = _setting(
    "HOUSEKEEPING_INTERVAL_SECONDS",
    60,
    "How often auto-resend, the retention purge and key expiry run",
    SECONDS_OF_A_DAY,
)
PURGE_BATCH_SIZE = _setting(
    "PURGE_BATCH_SIZE", 500, "Notifications (and messages) redacted per purge transaction", BATCH
)
SCHEDULE_BATCH_SIZE = _setting(
    "SCHEDULE_BATCH_SIZE", 1000, "Scheduled messages or reminders handled per pass", BATCH
)
MAX_REMINDER_OCCURRENCES = _setting(
    "MAX_REMINDER_OCCURRENCES",
    100,
    "Occurrences one reminder may have (a cron schedule needs endAt)",
    Number(1, 100000),
)

# --- processes -----------------------------------------------------------------------------
LOG_LEVEL = _setting(
    "LOG_LEVEL",
    "INFO",
    "Python log level for all processes",
    Choice(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
)
HOST = _setting("HOST", "0.0.0.0", "Address the web process binds (`herald run`: 127.0.0.1)")
PORT = _setting("PORT", 8000, "Port the web process binds", PORT_NUMBER)
WORKER_THREADS = _setting(
    "WORKER_THREADS", 8, "Dramatiq threads per worker process", Number(1, 1024)
)
WORKER_PROCESSES = _setting(
    "WORKER_PROCESSES",
    "",
    "Dramatiq worker processes; empty: one per CPU (Dramatiq's default)",
    Number(1, 1024, optional=True),
)
MAILCATCHER = _setting(
    "MAILCATCHER", True, "`herald run` starts a mail catcher on SMTP_HOST:SMTP_PORT", FLAG
)

if _INVALID:
    for _problem in _INVALID:
        print(f"settings: {_problem}", file=sys.stderr)
    raise SystemExit(EXIT_INVALID)


def broker_url() -> str:
    """The broker URL in force: BROKER_URL, else REDIS_URL."""
    return BROKER_URL or REDIS_URL


def markdown_table() -> str:
    """The settings as a Markdown table (the README's configuration section)."""
    rows = ["| Variable | Default | Allowed | Meaning |", "|---|---|---|---|"]
    for item in SETTINGS.values():
        default = "" if item.default == "" else f"`{item.default}`"
        rows.append(f"| `{item.name}` | {default} | {item.kind.allowed} | {item.meaning} |")
    return "\n".join(rows)
