"""Herald configuration: every tunable, read once from an environment variable with a default.

``Settings`` declares each setting as a typed field: its default, its kind (type and allowed
values, ``setting_kinds``) and its meaning. ``settings`` is the one instance, read from the
environment when this module is imported; code reads ``settings.NAME`` at the moment it needs
it, so tests can change one with ``monkeypatch.setattr(settings, "NAME", value)``. A channel's
retry and rate settings are one ``ChannelSettings`` field named by its prefix:
``settings.SMS.MAX_RETRIES`` is read from ``SMS_MAX_RETRIES``. ``SETTINGS`` describes every
setting by its environment variable; ``markdown_table()`` is the README's table.

Every value given in the environment is checked when this module is imported, which every
process does first (web, worker, scheduler, the ``herald`` command): one outside its kind stops
the process with ``settings: NAME='value' is not <allowed values>`` on stderr and exit status
``EXIT_INVALID``.
"""

import functools
import sys
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from setting_kinds import (
    Choice,
    Flag,
    Kind,
    Networks,
    Number,
    Pattern,
    Rate,
    Secret,
    Setting,
    Text,
    Url,
)
from setting_kinds import InvalidSetting as InvalidSetting
from setting_kinds import rate_window as rate_window

#: Exit status of a process stopped by an invalid setting. gunicorn's "worker failed to boot":
#: with it the web master stops, where any other status makes it restart its workers forever.
EXIT_INVALID = 3

AnyText = Annotated[str, Kind()]
NonEmptyText = Annotated[str, Text()]
SecretText = Annotated[str, Kind(), Secret()]
HttpUrl = Annotated[str, Url(("http", "https"))]
Switch = Annotated[bool, Flag()]
#: Batch sizes: large enough for any load, small enough for one SQL statement's parameters.
Batch = Annotated[int, Number(1, 10000)]
Port = Annotated[int, Number(1, 65535)]
SecondsOfADay = Annotated[int, Number(1, 86400)]
Timeout = Annotated[float, Number(0.1, 3600, float)]
RetryDelayMs = Annotated[int, Number(0, 7 * 86400 * 1000)]
Bytes = Annotated[int, Number(1024, 2**30)]
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: A web origin as CSP and postMessage take it: scheme://host[:port], no path.
_ORIGIN = rf"https?://({_LABEL}(\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(:[1-9][0-9]{{0,4}})?"


class ChannelSettings(BaseModel):
    """A channel's retries and rate: <PREFIX>_MAX_RETRIES, _MIN_BACKOFF_MS, _MAX_BACKOFF_MS and
    _RATE_LIMIT_PER_SECOND. In the meanings, ``{label}`` is the channel as its field's
    description names it."""

    MAX_RETRIES: Annotated[int, Number(0, 1000)] = Field(
        description="Retries after the first {label} attempt"
    )
    MIN_BACKOFF_MS: RetryDelayMs = Field(
        description="First {label} retry delay; doubles, with jitter"
    )
    MAX_BACKOFF_MS: RetryDelayMs = Field(default=3600000, description="Longest {label} retry delay")
    RATE_LIMIT_PER_SECOND: Annotated[float, Rate()] = Field(
        default=0, description="{label} sends per second, all workers (0: no limit)"
    )

    def rate_window(self) -> tuple[int, int]:
        """The rate as (limit, window): ``limit`` sends per ``window`` whole seconds
        (``rate_window``); meaningless for a rate of 0 (no limit)."""
        return rate_window(self.RATE_LIMIT_PER_SECOND)


def _channel(label: str, max_retries: int, min_backoff_ms: int, rate: float = 0) -> Any:
    """A channel's settings field: its own defaults, and ``label`` naming it in the meanings."""
    defaults = ChannelSettings(
        MAX_RETRIES=max_retries, MIN_BACKOFF_MS=min_backoff_ms, RATE_LIMIT_PER_SECOND=rate
    )
    return Field(default=defaults, description=label)


