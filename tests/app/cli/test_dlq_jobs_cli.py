"""``payops dlq`` jobs, outcomes and the replay gate on the command line, against the
real broker and Redis."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import exit_codes
from app.cli.dlq_jobs import percent, rate
from services.workbench.actions.jobs import JobState, JobStore, Pace, runner_token
from services.workbench.store import ParkingStore
from tests.app.cli.dlq_kit import Setup
from tests.helpers.action_kit import Broker, payment

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(amqp_url: str, redis_url: str, unique_prefix: str, tmp_path: Path) -> Iterator[Setup]:
    state = Setup(amqp_url, redis_url, unique_prefix, tmp_path)
    yield state
    state.cleanup()


def test_a_bulk_requeue_is_a_job_with_counters_and_outcomes_and_the_gate_holds_a_twin(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.dead_letter([payment(1), payment(2), payment(1)])
    assert setup.cli("park", "--once") == exit_codes.OK
    capsys.readouterr()
    assert setup.cli("requeue", "--all-matching", "--dry-run") == exit_codes.OK
    dry = capsys.readouterr().out
    assert "1 held back by the replay gate (entry " in dry
    assert setup.cli("requeue", "--all-matching", "--yes", "--note", "acquirer back") == 0
    captured = capsys.readouterr()
    assert "2 requeued to" in captured.out
    found = re.search(r"job ([0-9a-f]+): follow its outcomes", captured.err)
    assert found is not None, captured.err
    job_id = found.group(1)

    assert setup.cli("jobs", "--json") == exit_codes.OK
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["job_id"] == job_id and listed["state"] == "done"
    assert listed["counts"] == {"done": 2, "skipped": 0, "held": 1, "failed": 0}
    assert listed["outcomes"]["pending"] == 2
    assert listed["note"] == "note: acquirer back"

    assert setup.cli("jobs") == exit_codes.OK
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["JOB", "ACTION", "OPERATOR", "STARTED", "STATE", "OUTCOMES"]
    assert table[1].split()[:3] == [job_id, "requeue", "cli-tester"]
    assert table[1].endswith("2 pending  [2 done, 1 held]")

    assert setup.cli("job", job_id) == exit_codes.OK
    text = capsys.readouterr().out
    assert "outcomes     2 pending" in text
    assert "full speed" in text

    sent = [i for i in setup.ids() if setup.state(i).value == "requeued"]
    assert setup.cli("show", sent[0], "--json") == exit_codes.OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["outcome"]["outcome"] == "pending" and shown["outcome"]["job"] == job_id
    assert setup.cli("list", "--json") == exit_codes.OK
    listed_outcomes = sorted(str(row["outcome"]) for row in json.loads(capsys.readouterr().out))
    assert listed_outcomes == ["None", "pending", "pending"]
    assert setup.cli("show", sent[0]) == exit_codes.OK
    assert f"outcome      pending  (job {job_id})" in capsys.readouterr().out

    assert setup.cli("job", "pause", job_id) == exit_codes.FAILED
    assert "is done: cannot pause it" in capsys.readouterr().err
    assert setup.cli("job", "nonsense") == exit_codes.FAILED
    assert "no job nonsense" in capsys.readouterr().err
    assert setup.cli("job", "halt", job_id) == exit_codes.USAGE
    assert "usage: payops dlq job ID" in capsys.readouterr().err


def test_force_needs_a_note_and_bad_paces_are_refused(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.dead_letter([payment(1)])
    assert setup.cli("park", "--once") == exit_codes.OK
    (entry,) = setup.ids()
    capsys.readouterr()
    assert setup.cli("requeue", entry, "--force", "--yes") != exit_codes.OK
    assert "--force needs --note" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        setup.cli("requeue", entry, "--rate", "0/s")
    assert "a rate must be more than 0" in capsys.readouterr().err
    assert setup.state(entry).value == "parked"


def test_rate_and_percent_words() -> None:
    assert rate("50/s") == 50
    assert rate("600/min") == 10
    assert rate("2.5") == 2.5
    assert percent("10%") == 10


def test_job_resume_records_who_resumed_it_and_the_note(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    async def paused_job(broker: Broker, store: ParkingStore) -> str:
        jobs = JobStore(store.redis, store.prefix)
        job_id = await jobs.create(
            "requeue", operator="alice", host="h", note="", target="t", pace=Pace(rate=1)
        )
        assert await jobs.claim_runner(job_id, runner_token())  # its runner is alive
        moved, _ = await jobs.set_state(
            job_id, JobState.PAUSED, "paused by alice", only_from=(JobState.RUNNING,)
        )
        assert moved
        return job_id

    job_id = setup.call(paused_job)
    note = "issuer back, card 4111 1111 1111 1111"
    assert setup.cli("job", "resume", job_id, "--note", note) == exit_codes.OK
    assert "resumed; its runner goes on" in capsys.readouterr().err
    assert setup.cli("job", job_id, "--json") == exit_codes.OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "running"
    assert shown["reason"] == "resumed by cli-tester: issuer back, card 411111******1111"
    assert setup.cli("job", job_id) == exit_codes.OK
    assert "(running: resumed by cli-tester: issuer back" in capsys.readouterr().out


def test_job_says_its_count_once(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    setup.dead_letter([payment(1), payment(2)])
    assert setup.cli("park", "--once") == exit_codes.OK
    ids = setup.ids()
    capsys.readouterr()
    assert setup.cli("requeue", *ids, "--yes") == exit_codes.OK
    found = re.search(r"job ([0-9a-f]+)", capsys.readouterr().err)
    assert found is not None
    assert setup.cli("job", found.group(1)) == exit_codes.OK
    target = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("target"))
    assert target.split(None, 1)[1] == "2 selected entries"  # not "... (2 selected)"
