"""The invariant test's state machine: Herald's public operations as rules, its promises as
invariants checked after every step (see ``test_invariants`` for how to run it)."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from channels import REGISTRY
from models.message import Message
from models.notification import Notification
from models.states import FINAL, MessageState
from scheduler import jobs
from tasks.deliver import enqueue
from tests.invariants import checks, requests
from tests.invariants.harness import Harness
from tests.invariants.mail import address
from tests.invariants.model import ExpectedContact, ExpectedTemplate, Model
from tests.invariants.strategies import (
    DAY,
    SERVICES,
    broadcasts,
    import_rows,
    sends,
    template_sends,
    texts,
)
from tests.invariants.system import kill_worker_process, settle

JOBS = ("replay", "send_scheduled", "expire_lapsed", "auto_resend", "purge")
CANCELLABLE = (
    MessageState.SCHEDULED,
    MessageState.QUEUED,
    MessageState.RETRYING,
    MessageState.HELD,
)
EDITS = ("put", "name", "description", "contents")


class HeraldMachine(RuleBasedStateMachine):
    """Two senders: ``a`` may only send; ``b`` may also resend failed messages and read and
    write contacts. Every rule ends with the queues drained (:func:`settle`)."""

    def __init__(self, harness: Harness) -> None:
        super().__init__()
        self.harness = harness
        self.senders = harness.reset()
        self.model = Model()
        self.client = harness.app.test_client()
        for who in "ab":
            code, name = f"tpl-{who}", f"Template {who}"
            body = requests.template(code, 1, name, category="housing")
            assert self.call("post", "/v1/templates", who, json=body).status_code == 201
            self.model.templates[code] = ExpectedTemplate(code, who, name, category="housing")
        self.register_people()

    def teardown(self) -> None:
        self.harness.recover()

    def register_people(self) -> None:
        """Three people to start with, two of them subscribed to a service."""
        rows = requests.PEOPLE
        assert self.call("post", "/v1/contacts/import", "b", json=rows).status_code == 200
        for row, service in zip(rows, SERVICES + SERVICES, strict=False):
            self.model.contacts[row["idnp"]] = contact = ExpectedContact(row["idnp"])
            contact.apply(row)
            path = f"/v1/contacts/{row['idnp']}/subscriptions"
            assert self.call("post", path, "b", json={"serviceName": service}).status_code == 201
            contact.subscriptions.add(service)

    # --- helpers -------------------------------------------------------------------------
    def call(self, method: str, path: str, who: str, **kwargs):
        """An API call as sender ``who``; no answer is ever a 5xx."""
        headers = {**self.senders[who].headers, **kwargs.pop("headers", {})}
        response = getattr(self.client, method)(path, headers=headers, **kwargs)
        assert response.status_code < 500, (
            f"{method.upper()} {path} answered {response.status_code}: {response.get_data()!r}"
        )
        return response

    def settle(self) -> None:
        settle(self.harness.broker, self.harness.worker)

    def now(self):
        return self.harness.clock.now()

    def submit(self, who: str, body: dict, email_body: str | None, fans_out: bool):
        """POST a notification; when accepted, remember the body its emails must carry and
        check that it does not claim to be over before its fan-out."""
        response = self.call("post", "/v1/notifications", who, json=body)
        if response.status_code != 202:
            return None
        posted = response.get_json()
        if email_body is not None:
            self.model.bodies[posted["id"]] = email_body
        if posted["messages"] or fans_out:
            assert posted["state"] == "pending", (
                f"notification {posted['id']} was accepted as {posted['state']!r} with its "
                "messages and fan-out still to come"
            )
        return posted

    def send_one(self, spec: dict):
        body = requests.notification(spec, self.model, self.now())
        fans_out = any(r["type"] == "idnp" for r in body["recipients"])
        plain = requests.plain(spec["body"]) and requests.plain(spec["subject"])
        return self.submit(spec["sender"], body, spec["body"] if plain else None, fans_out)

    def states(self, notification_id) -> dict:
        rows = Message.select(Message.id, Message.state).where(
            Message.notification == notification_id
        )
        return {str(m.id): m.state for m in rows}

    # --- sending ---------------------------------------------------------------------------
    @initialize(may_kill=st.sampled_from([False, False, True]))
    def choose_faults(self, may_kill):
        """Whether this sequence may SIGKILL a worker process (a third of them: it costs a
        process start)."""
        self.model.may_kill = may_kill

    @rule(spec=sends())
    def send(self, spec):
        self.send_one(spec)
        self.settle()

    @rule(spec=template_sends())
    def send_with_template(self, spec):
        template = self.model.templates[spec["template"]]
        email_body = requests.templated_email_body(spec, template.revision)
        body = requests.templated(spec, self.model, self.now())
        posted = self.submit(spec["sender"], body, email_body, fans_out=False)
        if posted and spec["amount"] == "abc":
            self.model.unrenderable.add(posted["id"])
        self.settle()

    @rule(spec=broadcasts())
    def broadcast(self, spec):
        plain = requests.plain(spec["body"]) and requests.plain(spec["subject"])
        fans_out = spec["channels"] != ["inapp"]
        body = requests.broadcast(spec, self.now())
        self.submit(spec["sender"], body, spec["body"] if plain else None, fans_out)
        self.settle()

    @rule(pick=st.integers(0, 10**6), who=st.sampled_from("ab"))
    def cancel(self, pick, who):
        notifications = list(Notification.select().order_by(Notification.id))
        if not notifications:
            return
        notification = notifications[pick % len(notifications)]
        before = self.states(notification.id)
        response = self.call("delete", f"/v1/notifications/{notification.id}", who)
        if notification.sender_id != self.senders[who].sender.id:
            assert response.status_code == 404, f"another sender's cancel: {response.status_code}"
            assert self.states(notification.id) == before, "another sender's cancel changed it"
        elif response.status_code == 204:
            left = [s for s in self.states(notification.id).values() if s in CANCELLABLE]
            assert not left, f"cancelled notification {notification.id} still has {left}"
        else:
            assert response.status_code == 409, f"cancel answered {response.status_code}"
        self.settle()

    @rule(
        picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=3),
        pool=st.sampled_from(["own failed", "failed", "any"]),
        who=st.sampled_from("abb"),
    )
    def resend(self, picks, pool, who):
        query = Message.select(Message.id, Message.sender, Message.state).order_by(Message.id)
        if pool != "any":
            query = query.where(Message.state == MessageState.FAILED)
        if pool == "own failed":
            query = query.where(Message.sender == self.senders["b"].sender.id)
        candidates = list(query) or list(Message.select(Message.id, Message.sender, Message.state))
        if not candidates:
            return
        chosen = [candidates[pick % len(candidates)] for pick in picks]
        body = {"action": "resend", "identifiers": [str(m.id) for m in chosen]}
        response = self.call("post", "/v1/messages", who, json=body)
        resendable = len({m.id for m in chosen}) == len(chosen) and all(
            m.state == MessageState.FAILED and m.sender_id == self.senders[who].sender.id
            for m in chosen
        )
        if who == "a":
            assert response.status_code == 403, f"resend without the grant: {response.status_code}"
        elif not resendable:
            assert response.status_code == 400, f"resend of {body} answered {response.status_code}"
        else:
            assert response.status_code in (200, 400), f"resend answered {response.status_code}"
        self.settle()

    # --- contacts and templates ------------------------------------------------------------
    @rule(specs=import_rows(), as_csv=st.booleans(), who=st.sampled_from("bbba"))
    def import_contacts(self, specs, as_csv, who):
        rows, invalid = requests.import_rows(specs, self.model, as_csv)
        if as_csv:
            data = requests.csv_text(rows).encode()
            kwargs = {"data": data, "headers": {"Content-Type": "text/csv"}}
        else:
            kwargs = {"json": rows}
        response = self.call("post", "/v1/contacts/import", who, **kwargs)
        if who == "a":
            assert response.status_code == 403, f"import without the grant: {response.status_code}"
            return
        if response.status_code == 400:
            assert not requests.plain_data(rows), f"import refused: {rows}"
            return
        assert response.status_code == 200, f"import answered {response.status_code}"
        rejected = {error["row"] for error in response.get_json()["errors"]}
        assert invalid <= rejected, f"rows {sorted(invalid - rejected)} have invalid IDNPs"
        for number in rejected - invalid:
            assert not requests.plain_data(rows[number - 1]), f"row {number} rejected: {rows}"
        for number, row in enumerate(rows, start=1):
            if number not in rejected:
                contact = self.model.contacts.setdefault(row["idnp"], ExpectedContact(row["idnp"]))
                contact.apply(row)
        self.settle()

    @rule(pick=st.integers(0, 99), service=st.sampled_from(SERVICES), who=st.sampled_from("bba"))
    def subscribe(self, pick, service, who):
        person = self.model.known_idnp(pick)
        if person is None:
            return
        path = f"/v1/contacts/{person}/subscriptions"
        response = self.call("post", path, who, json={"serviceName": service})
        if who == "a":
            assert response.status_code == 403, (
                f"subscribe without the grant: {response.status_code}"
            )
            return
        assert response.status_code in (201, 409), f"subscribe answered {response.status_code}"
        self.model.contacts[person].subscriptions.add(service)

    @rule(
        code=st.sampled_from(["tpl-a", "tpl-b"]),
        who=st.sampled_from("ab"),
        edit=st.sampled_from(EDITS),
        text=texts(),
    )
    def edit_template(self, code, who, edit, text):
        expected = self.model.templates[code]
        path = f"/v1/templates/{code}"
        etag = self.call("get", path, who).headers.get("ETag")
        headers = {"If-Match": etag} if etag else {}
        revision = expected.revision + 1
        if edit == "put":
            fields = {"description": text, "category": "housing"}
            body = requests.template(code, revision, text, **fields)
            del body["code"]
            response = self.call("put", path, who, json=body, headers=headers)
        else:
            body = {"contents": requests.contents(revision)} if edit == "contents" else {edit: text}
            response = self.call("patch", path, who, json=body, headers=headers)
        if who != expected.owner:
            assert response.status_code in (400, 403, 404), (
                f"another sender's edit: {response.status_code}"
            )
            return
        if response.status_code == 400 and not requests.plain(text):
            return
        assert response.status_code == 200, (
            f"{edit} {body} answered {response.status_code}: {response.get_json()}"
        )
        if edit in ("put", "name"):
            expected.name = text
        if edit in ("put", "description"):
            expected.description = text
        if edit in ("put", "contents"):
            expected.revision = revision
        got = response.get_json()
        kept = {
            "name": got["name"],
            "description": got["description"],
            "category": got["category"],
            "contents": got["contents"],
        }
        wanted = {
            "name": expected.name,
            "description": expected.description,
            "category": expected.category,
            "contents": requests.contents(expected.revision),
        }
        assert kept == wanted, f"after a {edit} edit the template is {kept}, expected {wanted}"

    # --- time, workers and the broker ------------------------------------------------------
    @rule(
        seconds=st.sampled_from([10, 70, 130, 3700, 2 * DAY + 3600]),
        order=st.permutations(JOBS),
        schedulers=st.integers(1, 2),
    )
    def advance_clock(self, seconds, order, schedulers):
        """Time passes; the scheduler's jobs run (twice: two schedulers acting at once)."""
        self.harness.clock.advance(seconds)
        for _ in range(schedulers):
            for name in order:
                self.run_job(name)
        self.settle()

    def run_job(self, name: str) -> None:
        now = self.now()
        if name == "purge":
            unfinished = {
                str(m.id): m.notification_id
                for m in Message.select(Message.id, Message.notification).where(
                    Message.state.not_in(FINAL)
                )
            }
        getattr(jobs, name)(now)
        if name == "replay":
            self.model.replayed_at = now
        elif name == "send_scheduled":
            self.model.released_at = now
        elif name == "purge":
            purged = {
                n.id
                for n in Notification.select(Notification.id).where(
                    Notification.purged_at.is_null(False)
                    & Notification.id.in_(list(set(unfinished.values())) or [None])
                )
            }
            self.model.purged_unfinished |= {m for m, n in unfinished.items() if n in purged}

    @rule(threads=st.integers(1, 3), spec=st.none() | sends())
    def restart_worker(self, threads, spec):
        """The worker restarts (a deploy), maybe just after a send, with its jobs in flight."""
        if spec is not None:
            self.send_one(spec)
        self.harness.worker.restart(threads)
        self.settle()

    @rule(picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
    def redeliver(self, picks):
        """The broker hands out jobs again (delivery is at least once): deliver jobs for
        messages in any state."""
        messages = list(
            Message.select(Message.id, Message.channel)
            .where(Message.channel.in_(list(REGISTRY)))
            .order_by(Message.id)
        )
        if messages:
            chosen = [messages[pick % len(messages)] for pick in picks]
            enqueue([(str(m.id), m.channel) for m in chosen])
        self.settle()

    @precondition(lambda self: self.model.may_kill)
    @rule()
    def kill_worker_process(self):
        """A ``dramatiq tasks.worker`` process SIGKILLed inside an SMTP transaction."""
        harness = self.harness
        with harness.worker.paused():
            harness.smtp.stall_next()
            try:
                body = {
                    "recipients": [{"type": "email", "value": address("ok", 9)}],
                    "message": {"subject": "Killed", "body": "In flight"},
                }
                posted = self.submit("a", body, "In flight", fans_out=False)
                assert posted, "the notification to be sent by the killed worker was refused"
                job = [(posted["messages"][0]["id"], "email")]
                kill_worker_process(
                    harness.broker,
                    harness.process_env,
                    harness.clock.now().isoformat(),
                    harness.smtp.stalled.wait,
                    lambda: enqueue(job, quiet=True),
                )
            finally:
                harness.smtp.release()
        sending = Message.select(Message.id).where(Message.state == MessageState.SENDING)
        self.model.orphans |= {str(m.id) for m in sending}
        self.model.may_kill = False
        self.settle()

    @rule(before=st.lists(sends(), max_size=2), during=st.lists(sends(), min_size=1, max_size=2))
    def broker_outage(self, before, during):
        """Jobs enqueued while no worker takes them, then the broker goes down (a Redis of
        our own restarts empty: they are lost) while more is sent."""
        with self.harness.worker.paused():
            for spec in before:
                self.send_one(spec)
            with self.harness.broker.outage():
                for spec in during:
                    self.send_one(spec)
        self.settle()

    # --- the promises ----------------------------------------------------------------------
    @invariant()
    def accepted_means_delivered_or_explained(self):
        checks.accepted_means_explained(self.model)
        checks.fallback_chains_move(self.model)
        checks.fanouts_finish(self.model)
        checks.render_errors_are_permanent(self.model)
        assert not self.harness.job_errors, f"jobs failed: {self.harness.job_errors}"

    @invariant()
    def sent_at_most_once_per_attempt(self):
        checks.sent_at_most_once_per_attempt(self.harness.smtp)
        checks.emails_carry_their_body(self.model, self.harness.smtp)

    @invariant()
    def nobody_reads_what_is_not_theirs(self):
        checks.nobody_reads_what_is_not_theirs(self.call, self.senders)

    @invariant()
    def writes_keep_what_they_do_not_mention(self):
        checks.writes_keep_what_they_do_not_mention(self.model)

    @invariant()
    def retention_leaves_nothing_of_the_person(self):
        checks.retention_leaves_nothing(self.model)
