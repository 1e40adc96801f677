"""The Herald-Signature scheme, as receivers check it."""

import hashlib
import hmac

import pytest

from channels.signing import sign, verify

SECRET = "5f1c0e8a9b7d4c3e2f1a0b9c8d7e6f5a"
BODY = b'{"messageId":"0190","state":"sent"}'
NOW = 1_700_000_000


def test_the_header_is_the_documented_hmac():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, now=NOW) == f"t={NOW},v1={expected}"


def test_a_signature_verifies_with_the_same_secret_and_body():
    assert verify(SECRET, BODY, sign(SECRET, BODY, now=NOW), now=NOW + 10)
    assert verify(SECRET, BODY, sign(SECRET, BODY))


@pytest.mark.parametrize(
    ("secret", "body"),
    [("another-secret", BODY), (SECRET, BODY + b" "), (SECRET, BODY.replace(b"sent", b"failed"))],
)
def test_another_secret_or_body_does_not_verify(secret, body):
    assert not verify(secret, body, sign(SECRET, BODY, now=NOW), now=NOW)


@pytest.mark.parametrize("age", [301, -301, 86400])
def test_stale_or_future_timestamps_are_refused(age):
    assert not verify(SECRET, BODY, sign(SECRET, BODY, now=NOW), now=NOW + age)
    assert verify(SECRET, BODY, sign(SECRET, BODY, now=NOW), now=NOW + age, tolerance_seconds=10**6)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        f"t={NOW}",
        f"t=soon,v1={'0' * 64}",
        f"t=١٧٠٠٠٠٠٠٠٠,v1={'0' * 64}",
        f"t={NOW},v1=é",
        f"t={NOW},v1=" + "0" * 2000,
    ],
)
def test_malformed_headers_are_refused(header):
    assert not verify(SECRET, BODY, header, now=NOW)


def test_any_matching_v1_verifies_leaving_room_to_sign_with_two_secrets():
    signed = sign(SECRET, BODY, now=NOW)
    other = sign("old-secret", BODY, now=NOW).split(",")[1]
    assert verify(SECRET, BODY, f"{signed},{other}", now=NOW)
    assert verify("old-secret", BODY, f"{signed},{other}", now=NOW)
