"""The seed systems' APIs, served in their own words: each module is a *dialect*, a thin
translation of one seed's requests into Herald's core and of Herald's answers back (no tables,
no business rules of its own), mounted under ``/compat/<seed>``.

A client written against Mambu, Hackney or NotifyBC moves to Herald by changing its base URL
to ``<herald>/compat/mambu``, ``/compat/hackney`` or ``/compat/notifybc``. (MNotify's forms are
Herald's own: ``/v1`` takes them.)
"""

from __future__ import annotations

from api.compat import hackney, mambu, notifybc
from api.compat.dialect import Dialect

#: Every dialect, in the order they are mounted.
DIALECTS: tuple[Dialect, ...] = (mambu.DIALECT, hackney.DIALECT, notifybc.DIALECT)