class _Environment(EnvSettingsSource):
    """The environment, where a channel's settings are its <PREFIX>_<NAME> variables only: a
    variable named as the prefix itself (EMAIL is often a person's address) is not Herald's."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field.annotation is ChannelSettings:
            return None, field_name, True
        return super().get_field_value(field, field_name)


class Settings(BaseSettings):
    """Every Herald setting, read from the environment variable of its name (empty: the
    default); a channel's from <PREFIX>_<NAME> (SMS_MAX_RETRIES is ``SMS.MAX_RETRIES``)."""

    model_config = SettingsConfigDict(
        validate_default=False,  # the defaults are tested (tests/test_settings.py)
        case_sensitive=True,
        env_ignore_empty=True,
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    # --- storage ---------------------------------------------------------------------------
    VAR_DIR: NonEmptyText = Field(
        default="var", description="Directory for local state: SQLite file, embedded Redis, outbox"
    )
    DATABASE_URL: Annotated[str, Url(("sqlite", "postgresql", "postgres"))] = Field(
        default_factory=lambda data: f"sqlite:///{data['VAR_DIR']}/herald.db",
        description="sqlite:///path (WAL mode, shared by all processes) or "
        "postgresql://user:pass@host/db",
    )
    DATABASE_POOL_SIZE: Annotated[int, Number(1, 1000)] = Field(
        default=20, description="PostgreSQL connections kept per process (pooled)"
    )
    SENDER_CACHE_SECONDS: Annotated[float, Number(0, 3600, float)] = Field(
        default=5,
        description="How long a process trusts what it read of a sender: web, an API key it "
        "checked; worker, a notification's callback URL and secret (changes are seen within "
        "this time; 0: always read)",
    )
    API_KEY_LAST_USED_SECONDS: Annotated[int, Number(1, 86400)] = Field(
        default=300,
        description="How precisely an API key's last use is recorded: at most one write per "
        "key per this many seconds in each web process",
    )
    SECRET_KEY: Annotated[str, Text(min_length=32, optional=True), Secret()] = Field(
        default="",
        description="Wraps the secrets Herald keeps in the database (user token, bounce token "
        "and unsubscribe token signing); empty: they are stored in clear. Set it in production",
    )
    SECRET_KEY_PREVIOUS: Annotated[str, Text(min_length=32, optional=True), Secret()] = Field(
        default="",
        description="The SECRET_KEY before a rotation: secrets wrapped under it are read and "
        "wrapped again under SECRET_KEY",
    )
    SQLITE_BUSY_TIMEOUT_MS: Annotated[int, Number(0, 600000)] = Field(
        default=10000, description="How long a SQLite writer waits for the lock"
    )

    # --- broker and Redis ------------------------------------------------------------------
    REDIS_URL: Annotated[str, Url(("redis", "rediss", "unix"), optional=True)] = Field(
        default="",
        description="Redis for locks and rate limits; empty: `herald run` starts an embedded one",
    )
    BROKER_URL: Annotated[str, Url(("redis", "rediss", "unix", "amqp", "amqps"), optional=True)] = (
        Field(
            default="",
            description="Dramatiq broker: redis://… or amqp://… (RabbitMQ); empty: REDIS_URL",
        )
    )
    BROKER_TIMEOUT_SECONDS: Annotated[float, Number(0.1, 300, float)] = Field(
        default=3.0,
        description="Connect/read timeout of each Redis and broker call (a timed-out call is not "
        "retried); a down or hung broker fails fast",
    )
    BROKER_BREAKER_SECONDS: Annotated[float, Number(0, 3600, float)] = Field(
        default=5.0,
        description="After a broker error, how long a process skips the enqueues the replay job "
        "also does (after accepting, retries, fan-outs, callbacks) instead of waiting on the "
        "broker; then a background ping decides (0: never skip)",
    )

    # --- API -------------------------------------------------------------------------------
    PUBLIC_BASE_URL: Annotated[str, Url(("http", "https"), optional=True)] = Field(
        default="",
        description="The address providers and people reach Herald at "
        "(https://herald.example.md), named in the receipt URLs given to providers and in "
        "emails' unsubscribe links; empty: SMS sends ask for no receipts, Twilio receipts are "
        "refused, and emails carry no unsubscribe link",
    )
    MAX_REQUEST_BYTES: Bytes = Field(
        default=1024 * 1024, description="Largest request body (413 above)"
    )
    MAX_RECIPIENTS_PER_REQUEST: Annotated[int, Number(1, 1000000)] = Field(
        default=10000, description="Most recipients in one POST /v1/notifications"
    )
    MAX_IMPORT_BYTES: Bytes = Field(
        default=16 * 1024 * 1024, description="Largest POST /v1/contacts/import body (413 above)"
    )
    MAX_IMPORT_ROWS: Annotated[int, Number(1, 1000000)] = Field(
        default=10000, description="Most contacts in one import"
    )
    API_RATE_LIMIT_PER_MINUTE: Annotated[int, Number(0, 10**9)] = Field(
        default=3000,
        description="Requests per minute one sender's API keys may make, all web processes "
        "together (429 above; counted in Redis); `herald senders set-limits` overrides it per "
        "sender (0: no limit)",
    )
    DAILY_MESSAGE_LIMIT: Annotated[int, Number(0, 10**12)] = Field(
        default=0,
        description="Messages (recipients × channels, fan-out included) one sender may create "
        "per UTC day; `herald senders set-limits` overrides it per sender (0: no limit)",
    )
    RATE_LIMIT_TIMEOUT_SECONDS: Annotated[float, Number(0.01, 10, float)] = Field(
        default=0.2,
        description="Connect/read timeout of the rate limiter's Redis calls; a Redis that does "
        "not answer in time lets the request through (logged)",
    )
    IDEMPOTENCY_KEY_MAX_LENGTH: Annotated[int, Number(1, 255)] = Field(
        default=255,
        description="Longest accepted Idempotency-Key header (the stored key holds 255)",
    )
    IDEMPOTENCY_TTL_SECONDS: Annotated[int, Number(60, 30 * 86400)] = Field(
        default=86400,
        description="How long an Idempotency-Key is remembered (at most until its notification "
        "is purged)",
    )

    # --- templates -------------------------------------------------------------------------
    MAX_ATTRIBUTES_BYTES: Annotated[int, Number(2, 2**24)] = Field(
        default=16384, description="Largest attributes object (shared or per recipient)"
    )
    TEMPLATE_MAX_BYTES: Annotated[int, Number(1, 2**24)] = Field(
        default=65536, description="Largest template part (subject, body or html), in bytes"
    )
    TEMPLATE_RENDER_MAX_BYTES: Annotated[int, Number(1024, 2**26)] = Field(
        default=1024 * 1024,
        description="Most bytes one template render may write, all parts together; also its "
        "largest value",
    )
    TEMPLATE_RENDER_MAX_MS: Annotated[int, Number(10, 30000)] = Field(
        default=1000,
        description="Longest one template render may take, in ms (a save renders all its "
        "contents within it)",
    )

    # --- email channel ---------------------------------------------------------------------
    SMTP_HOST: NonEmptyText = Field(default="127.0.0.1", description="SMTP server host")
    SMTP_PORT: Port = Field(
        default=1025, description="SMTP server port (1025: the dev mail catcher)"
    )
    SMTP_USER: AnyText = Field(default="", description="SMTP username; empty: no AUTH")
    SMTP_PASSWORD: SecretText = Field(default="", description="SMTP password")
    SMTP_TLS: Annotated[str, Choice(("none", "starttls", "ssl"))] = Field(
        default="none", description="TLS to the SMTP server"
    )
    SMTP_CA_FILE: AnyText = Field(
        default="", description="Extra CA bundle to trust for SMTP TLS (internal CAs)"
    )
    SMTP_TIMEOUT_SECONDS: Timeout = Field(default=30.0, description="SMTP socket timeout")
    SMTP_IDLE_CHECK_SECONDS: Annotated[float, Number(0, 3600, float)] = Field(
        default=30.0,
        description="A worker's SMTP connection idle this long is checked with NOOP before its "
        "next message (and replaced if the server has closed it)",
    )
    MAIL_FROM: NonEmptyText = Field(
        default="Herald <herald@localhost>", description="From header of every email"
    )
    EMAIL: ChannelSettings = _channel("email", max_retries=8, min_backoff_ms=15000)
    MAX_ATTACHMENT_BYTES: Annotated[int, Number(0, 2**30)] = Field(
        default=10 * 1024 * 1024, description="Total decoded size of a notification's attachments"
    )
    ATTACHMENT_CONTENT_TYPES: Annotated[
        str,
        Pattern(
            r"\s*[\w.+-]+/[\w.+-]+\s*(,\s*[\w.+-]+/[\w.+-]+\s*)*",
            "type/subtype, comma-separated",
            optional=True,
        ),
    ] = Field(
        default="application/pdf,image/png,image/jpeg,text/plain,text/csv",
        description="Comma-separated content types allowed as email attachments (empty: none)",
    )

    # --- email bounces ---------------------------------------------------------------------
    BOUNCE_DOMAIN: Annotated[
        str,
        Pattern(
            r"(?i)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
            "a domain name",
            optional=True,
        ),
    ] = Field(
        default="",
        description="Emails go out with the return path `bounces+<token>@BOUNCE_DOMAIN`, where "
        "`herald bounces` receives their delivery reports; empty: no return path of Herald's",
    )
    BOUNCE_SECRET: Annotated[str, Text(min_length=32, optional=True), Secret()] = Field(
        default="",
        description="Signs return-path tokens; empty: a random one kept in the database, shared "
        "by processes",
    )
    BOUNCE_SMTP_HOST: NonEmptyText = Field(
        default="127.0.0.1", description="Address the bounce receiver (`herald bounces`) binds"
    )
    BOUNCE_SMTP_PORT: Port = Field(default=2525, description="Port the bounce receiver binds")
    BOUNCE_MAX_MESSAGE_BYTES: Bytes = Field(
        default=1024 * 1024, description="Largest report the bounce receiver takes (552 above)"
    )
    BOUNCES_METRICS_PORT: Annotated[int, Number(0, 65535)] = Field(
        default=0,
        description="Port of the bounce receiver's Prometheus metrics, on METRICS_HOST (0: none)",
    )

    # --- web push --------------------------------------------------------------------------
    VAPID_PRIVATE_KEY: SecretText = Field(
        default="", description="VAPID private key (base64url, from `herald vapid generate`)"
    )
    VAPID_PUBLIC_KEY: AnyText = Field(default="", description="VAPID public key served to browsers")
    VAPID_SUBJECT: Annotated[str, Url(("mailto", "https"))] = Field(
        default="mailto:herald@localhost", description="VAPID `sub` claim"
    )
    WEBPUSH_TTL_SECONDS: Annotated[int, Number(0, 2419200)] = Field(
        default=86400, description="How long a push service keeps a push"
    )
    WEBPUSH: ChannelSettings = _channel("web push", max_retries=6, min_backoff_ms=5000)

    # --- Telegram, Viber, WhatsApp, SMS ----------------------------------------------------
    TELEGRAM_API_URL: HttpUrl = Field(
        default="https://api.telegram.org", description="Telegram Bot API base URL"
    )
    TELEGRAM_BOT_TOKEN: SecretText = Field(default="", description="Telegram bot token")
    TELEGRAM: ChannelSettings = _channel("Telegram", max_retries=6, min_backoff_ms=2000, rate=30)
    VIBER_API_URL: HttpUrl = Field(
        default="https://chatapi.viber.com/pa", description="Viber REST API base URL"
    )
    VIBER_AUTH_TOKEN: SecretText = Field(default="", description="Viber bot authentication token")
    VIBER_SENDER_NAME: NonEmptyText = Field(
        default="Herald", description="Sender name shown in Viber"
    )
    VIBER_SENDER_AVATAR: Annotated[str, Url(("http", "https"), optional=True)] = Field(
        default="", description="Sender avatar URL shown in Viber"
    )
    VIBER: ChannelSettings = _channel("Viber", max_retries=6, min_backoff_ms=2000)
    WHATSAPP_API_URL: HttpUrl = Field(
        default="https://graph.facebook.com/v21.0", description="WhatsApp Cloud API base URL"
    )
    WHATSAPP_TOKEN: SecretText = Field(default="", description="WhatsApp Cloud API bearer token")
    WHATSAPP_PHONE_NUMBER_ID: AnyText = Field(
        default="", description="WhatsApp sender phone number id"
    )
    WHATSAPP_VERIFY_TOKEN: SecretText = Field(
        default="",
        description="The verify token set on the Meta app's webhook (its verification request "
        "is answered only with it)",
    )
    WHATSAPP_APP_SECRET: SecretText = Field(
        default="",
        description="The Meta app secret that signs status webhooks; empty: they are refused",
    )
    WHATSAPP: ChannelSettings = _channel("WhatsApp", max_retries=6, min_backoff_ms=5000)
    SMS_PROVIDER: Annotated[str, Choice(("twilio",))] = Field(
        default="twilio", description="SMS provider adapter (twilio: Twilio-compatible API)"
    )
    SMS_API_URL: HttpUrl = Field(
        default="https://api.twilio.com", description="SMS provider API base URL"
    )
    SMS_ACCOUNT_SID: AnyText = Field(
        default="", description="SMS provider account id (basic-auth user)"
    )
    SMS_AUTH_TOKEN: SecretText = Field(
        default="", description="SMS provider auth token (basic-auth password)"
    )
    SMS_FROM: AnyText = Field(default="", description="SMS sender number or alphanumeric id")
    SMS_MAX_SEGMENTS: Annotated[int, Number(1, 255)] = Field(
        default=6, description="Longest SMS accepted, in segments (400 above)"
    )
    SMS_DEFAULT_REGION: Annotated[
        str, Pattern("[A-Z]{2}", "a region code of two capital letters (MD)", optional=True)
    ] = Field(
        default="MD",
        description="Region for phone numbers written without +country code (empty: they are "
        "refused)",
    )
    SMS: ChannelSettings = _channel("SMS", max_retries=6, min_backoff_ms=5000)

    # --- webhooks, callbacks, letters, in-app ----------------------------------------------
    ALLOW_PRIVATE_URLS: Switch = Field(
        default=False, description="Allow http:// and private/loopback webhook and callback URLs"
    )
    OUTBOUND_TIMEOUT_SECONDS: Annotated[float, Number(0.1, 600, float)] = Field(
        default=10.0, description="Timeout of provider, webhook and callback HTTP calls"
    )
    WEBHOOK: ChannelSettings = _channel("webhook", max_retries=8, min_backoff_ms=5000)
    WEBHOOK_SECRET_GRACE_SECONDS: Annotated[int, Number(0, 30 * 86400)] = Field(
        default=86400,
        description="How long a webhook endpoint's old secret goes on signing, next to the new "
        "one, after a rotation",
    )
    CALLBACK: ChannelSettings = _channel("delivery callback", max_retries=10, min_backoff_ms=5000)
    DOCUMENT_STORE_DIR: NonEmptyText = Field(
        default_factory=lambda data: f"{data['VAR_DIR']}/documents",
        description="Where letters (PDF) and attachments are stored",
    )
    LETTER: ChannelSettings = _channel("letter", max_retries=3, min_backoff_ms=5000)
    INAPP: ChannelSettings = _channel("in-app", max_retries=3, min_backoff_ms=1000)

    # --- delivery and recovery -------------------------------------------------------------
    DELIVERY_LEASE_SECONDS: SecondsOfADay = Field(
        default=120, description="How long a worker owns a message it is sending"
    )
    REPLAY_INTERVAL_SECONDS: SecondsOfADay = Field(
        default=10, description="How often the scheduler looks for stuck messages"
    )
    EARLY_RECEIPT_TTL_SECONDS: Annotated[int, Number(60, 7 * 86400)] = Field(
        default=3600,
        description="How long a provider's receipt that came before its send was recorded is "
        "kept for the send (then it is dropped: another system's message, or one purged)",
    )
    REPLAY_AFTER_SECONDS: Annotated[int, Number(1, 7 * 86400)] = Field(
        default=60, description="A message queued (or overdue for retry) this long is re-enqueued"
    )
    MESSAGE_RETENTION_DAYS: Annotated[int, Number(1, 36500)] = Field(
        default=7,
        description="Days a notification's personal data is kept after its last message "
        "became final",
    )
    SEARCH_COUNT_LIMIT: Annotated[int, Number(1, 10_000_000)] = Field(
        default=10_000,
        description="History searches count matches up to this; past it X-Pagination says "
        "totalCapped",
    )
    FANOUT_CHUNK_SIZE: Batch = Field(
        default=1000, description="IDNP recipients or subscribers resolved per fan-out job"
    )
    FANOUT_CHUNK_LEASE_SECONDS: SecondsOfADay = Field(
        default=300,
        description="How long a worker owns a fan-out chunk it is resolving; after it, "
        "another worker may take the chunk over",
    )
    REPLAY_BATCH_SIZE: Batch = Field(
        default=1000, description="Messages re-enqueued per replay pass"
    )
    LEADER_LOCK_TTL_SECONDS: Annotated[int, Number(2, 3600)] = Field(
        default=15, description="Scheduler leader lock lifetime; a standby takes over after it"
    )

    # --- in-app inbox ----------------------------------------------------------------------
    USER_TOKEN_SECRET: Annotated[str, Text(min_length=32, optional=True), Secret()] = Field(
        default="",
        description="Signs user (inbox) tokens; empty: a random one kept in the database, "
        "shared by processes",
    )
    USER_TOKEN_MAX_TTL_SECONDS: Annotated[int, Number(60, 366 * 86400)] = Field(
        default=86400, description="Longest lifetime a user token may be minted with"
    )
    INBOX_POLL_SECONDS: Annotated[int, Number(1, 3600)] = Field(
        default=30, description="How often the /inbox page refreshes its unread badge"
    )
    INBOX_FRAME_ANCESTORS: Annotated[
        str,
        Pattern(
            rf"\s*{_ORIGIN}(\s+{_ORIGIN})*\s*",
            "http(s) origins (scheme://host[:port], no path), space-separated",
            optional=True,
        ),
    ] = Field(
        default="",
        description="Origins of the portals that may show the /inbox page in a frame (CSP "
        "`frame-ancestors`; the page posts its unread count to them); empty: none may",
    )
    TRUSTED_PROXY_ADDRESSES: Annotated[str, Networks()] = Field(
        default="",
        description="Proxies (IP addresses, CIDRs, comma-separated) whose identity headers are "
        "trusted (SiteMinder `SM_USER` on /compat/notifybc, `X-Client-Cert`); empty: never",
    )

    # --- the scheduler's jobs --------------------------------------------------------------
    SCHEDULE_INTERVAL_SECONDS: Annotated[int, Number(1, 3600)] = Field(
        default=5,
        description="How often scheduled sends, reminders and expiry are checked (bounds their "
        "lateness)",
    )
    AUTO_RESEND_AFTER: Annotated[int, Number(1, 30 * 86400)] = Field(
        default=3600, description="Seconds before a RETRIES_EXHAUSTED message is resent"
    )
    AUTO_RESEND_MAX: Annotated[int, Number(0, 100)] = Field(
        default=3, description="Automatic resends of one message at most (0: none)"
    )
    HOUSEKEEPING_INTERVAL_SECONDS: SecondsOfADay = Field(
        default=60, description="How often auto-resend, the retention purge and key expiry run"
    )
    PURGE_BATCH_SIZE: Batch = Field(
        default=500, description="Notifications (and messages) redacted per purge transaction"
    )
    SCHEDULE_BATCH_SIZE: Batch = Field(
        default=1000, description="Scheduled messages or reminders handled per pass"
    )
    MAX_REMINDER_OCCURRENCES: Annotated[int, Number(1, 100000)] = Field(
        default=100, description="Occurrences one reminder may have (a cron schedule needs endAt)"
    )

    # --- processes -------------------------------------------------------------------------
    LOG_LEVEL: Annotated[str, Choice(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))] = Field(
        default="INFO", description="Python log level for all processes"
    )
    HOST: NonEmptyText = Field(
        default="0.0.0.0", description="Address the web process binds (`herald run`: 127.0.0.1)"
    )
    PORT: Port = Field(default=8000, description="Port the web process binds")
    TLS_CERTFILE: AnyText = Field(
        default="",
        description="PEM certificate (chain) the web process serves TLS with; empty: plain HTTP "
        "(TLS at a proxy)",
    )
    TLS_KEYFILE: AnyText = Field(
        default="", description="The private key of `TLS_CERTFILE`; empty: in that file"
    )
    TLS_CA_CERTS: AnyText = Field(
        default="",
        description="PEM CA certificates that client certificates must chain to (with "
        "`TLS_CLIENT_CERT`)",
    )
    TLS_CLIENT_CERT: Annotated[str, Choice(("none", "optional", "required"))] = Field(
        default="none",
        description="With `TLS_CERTFILE`: ask clients for a certificate (`optional`), or "
        "refuse the handshake without one (`required`)",
    )
    WORKER_THREADS: Annotated[int, Number(1, 1024)] = Field(
        default=8, description="Dramatiq threads per worker process"
    )
    WORKER_PROCESSES: Annotated[int | str, Number(1, 1024, optional=True)] = Field(
        default="", description="Dramatiq worker processes; empty: one per CPU (Dramatiq's default)"
    )
    MAILCATCHER: Switch = Field(
        default=True, description="`herald run` starts a mail catcher on SMTP_HOST:SMTP_PORT"
    )

    # --- metrics and logs ------------------------------------------------------------------
    LOG_FORMAT: Annotated[str, Choice(("text", "json"))] = Field(
        default="text",
        description="Log lines as text, or one JSON object per line (with message_id, "
        "notification_id, channel, attempt, sender where they apply)",
    )
    METRICS: Switch = Field(
        default=True,
        description="Collect Prometheus metrics and serve them (web `/metrics`, the worker's "
        "and scheduler's ports); false: none",
    )
    METRICS_TOKEN: SecretText = Field(
        default="",
        description="Bearer token every metrics scrape must send; empty: open (keep the "
        "metrics ports on a private network)",
    )
    METRICS_HOST: AnyText = Field(
        default="",
        description="Address the worker's and scheduler's metrics ports bind; empty: HOST",
    )
    WORKER_METRICS_PORT: Annotated[int, Number(0, 65535)] = Field(
        default=9191, description="Port of the worker's metrics (all its processes); 0: none"
    )
    SCHEDULER_METRICS_PORT: Annotated[int, Number(0, 65535)] = Field(
        default=9192, description="Port of the scheduler's metrics; 0: none"
    )
    METRICS_SAMPLE_SECONDS: Annotated[int, Number(1, 3600)] = Field(
        default=30, description="How often the leading scheduler samples messages by state"
    )
    METRICS_COUNT_CAP: Annotated[int, Number(1, 10**9)] = Field(
        default=100000,
        description="Largest count of a state's messages a sample reads (a larger backlog "
        "shows as this figure)",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _own_channel_defaults(cls, given: Any, info: ValidationInfo) -> Any:
        """A channel given some of its variables keeps its own defaults for the others (not
        ChannelSettings' own)."""
        default = cls.model_fields[str(info.field_name)].default
        if isinstance(default, ChannelSettings) and isinstance(given, dict):
            return {**default.model_dump(), **given}
        return given

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values given in code, then the environment; no .env file, no secrets directory."""
        return init_settings, _Environment(settings_cls)

    def broker_url(self) -> str:
        """The broker URL in force: BROKER_URL, else REDIS_URL."""
        return self.BROKER_URL or self.REDIS_URL

    def channel(self, prefix: str) -> ChannelSettings:
        """The retry and rate settings of the channel whose ``settings_prefix`` is ``prefix``."""
        found = getattr(self, prefix, None)
        if not isinstance(found, ChannelSettings):
            raise KeyError(f"no channel settings named {prefix!r}")
        return found

    def value(self, name: str) -> Any:
        """The value in force of the setting whose environment variable is ``name``."""
        return functools.reduce(getattr, SETTINGS[name].path, self)


def _described() -> dict[str, Setting]:
    """Every setting by its environment variable, in the order declared: a channel's four in
    its field's place, their meanings naming the channel."""
    described: dict[str, Setting] = {}
    defaults: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True, validated_data=defaults)
        defaults[name] = default
        if not isinstance(default, ChannelSettings):
            described[name] = _setting((name,), default, str(field.description), field)
            continue
        for suffix, part in ChannelSettings.model_fields.items():
            meaning = str(part.description).format(label=field.description)
            item = _setting((name, suffix), getattr(default, suffix), meaning, part)
            described[item.name] = item
    return described


