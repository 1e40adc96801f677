"""The group commit: threads' writes committed together, and failed together only when nothing
of the batch could be committed; with real threads on the real database."""

import threading

from models.base import utcnow
from models.db import GroupCommit, GroupCommitInterrupted, database, run_sql
from models.server_secret import ServerSecret
from tests.support import wait_until

THREADS = 5


class Interrupt(BaseException):
    """Stands for Dramatiq's TimeLimitExceeded or a KeyboardInterrupt: not an Exception."""


def insert_row(name: str) -> None:
    run_sql(
        'INSERT INTO "server_secret" ("name", "value", "created_at") VALUES (?, ?, ?)',
        (name, "x", ServerSecret.created_at.db_value(utcnow())),
    )


def one_batch(fails_with: type[BaseException]) -> tuple[dict, list[str]]:
    """Queue THREADS writes behind a first one that holds the writer's turn, so they are
    committed as one batch; the third of them to run raises ``fails_with``. Returns what
    each thread's ``run`` returned or raised, and the order the writes ran in."""
    commit = GroupCommit()
    entered, release = threading.Event(), threading.Event()
    ran: list[str] = []
    outcomes: dict[str, object] = {}

    def hold_the_turn():
        entered.set()
        release.wait(30)

    def write(name: str):
        def work():
            ran.append(name)
            insert_row(name)
            if len(ran) == 3:
                raise fails_with(f"raised by {name}'s write")
            return name

        return work

    def thread(name: str, work) -> None:
        try:
            outcomes[name] = commit.run(work)
        except BaseException as error:
            outcomes[name] = error
        finally:
            database.close()

    first = threading.Thread(target=thread, args=("first", hold_the_turn))
    first.start()
    assert entered.wait(10)
    names = [f"w{index}" for index in range(THREADS)]
    threads = [threading.Thread(target=thread, args=(n, write(n))) for n in names]
    for started in threads:
        started.start()
    wait_until(lambda: len(commit._queue) == THREADS)
    release.set()
    for started in [first, *threads]:
        started.join(30)
    assert outcomes.pop("first") is None
    return outcomes, ran


def stored() -> set[str]:
    return {row.name for row in ServerSecret.select()}


def test_an_interrupt_mid_batch_fails_every_waiter_and_commits_nothing(db):
    outcomes, ran = one_batch(fails_with=Interrupt)

    assert len(ran) == 3
    never_run = set(outcomes) - set(ran)
    assert len(never_run) == THREADS - 3
    interrupted = [name for name, got in outcomes.items() if isinstance(got, Interrupt)]
    assert len(interrupted) == 1  # the thread whose turn it was is still interrupted
    for name, got in outcomes.items():
        if name not in interrupted:
            assert isinstance(got, GroupCommitInterrupted), (name, got)
    assert {name for name in never_run if isinstance(outcomes[name], BaseException)} == never_run
    assert stored() == set()


def test_a_failing_write_fails_alone_and_the_rest_of_its_batch_is_committed(db):
    outcomes, ran = one_batch(fails_with=ValueError)

    faulty = ran[2]
    assert isinstance(outcomes[faulty], ValueError)
    assert str(outcomes[faulty]) == f"raised by {faulty}'s write"
    assert {name: got for name, got in outcomes.items() if name != faulty} == {
        name: name for name in outcomes if name != faulty
    }
    assert stored() == set(outcomes) - {faulty}
