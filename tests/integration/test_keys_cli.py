"""``portcullis keys create --rpm/--tpm`` and ``keys limits`` on a migrated SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import load_settings
from gateway.storage.migrate import upgrade

pytestmark = pytest.mark.integration


def _run(cfg: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(cfg), *args])
    return result.exit_code, result.output


def test_a_key_gets_its_own_limits_and_they_can_be_changed(tmp_path: Path) -> None:
    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    upgrade(load_settings(cfg).database_url())
    code, out = _run(
        cfg, "keys", "create", "--user", "ci-bot", "--jurisdiction", "AU", "--sector", "private",
        "--rpm", "60", "--json",
    )  # fmt: skip
    assert code == 0, out
    made = json.loads(out)
    assert (made["requests_per_minute"], made["tokens_per_minute"]) == (60, None)
    key_id = made["key_id"]

    code, out = _run(cfg, "keys", "limits", key_id, "--tpm", "0")
    assert code == 0 and out.strip() == f"{key_id}: 60 rpm, unlimited tpm, default in flight", out
    code, out = _run(cfg, "keys", "limits", key_id, "--rpm", "default")
    assert code == 0 and out.strip() == f"{key_id}: default rpm, unlimited tpm, default in flight"
    code, out = _run(cfg, "keys", "list")
    assert code == 0 and "default rpm, unlimited tpm\tno expiry" in out
    code, out = _run(cfg, "keys", "limits", key_id, "--parallel", "3")
    assert code == 0 and out.strip() == f"{key_id}: default rpm, unlimited tpm, 3 in flight"
    code, out = _run(cfg, "keys", "list", "--json")
    assert [k["max_parallel"] for k in json.loads(out)] == [3]
    code, out = _run(cfg, "keys", "list")
    assert "unlimited tpm, 3 in flight\tno expiry" in out
    code, out = _run(cfg, "keys", "limits", key_id, "--parallel", "default")
    assert code == 0 and out.strip().endswith("default in flight")
    code, out = _run(
        cfg, "keys", "create", "--user", "batch", "--jurisdiction", "AU", "--sector", "private",
        "--parallel", "2", "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["max_parallel"] == 2

    code, out = _run(cfg, "keys", "limits", key_id, "--rpm", "-5")
    assert code != 0 and "--rpm" in out
    code, out = _run(cfg, "keys", "limits", "000000000000", "--rpm", "5")
    assert code != 0 and "no active key" in out
    code, out = _run(
        cfg, "keys", "create", "--user", "x", "--jurisdiction", "AU", "--sector", "private",
        "--rpm", "-1",
    )  # fmt: skip
    assert code != 0


def test_a_key_can_be_made_to_expire(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    upgrade(load_settings(cfg).database_url())
    base = ["keys", "create", "--user", "temp", "--jurisdiction", "AU", "--sector", "contractor"]
    code, out = _run(cfg, *base, "--expires-in", "90d", "--json")
    assert code == 0, out
    at = datetime.fromisoformat(json.loads(out)["expires_at"]).replace(tzinfo=UTC)
    assert abs(at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    code, out = _run(cfg, *base, "--expires-at", "2030-06-30T17:00:00+10:00", "--json")
    assert code == 0, out
    assert json.loads(out)["expires_at"].startswith("2030-06-30T07:00:00")  # stored as UTC
    for bad in (
        ["--expires-in", "90 days"],
        ["--expires-at", "tomorrow"],
        ["--expires-at", "2001-01-01"],
        ["--expires-in", "1d", "--expires-at", "2030-01-01"],
    ):
        code, out = _run(cfg, *base, *bad)
        assert code != 0 and "expires" in out, (bad, out)


def test_the_command_line_says_what_is_wrong_with_the_database_without_a_traceback(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    exe = str(Path(sys.executable).parent / "portcullis")

    def run(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "-c", str(cfg), *args], capture_output=True, text=True, timeout=60
        )

    fresh = tmp_path / "fresh.yaml"
    fresh.write_text(f"data_dir: {tmp_path / 'fresh'}\n")
    done = run(fresh, "keys", "list")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "run `portcullis db upgrade`" in done.stderr
    away = tmp_path / "away.yaml"
    away.write_text(  # a password in the URL must not be echoed
        f"data_dir: {tmp_path / 'away'}\n"
        "database: {url: 'postgresql+asyncpg://u:s3cret-pw@127.0.0.1:1/x'}\n"
    )
    done = run(away, "keys", "list")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "could not be reached" in done.stderr and "s3cret-pw" not in done.stderr
    assert run(fresh, "--help").returncode == 0
    assert run(fresh, "no-such-command").returncode == 2


def test_a_key_is_rotated_and_its_expiry_moved_from_the_command_line(tmp_path: Path) -> None:
    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    upgrade(load_settings(cfg).database_url())
    code, out = _run(
        cfg, "keys", "create", "--user", "svc", "--jurisdiction", "AU", "--sector", "private",
        "--tpm", "500", "--json",
    )  # fmt: skip
    assert code == 0, out
    old_id = json.loads(out)["key_id"]

    code, out = _run(cfg, "keys", "expiry", old_id, "--expires-at", "2031-02-03")
    assert code == 0 and out.strip() == f"{old_id}: expires 2031-02-03 00:00 UTC", out
    code, out = _run(cfg, "keys", "rotate", old_id, "--grace", "2h", "--json")
    assert code == 0, out
    new = json.loads(out)
    assert new["rotated_from"] == old_id and new["key"].startswith("pcs_")
    assert (new["tokens_per_minute"], new["expires_at"][:10]) == (500, "2031-02-03")
    assert new["replaced"]["revoked_at"] is None and new["replaced"]["expires_at"]
    code, out = _run(cfg, "keys", "rotate", new["key_id"])
    assert code == 0 and out.startswith("pcs_") and "revoked" in out, out
    code, out = _run(cfg, "keys", "rotate", new["key_id"])
    assert code != 0 and "no active key" in out
    code, out = _run(cfg, "keys", "expiry", old_id, "--never")
    assert code == 0 and out.strip() == f"{old_id}: no expiry", out  # still in its grace period
    for bad in (["--grace", "2 hours"], ["--grace", "31d"]):
        code, out = _run(cfg, "keys", "rotate", old_id, *bad)
        assert code != 0 and "grace" in out, (bad, out)
    for bad in ([], ["--never", "--expires-in", "1d"], ["--expires-at", "2001-01-01"]):
        code, out = _run(cfg, "keys", "expiry", old_id, *bad)
        assert code != 0, (bad, out)

    code, out = _run(cfg, "keys", "list", "--user", "svc", "--all")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 3, out  # the first key and its two successors
    assert f"replaces {old_id}" in lines[1] and lines[1].startswith(new["key_id"])
    assert _run(cfg, "keys", "list", "--user", "nobody") == (0, "")
    assert _run(cfg, "keys", "list", "--jurisdiction", "AU", "--json")[1].count("svc") == 2
    code, out = _run(cfg, "keys", "list", "--team", "a b")
    assert code != 0 and "team" in out


def test_a_keys_models_from_the_command_line(tmp_path: Path) -> None:
    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    upgrade(load_settings(cfg).database_url())
    code, out = _run(
        cfg, "keys", "create", "--user", "m", "--jurisdiction", "AU", "--sector", "private",
        "--model", "deepseek-chat", "--model", "gpt-4o", "--json",
    )  # fmt: skip
    assert code == 0, out
    made = json.loads(out)
    assert made["models"] == ["deepseek-chat", "gpt-4o"]
    code, out = _run(cfg, "keys", "list")
    assert code == 0 and "models deepseek-chat,gpt-4o" in out
    code, out = _run(cfg, "keys", "models", made["key_id"], "--model", "gpt-4o")
    assert code == 0 and out.strip() == f"{made['key_id']}: gpt-4o"
    code, out = _run(cfg, "keys", "models", made["key_id"], "--all")
    assert code == 0 and out.strip() == f"{made['key_id']}: every model"
    for bad in ([], ["--all", "--model", "x"], ["--model", "a b"]):
        code, out = _run(cfg, "keys", "models", made["key_id"], *bad)
        assert code != 0, (bad, out)


def test_a_keys_spend_budget_from_the_command_line(tmp_path: Path) -> None:
    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nbudgets: {{period: week}}\n")
    upgrade(load_settings(cfg).database_url())
    base = ["keys", "create", "--user", "spender", "--jurisdiction", "AU", "--sector", "private"]
    code, out = _run(cfg, *base, "--budget-usd", "12.5", "--json")
    assert code == 0, out
    made = json.loads(out)
    assert made["budget_usd"] == 12.5
    key_id = made["key_id"]
    code, out = _run(cfg, "keys", "list")
    assert code == 0 and "\tbudget US$12.50" in out, out
    code, out = _run(cfg, "keys", "budget", key_id, "0")
    assert code == 0 and out.strip() == f"{key_id}: budget none per week", out
    code, out = _run(cfg, "keys", "budget", key_id, "default")
    assert code == 0 and out.strip() == f"{key_id}: budget default (budgets.key_usd) per week"
    code, out = _run(cfg, "keys", "list", "--json")
    assert json.loads(out)[0]["budget_usd"] is None
    for bad in ("-3", "lots", "nan"):
        code, out = _run(cfg, "keys", "budget", key_id, bad)
        assert code != 0 and "budget" in out.lower(), (bad, out)
    code, out = _run(cfg, "keys", "budget", "000000000000", "5")
    assert code != 0 and "no active key" in out
    code, out = _run(cfg, *base, "--budget-usd", "-1")
    assert code != 0 and "--budget-usd" in out
    # a key's own period: at creation, changed, back to the gateway's
    code, out = _run(cfg, *base, "--budget-usd", "2", "--budget-period", "day", "--json")
    assert code == 0 and json.loads(out)["budget_period"] == "day", out
    daily = json.loads(out)["key_id"]
    code, out = _run(cfg, "keys", "budget", daily, "3", "--period", "month")
    assert code == 0 and out.strip() == f"{daily}: budget US$3.00 per month", out
    code, out = _run(cfg, "keys", "budget", daily, "3")  # the period left out: kept
    assert code == 0 and out.strip().endswith("per month"), out
    code, out = _run(cfg, "keys", "list")
    assert code == 0 and "\tbudget US$3.00 per month" in out, out
    code, out = _run(cfg, "keys", "budget", daily, "default")
    code, out = _run(cfg, "keys", "list")  # the period of its own, on the default amount
    assert code == 0 and "\tbudget default per month" in out, out
    code, out = _run(cfg, "keys", "budget", daily, "3", "--period", "default")
    assert code == 0 and out.strip().endswith("per week"), out  # budgets.period
    code, out = _run(cfg, "keys", "budget", daily, "3", "--period", "fortnight")
    assert code != 0 and "--period" in out


def test_every_key_of_a_person_is_revoked_from_the_command_line(tmp_path: Path) -> None:
    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    upgrade(load_settings(cfg).database_url())
    made = []
    for user in ("ola", "ola", "pia"):
        code, out = _run(
            cfg, "keys", "create", "--user", user, "--jurisdiction", "AU", "--sector", "private",
            "--json",
        )  # fmt: skip
        made.append(json.loads(out)["key_id"])
    code, out = _run(cfg, "keys", "revoke", "--user", "ola")
    assert code == 0 and out.splitlines()[:2] == [f"revoked {made[0]}", f"revoked {made[1]}"], out
    code, out = _run(cfg, "keys", "list", "--json")
    assert [k["key_id"] for k in json.loads(out)] == [made[2]]
    code, out = _run(cfg, "keys", "revoke", made[2], "--user", "pia")
    assert code != 0 and "not both" in out
    code, out = _run(cfg, "keys", "revoke")
    assert code != 0 and "not both" in out


def test_the_budgets_in_force_and_their_spend_from_the_command_line(tmp_path: Path) -> None:
    import sqlite3
    from datetime import UTC, datetime

    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    upgrade(load_settings(cfg).database_url())
    code, out = _run(cfg, "budgets")
    assert code == 0 and "no spend budget is in force" in out, out
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nbudgets: {{teams: {{ops: 500}}}}\n")
    code, out = _run(
        cfg, "keys", "create", "--user", "rae", "--jurisdiction", "AU", "--sector", "private",
        "--team", "ops", "--budget-usd", "20", "--json",
    )  # fmt: skip
    key_id = json.loads(out)["key_id"]
    period = datetime.now(UTC).strftime("%Y-%m")
    with sqlite3.connect(tmp_path / "data" / "portcullis.db") as db:  # as a replica's sync adds
        db.executemany(
            "INSERT INTO budget_spend (scope, period, microusd, updated_at) VALUES (?, ?, ?, ?)",
            [(f"key:{key_id}", period, 12_500_000, "2026-11-30 00:00:00"),
             ("team:ops", period, 12_500_000, "2026-11-30 00:00:00")],
        )  # fmt: skip
    code, out = _run(cfg, "budgets")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"period {period}, renews at ")
    assert "team\tops\tUS$12.50 of US$500.00\tUS$487.50 left" in lines
    assert f"key\t{key_id}\tUS$12.50 of US$20.00\tUS$7.50 left" in lines
    code, out = _run(cfg, "budgets", "--json")
    rows = {r["scope"]: r for r in json.loads(out)["data"]}
    assert rows["key"]["remaining_usd"] == 7.5 and rows["team"]["spent_usd"] == 12.5


def test_where_a_key_stands_from_the_command_line(tmp_path: Path) -> None:
    """``keys usage``: with Redis, the buckets and slots every replica shares (here: two
    requests a running gateway would have taken, one still in flight); without it, the limits
    are not known to a command line and it says so; the budgets come from the ledger."""
    import asyncio
    import secrets

    from gateway.redis_limiter import RedisLimiter
    from tests.support.services import REDIS_URL

    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nbudgets: {{user_usd: 3, period: week}}\n")
    upgrade(load_settings(cfg).database_url())
    code, out = _run(
        cfg, "keys", "create", "--user", f"u{secrets.token_hex(3)}", "--jurisdiction", "AU",
        "--sector", "private", "--rpm", "10", "--parallel", "2", "--budget-usd", "1", "--json",
    )  # fmt: skip
    assert code == 0, out
    key_id = json.loads(out)["key_id"]
    code, out = _run(cfg, "keys", "usage", key_id)
    assert code == 0 and "limits\tnot known here" in out, out
    assert "key budget\tUS$1.00 of US$1.00 left for 20" in out and "user budget\tUS$3.00" in out

    async def take() -> None:  # what a gateway sharing the Redis would have done
        lim = RedisLimiter(REDIS_URL, 600, 200_000)  # limits' defaults but the key's own rpm
        held = [await lim.reserve(key_id, 1, requests_per_minute=10, max_parallel=2)]
        held.append(await lim.reserve(key_id, 1, requests_per_minute=10, max_parallel=2))
        await lim.reconcile(held[0], 1)
        await lim.close()

    asyncio.run(take())
    shared = tmp_path / "shared.yaml"
    shared.write_text(cfg.read_text() + f"redis: {{url: '{REDIS_URL}'}}\n")
    code, out = _run(shared, "keys", "usage", key_id)
    assert code == 0, out
    assert "requests\t8 of 10 left this minute" in out and "in flight\t1 of at most 2" in out
    assert "of 200000 left this minute" in out  # tokens: the default, refilled within ms
    code, out = _run(shared, "keys", "usage", key_id, "--json")
    usage = json.loads(out)
    assert usage["limits"]["shared"] is True and usage["limits"]["in_flight"] == 1
    assert [b["scope"] for b in usage["budgets"]] == ["key", "user"]
    code, out = _run(shared, "keys", "usage", "000000000000")
    assert code != 0 and "no key with id" in out


def test_the_shared_limits_and_where_each_stands_from_redis(tmp_path: Path) -> None:
    """``portcullis limits``: every limit people's, teams' and tenants' keys share, each person
    with an active key under ``limits.user`` listed in their tenant, and — from the Redis the
    gateways share — what each one's buckets hold now; without Redis, the limits and a word
    that their standing is each gateway's own."""
    import asyncio
    import secrets

    from gateway.redis_limiter import RedisLimiter
    from tests.support.services import REDIS_URL

    team, ann = f"ops{secrets.token_hex(3)}", f"ann{secrets.token_hex(3)}"  # fresh buckets
    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "limits: {user: {requests_per_minute: 5}, "
        f"teams: {{{team}: {{requests_per_minute: 10, max_parallel: 3}}}}, "
        "tenants: {agency: {tokens_per_minute: 50000}}}\n"
    )
    upgrade(load_settings(cfg).database_url())
    for user in (ann, "bo"):
        code, out = _run(
            cfg, "keys", "create", "--user", user, "--jurisdiction", "AU", "--sector", "private",
            "--team", team,
        )  # fmt: skip
        assert code == 0, out
    code, out = _run(cfg, "limits")
    assert code == 0, out
    assert "each key (unless its own): 600 requests/min, 200,000 tokens/min" in out
    assert f"team\t{team}\t10 requests/min, 3 in flight\tnow: not known here" in out
    assert f"user\t{ann} (default)\t5 requests/min\tnow: not known here" in out
    assert "tenant\tagency\t50,000 tokens/min" in out

    async def take() -> None:  # what a gateway sharing the Redis did for one of ann's requests
        lim = RedisLimiter(REDIS_URL, 600, 200_000)
        await lim.reserve(f"team:{team}", 1, requests_per_minute=10, max_parallel=3)
        await lim.reserve(f"user:default|{ann}", 1, requests_per_minute=5)
        await lim.close()

    asyncio.run(take())
    shared = tmp_path / "shared.yaml"
    shared.write_text(cfg.read_text() + f"redis: {{url: '{REDIS_URL}'}}\n")
    code, out = _run(shared, "limits", "--json")
    assert code == 0, out
    got = json.loads(out)
    rows = {(r["scope"], r.get(r["scope"])): r for r in got["data"]}
    assert set(rows) == {("user", ann), ("user", "bo"), ("team", team), ("tenant", "agency")}
    assert rows[("team", team)]["standing"]["requests_left"] == 9
    assert rows[("team", team)]["standing"]["in_flight"] == 1
    assert rows[("user", ann)]["standing"]["requests_left"] == 4
    assert rows[("user", "bo")]["standing"]["requests_left"] == 5
    assert rows[("user", ann)]["named"] is False and rows[("user", ann)]["tenant"] == "default"
    assert (got["shadow"], got["window"]) == (False, "bucket")
    code, out = _run(shared, "limits")
    assert (
        f"team\t{team}\t10 requests/min, 3 in flight\tnow: 9 requests left, 1 of 3 in flight" in out
    )

    async def take_in_the_window() -> None:  # the same gateways, counting a sliding minute
        lim = RedisLimiter(REDIS_URL, 600, 200_000, window=True)
        for _ in range(3):
            await lim.reserve(f"team:{team}", 1, requests_per_minute=10)
        await lim.close()

    asyncio.run(take_in_the_window())
    sliding = tmp_path / "sliding.yaml"
    sliding.write_text(shared.read_text().replace("limits: {", "limits: {window: sliding, ", 1))
    code, out = _run(sliding, "limits")
    assert code == 0, out
    assert "each key (unless its own): 600 requests/min, 200,000 tokens/min\t" in out
    assert "a minute counted as a sliding window" in out
    # the window's three, not the bucket's one; the slot in flight is the same either way
    assert f"team\t{team}\t10 requests/min, 3 in flight\tnow: 7 requests left, 1 of 3" in out
