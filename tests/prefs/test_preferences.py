"""The preferences store against moto over HTTP, with our fast client and with aiobotocore."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prefs_helpers import (
    PREFS,
    Hanging,
    Unprocessing,
    create_preferences_table,
    put_user,
    run,
    table_items,
)

from notifier.preferences import (
    Preferences,
    PreferencesError,
    PreferencesStore,
    address_fingerprint,
)
from notifier.retry import Backoff, Deadline

KINDS = ["fast", "aiobotocore"]


@pytest.fixture
def table(aws: str) -> str:
    """GIVEN the preferences table in moto."""
    create_preferences_table()
    return PREFS


# -- pure parts -------------------------------------------------------------------------------


def test_fingerprint_ignores_case_and_surrounding_space() -> None:
    # GIVEN one address spelled three ways, and another address
    spellings = ["alice@example.com", "  Alice@Example.COM\n", "ALICE@EXAMPLE.COM"]
    # WHEN each is fingerprinted
    prints = {address_fingerprint(a) for a in spellings}
    # THEN they agree, the form is "sha256:" + 32 hex digits, no address is in it
    assert len(prints) == 1
    (fp,) = prints
    assert fp.startswith("sha256:")
    assert len(fp) == len("sha256:") + 32
    assert int(fp.removeprefix("sha256:"), 16) >= 0
    assert "alice" not in fp
    assert address_fingerprint("bob@example.com") != fp


@pytest.mark.parametrize(
    ("opt_out", "blocked"),
    [
        ("friend_request:email", {("friend_request", "email")}),
        ("friend_request:*", {("friend_request", "email"), ("friend_request", "sms")}),
        ("*:email", {("friend_request", "email"), ("profile_view", "email")}),
        (
            "*:*",
            {
                ("friend_request", "email"),
                ("friend_request", "sms"),
                ("profile_view", "email"),
                ("profile_view", "sms"),
            },
        ),
    ],
)
def test_decision_wildcards(opt_out: str, blocked: set[tuple[str, str]]) -> None:
    # GIVEN a user with one opt-out
    prefs = Preferences("u1", frozenset({opt_out}), frozenset())
    # WHEN every category x channel is decided
    # THEN exactly the ones the opt-out covers are "opted_out", the rest allowed
    for category in ("friend_request", "profile_view"):
        for channel in ("email", "sms"):
            expected = "opted_out" if (category, channel) in blocked else None
            assert prefs.decision(category, channel, "a@example.com") == expected


def test_decision_suppression_wins_and_needs_the_address() -> None:
    # GIVEN a user whose address is suppressed and who opted out of nothing
    prefs = Preferences("u1", frozenset({"x:sms"}), frozenset({address_fingerprint("a@b.co")}))
    # WHEN deciding with that address (differently spelled), another address, or none
    # THEN only that address is suppressed; without an address only opt-outs count
    assert prefs.decision("x", "email", " A@B.CO ") == "suppressed"
    assert prefs.decision("x", "sms", "a@b.co") == "suppressed"
    assert prefs.decision("x", "email", "other@b.co") is None
    assert prefs.decision("x", "email") is None
    assert prefs.decision("x", "sms") == "opted_out"


# -- reads against moto -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_get_many_reads_250_users_in_3_requests(table: str, kind: str) -> None:
    # GIVEN 250 users of whom every 10th opted out of friend_request emails, and user 7's
    # address suppressed; the rest have no item at all
    for i in range(0, 250, 10):
        put_user(f"user-{i}", opt_outs=["friend_request:email"])
    put_user("user-7", suppressed=[address_fingerprint("seven@example.com")])
    users = [f"user-{i}" for i in range(250)]

    # WHEN the store reads all of them (with a duplicate thrown in)
    async def scenario(client: Any) -> tuple[PreferencesStore, dict[str, Preferences]]:
        store = PreferencesStore(client, table)
        return store, await store.get_many([*users, "user-3"], Deadline.after(20))

    store, prefs = run(kind, scenario)
    # THEN one answer per distinct user, from 3 BatchGetItem requests (100 keys each at most)
    assert set(prefs) == set(users)
    assert store.calls == {"BatchGetItem": 3}
    assert prefs["user-10"].decision("friend_request", "email") == "opted_out"
    assert prefs["user-10"].decision("profile_view", "email") is None
    assert prefs["user-11"] == Preferences("user-11")
    assert prefs["user-7"].decision("x", "email", "Seven@Example.com") == "suppressed"
    # AND read units follow DynamoDB's rule: 0.5 per eventually consistent read of <= 4 KB,
    # found or not; moto reported some ConsumedCapacity too
    assert store.read_units == 125.0
    assert store.reported_read_units > 0


@pytest.mark.parametrize("kind", KINDS)
def test_get_many_sends_the_contract_request(table: str, kind: str) -> None:
    # GIVEN a client that records the requests it passes on
    seen: list[dict[str, Any]] = []

    class Recording:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def batch_get_item(self, **params: Any) -> Any:
            seen.append(params)
            return await self.inner.batch_get_item(**params)

    # WHEN two users are read
    async def scenario(client: Any) -> dict[str, Preferences]:
        return await PreferencesStore(Recording(client), table).get_many(
            ["a", "b"], Deadline.after(10)
        )

    run(kind, scenario)
    # THEN eventually consistent, projected to pk/opt_outs/suppressed, capacity asked for
    (params,) = seen
    spec = params["RequestItems"][table]
    assert spec["ConsistentRead"] is False
    names = spec["ExpressionAttributeNames"]
    projected = {names[p.strip()] for p in spec["ProjectionExpression"].split(",")}
    assert projected == {"pk", "opt_outs", "suppressed"}
    assert params["ReturnConsumedCapacity"] == "TOTAL"
    assert spec["Keys"] == [{"pk": {"S": "USER#a"}}, {"pk": {"S": "USER#b"}}]


@pytest.mark.parametrize("kind", KINDS)
def test_unprocessed_keys_are_retried(table: str, kind: str) -> None:
    # GIVEN 150 users, 3 of them opted out, and a DynamoDB that leaves 40 keys of each of the
    # first 3 answers unprocessed
    users = [f"u{i}" for i in range(150)]
    for u in ("u0", "u99", "u149"):
        put_user(u, opt_outs=["*:*"])
    wrapper: list[Unprocessing] = []

    # WHEN the store reads them
    async def scenario(client: Any) -> dict[str, Preferences]:
        flaky = Unprocessing(client, hold=40, rounds=3)
        wrapper.append(flaky)
        store = PreferencesStore(flaky, table, backoff=Backoff(base_s=0.001, cap_s=0.01))
        return await store.get_many(users, Deadline.after(20))

    prefs = run(kind, scenario)
    # THEN every user is answered, the opted-out ones included, after re-asking for the
    # unprocessed keys only
    assert set(prefs) == set(users)
    assert {u for u, p in prefs.items() if p.decision("c", "email")} == {"u0", "u99", "u149"}
    requests = wrapper[0].requests
    assert sorted(requests[:2]) == [50, 100]
    assert len(requests) > 2
    assert all(n <= 40 for n in requests[2:])


@pytest.mark.parametrize("kind", KINDS)
def test_keys_unprocessed_to_the_deadline_raise(table: str, kind: str) -> None:
    # GIVEN a DynamoDB that never processes any key
    # WHEN the store reads with a short deadline
    async def scenario(client: Any) -> None:
        flaky = Unprocessing(client, hold=100, rounds=10**9)
        store = PreferencesStore(
            flaky, table, backoff=Backoff(max_attempts=10**6, base_s=0.01, cap_s=0.05)
        )
        await store.get_many(["secret-user-1", "secret-user-2"], Deadline.after(0.3))

    # THEN a PreferencesError, naming the call and why, not the users
    with pytest.raises(PreferencesError) as info:
        run(kind, scenario)
    assert info.value.code in ("UnprocessedKeys", "Deadline")
    assert info.value.operation == "BatchGetItem"
    assert "secret-user" not in str(info.value)


def test_a_hanging_call_is_cut_at_the_deadline() -> None:
    # GIVEN a client that never answers
    hanging = Hanging()

    # WHEN the store reads with a 0.2 s deadline
    async def scenario() -> None:
        store = PreferencesStore(hanging, PREFS, call_timeout_s=60)
        await store.get_many(["u1"], Deadline.after(0.2))

    # THEN it gives up with a "Deadline" PreferencesError (the test would hang otherwise)
    with pytest.raises(PreferencesError) as info:
        asyncio.run(scenario())
    assert info.value.code == "Deadline"
    assert hanging.calls >= 1


def test_a_passed_deadline_makes_no_call() -> None:
    # GIVEN a deadline already passed
    hanging = Hanging()

    async def scenario() -> None:
        await PreferencesStore(hanging, PREFS).get_many(["u1"], Deadline.after(-1))

    # WHEN reading THEN PreferencesError without a request
    with pytest.raises(PreferencesError, match="Deadline"):
        asyncio.run(scenario())
    assert hanging.calls == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_table_is_a_typed_error(aws: str, kind: str) -> None:
    # GIVEN no preferences table at all
    # WHEN the store reads
    async def scenario(client: Any) -> None:
        await PreferencesStore(client, "no-such-table").get_many(
            ["private-user"], Deadline.after(10)
        )

    # THEN PreferencesError (a RuntimeError) naming the DynamoDB code, never the user
    with pytest.raises(PreferencesError) as info:
        run(kind, scenario)
    assert isinstance(info.value, RuntimeError)
    assert info.value.code == "ResourceNotFoundException"
    assert "ResourceNotFoundException" in str(info.value)
    assert "private-user" not in str(info.value)


def test_nothing_to_read_makes_no_request() -> None:
    # GIVEN only ids that cannot have an item (empty, over DynamoDB's key size)
    hanging = Hanging()

    async def scenario() -> dict[str, Preferences]:
        return await PreferencesStore(hanging, PREFS).get_many(["", "x" * 3000], Deadline.after(5))

    # WHEN read THEN empty preferences for both, without a request
    prefs = asyncio.run(scenario())
    assert prefs == {"": Preferences(""), "x" * 3000: Preferences("x" * 3000)}
    assert hanging.calls == 0


# -- writes against moto ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_opt_out_and_suppress_read_back(table: str, kind: str) -> None:
    # GIVEN an empty table
    # WHEN a user opts out twice (once twice over) and an address of theirs is suppressed
    async def scenario(client: Any) -> tuple[PreferencesStore, Preferences]:
        store = PreferencesStore(client, table, clock=lambda: 1_700_000_000.0)
        await store.opt_out("u1", "friend_request", "email")
        await store.opt_out("u1", "friend_request", "email")
        await store.opt_out("u1", "profile_view")
        await store.suppress("u1", " Bob@Example.com ", "complaint from bob@example.com")
        prefs = await store.get_many(["u1"], Deadline.after(10))
        return store, prefs["u1"]

    store, prefs = run(kind, scenario)
    # THEN the sets hold each entry once; the address is stored only as its fingerprint
    assert prefs.opt_outs == {"friend_request:email", "profile_view:*"}
    assert prefs.suppressed == {address_fingerprint("bob@example.com")}
    assert prefs.decision("friend_request", "sms") is None
    assert prefs.decision("profile_view", "sms") == "opted_out"
    assert prefs.decision("x", "email", "bob@example.com") == "suppressed"
    item = table_items()["USER#u1"]
    assert item["updated_at"] == "1700000000"
    assert "bob@example.com" not in repr(item).lower()
    assert "b***@***.com" in item["suppressed_reason"]
    # AND each small update counted 1 write unit
    assert store.write_units == 4


@pytest.mark.parametrize("kind", KINDS)
def test_opt_out_once_is_one_use(table: str, kind: str) -> None:
    # GIVEN an empty table
    # WHEN a token id is redeemed twice, the second time for another category
    async def scenario(client: Any) -> tuple[bool, bool]:
        store = PreferencesStore(client, table)
        first = await store.opt_out_once(
            "tok1", "u1", "friend_request", "email", token_expires_at=2_000_000_000
        )
        second = await store.opt_out_once(
            "tok1", "u1", "profile_view", "email", token_expires_at=2_000_000_000
        )
        return first, second

    first, second = run(kind, scenario)
    # THEN the first applies, the second changes nothing
    assert (first, second) == (True, False)
    items = table_items()
    assert items["USER#u1"]["opt_outs"] == ["friend_request:email"]
    assert items["TOKEN#tok1"]["expires_at"] == "2000000000"


def test_bad_arguments_are_value_errors() -> None:
    # GIVEN a store (no request is made for bad arguments)
    store = PreferencesStore(Hanging(), PREFS)
    # WHEN opting out with an empty user, or a channel holding ":"
    # THEN ValueError
    with pytest.raises(ValueError, match="user_id"):
        asyncio.run(store.opt_out("", "c", "email"))
    with pytest.raises(ValueError, match="channel"):
        asyncio.run(store.opt_out("u", "c", "e:mail"))


@pytest.mark.parametrize("kind", KINDS)
def test_write_failures_are_typed(aws: str, kind: str) -> None:
    # GIVEN no table
    # WHEN opting out
    async def scenario(client: Any) -> None:
        await PreferencesStore(client, "no-such-table").opt_out("private-user", "c")

    # THEN PreferencesError naming UpdateItem and the code
    with pytest.raises(PreferencesError) as info:
        run(kind, scenario)
    assert (info.value.operation, info.value.code) == ("UpdateItem", "ResourceNotFoundException")
    assert "private-user" not in str(info.value)