def _setting(path: tuple[str, ...], default: Any, meaning: str, field: FieldInfo) -> Setting:
    kind = next(item for item in field.metadata if isinstance(item, Kind))
    secret = any(isinstance(item, Secret) for item in field.metadata)
    return Setting("_".join(path), default, meaning, kind, secret, path)


#: Every setting by its environment variable (SMS_MAX_RETRIES), as the README lists them.
SETTINGS: dict[str, Setting] = _described()


def markdown_table() -> str:
    """The settings as a Markdown table (the README's configuration section)."""
    rows = ["| Variable | Default | Allowed | Meaning |", "|---|---|---|---|"]
    for item in SETTINGS.values():
        default = "" if item.default == "" else f"`{item.default}`"
        rows.append(f"| `{item.name}` | {default} | {item.kind.allowed} | {item.meaning} |")
    return "\n".join(rows)


def load() -> Settings:
    """The settings in force, from the environment. A value outside its kind stops the
    process: each such value on stderr (``settings: NAME='value' is not <allowed values>``),
    exit status EXIT_INVALID."""
    try:
        return Settings()
    except ValidationError as invalid:
        for error in invalid.errors():
            if error["type"] != "default_factory_not_called":  # VAR_DIR's error says it
                name = "_".join(str(part) for part in error["loc"])
                print(f"settings: {SETTINGS[name].refusal(error['input'])}", file=sys.stderr)
        raise SystemExit(EXIT_INVALID) from None


settings = load()
