"""What the invariant test's rules draw: texts (a lone surrogate among them), recipients, send
requests and contact-import rows. Recipients and rows are drawn as small specs the machine
resolves against its model (a known contact by index, an unknown IDNP by number)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.invariants.mail import KINDS

DAY = 86_400
LANGUAGES = ("ro", "ru", "en")
SERVICES = ("permits", "arrears")
USERS = ("user-1", "user-2")
#: Characters the texts are made of: Romanian, Cyrillic, digits, punctuation; and one lone
#: surrogate, which JSON can carry but UTF-8 cannot.
CHARACTERS = list("abcxyz ĂăÎîȘșȚț ЖжЯя 0123 .,!?-'\"")
LONE_SURROGATE = "\ud800"
QUIET_HOURS = (
    {"start": "22:00", "end": "06:00", "timezone": "UTC"},
    {"start": "00:00", "end": "23:59", "timezone": "Europe/Chisinau"},
)


def texts(*, newlines: bool = False, max_size: int = 12) -> st.SearchStrategy[str]:
    alphabet = CHARACTERS + ["\n"] * newlines + [LONE_SURROGATE]
    return st.text(alphabet=st.sampled_from(alphabet), min_size=1, max_size=max_size)


#: Address kinds, accepted ones twice as often.
EMAIL_KINDS = st.sampled_from(["ok", *KINDS])


def emails() -> st.SearchStrategy[tuple]:
    return st.tuples(st.just("email"), EMAIL_KINDS, st.integers(0, 2))


def recipients() -> st.SearchStrategy[tuple]:
    """("email", kind, n) | ("user", name) | ("known", index) | ("unknown", n); emails and
    registered people more often."""
    return st.one_of(
        emails(),
        emails(),
        st.tuples(st.just("user"), st.sampled_from(USERS)),
        st.tuples(st.just("known"), st.integers(0, 99)),
        st.tuples(st.just("known"), st.integers(0, 99)),
        st.tuples(st.just("unknown"), st.integers(0, 2)),
    )


#: Seconds from now: when to send (None: at once), how long it stays valid (None: always).
SEND_IN = st.sampled_from([None, None, 30, 900, 3 * DAY])
VALID_FOR = st.sampled_from([None, None, None, 90, 3 * DAY])


def sends() -> st.SearchStrategy[dict]:
    """A POST /v1/notifications with a message of its own."""
    return st.fixed_dictionaries(
        {
            "sender": st.sampled_from("ab"),
            "recipients": st.lists(recipients(), min_size=1, max_size=3),
            "subject": texts(),
            "body": texts(newlines=True),
            "send_in": SEND_IN,
            "valid_for": VALID_FOR,
            "channels": st.sampled_from([None, None, ["email"], ["inapp"], ["email", "inapp"]]),
            "policy": st.sampled_from(["all", "all", "fallback"]),
        }
    )


def template_sends() -> st.SearchStrategy[dict]:
    """A POST /v1/notifications with a template and its attributes; ``amount`` "abc" is a
    number the template's ``number`` filter cannot format."""
    return st.fixed_dictionaries(
        {
            "sender": st.sampled_from("ab"),
            "template": st.sampled_from(["tpl-a", "tpl-b"]),
            "recipients": st.lists(
                st.one_of(emails(), st.tuples(st.just("user"), st.sampled_from(USERS))),
                min_size=1,
                max_size=2,
            ),
            "who": texts(),
            "amount": st.sampled_from([None, None, 7, 1500, "abc"]),
            "send_in": SEND_IN,
        }
    )


def broadcasts() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "sender": st.sampled_from("ab"),
            "service": st.sampled_from(SERVICES),
            "channels": st.sampled_from([None, ["email"], ["inapp"], ["email", "inapp"]]),
            "subject": texts(),
            "body": texts(newlines=True),
            "send_in": SEND_IN,
        }
    )


def import_rows() -> st.SearchStrategy[list[dict]]:
    """Rows of a contact import, each naming a person (known by index, new by number, or an
    invalid IDNP) and only some fields; the machine resolves them."""
    row = st.fixed_dictionaries(
        {
            "person": st.one_of(
                st.tuples(st.just("known"), st.integers(0, 99)),
                st.tuples(st.just("new"), st.integers(0, 5)),
                st.tuples(st.just("invalid"), st.integers(0, 5)),
            )
        },
        optional={
            "name": texts(),
            "preferredLanguage": st.sampled_from(LANGUAGES),
            "district": texts(),
            "quietHours": st.sampled_from(QUIET_HOURS),
            "emails": st.lists(st.tuples(EMAIL_KINDS, st.integers(0, 2)), max_size=2),
        },
    )
    return st.lists(row, min_size=1, max_size=4)
