"""Model names fold to one canonical name; routing never leaves the permitted set."""

from __future__ import annotations

import pytest

from gateway.catalog import Catalog
from gateway.config.backends import BackendSpec
from gateway.errors import Cause, GatewayError
from gateway.routing import CircuitBreaker, Router
from gateway.upstream import UpstreamFailure


def spec(id_: str, operator: str = "openai", priority: int = 100, **kw: object) -> BackendSpec:
    return BackendSpec.model_validate(
        {
            "id": id_,
            "base_url": "http://127.0.0.1:1/v1",
            "models": ["deepseek-chat"],
            "operator": operator,
            "model_family": "deepseek",
            "model_origin": "CN",
            "hosting_country": "CN",
            "priority": priority,
            "max_retries": 1,
            "circuit_failures": 2,
            "circuit_cooldown_s": 60,
            **kw,
        }
    )


HOSTED = spec("deepseek-hosted", "deepseek", 10, aliases={"ds": "deepseek-chat"})
SELF = BackendSpec.model_validate(
    {
        **HOSTED.model_dump(),
        "id": "deepseek-self",
        "operator": "self",
        "self_hosted": True,
        "priority": 20,
        "hosting_country": "AU",
        "aliases": {},
    }
)


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("deepseek-chat", ["deepseek-hosted", "deepseek-self"]),
        ("  DeepSeek-Chat\t", ["deepseek-hosted", "deepseek-self"]),
        ("DS", ["deepseek-hosted"]),
        ("deepseek/deepseek-chat", ["deepseek-hosted"]),
        ("self/deepseek-chat", ["deepseek-self"]),
        ("deepseek-self/deepseek-chat", ["deepseek-self"]),
    ],
)
def test_every_name_of_a_model_resolves_to_its_backends(name: str, ids: list[str]) -> None:
    res = Catalog([SELF, HOSTED]).resolve(name, "chat")
    assert res.model == "deepseek-chat" and [b.id for b in res.candidates] == ids


@pytest.mark.parametrize(
    "name",
    [
        "deepseek-chat@x",
        "deepseek-chat#",
        "deepseek-chat?x=1",
        "a/b/c",
        "openai/deepseek-chat",
        "",
        "deepseek-chat\x00",
    ],
)
def test_tricks_do_not_resolve(name: str) -> None:
    with pytest.raises(GatewayError) as exc:
        Catalog([SELF, HOSTED]).resolve(name, "chat")
    assert (
        exc.value.cause is Cause.MODEL_NOT_FOUND and name not in exc.value.message
    ) or name == ""


async def test_router_tries_only_permitted_and_falls_back_on_503() -> None:
    calls: list[str] = []

    async def attempt(b: BackendSpec) -> str:
        calls.append(b.id)
        if b.id == "deepseek-self":
            raise UpstreamFailure("status", 503)
        return b.id

    router = Router(backoff_s=0)
    _backend, result = await router.run([SELF, spec("other", priority=30)], attempt)
    assert result == "other" and calls == ["deepseek-self", "deepseek-self", "other"]


async def test_router_does_not_repeat_a_timeout() -> None:
    calls: list[str] = []

    async def attempt(b: BackendSpec) -> str:
        calls.append(b.id)
        raise UpstreamFailure("timeout")

    with pytest.raises(GatewayError) as exc:
        await Router(backoff_s=0).run([SELF, spec("other", priority=30)], attempt)
    assert exc.value.cause is Cause.UPSTREAM_TIMEOUT and calls == ["deepseek-self"]


async def test_circuit_opens_after_failures_and_skips_backend() -> None:
    breaker = CircuitBreaker()
    b = spec("flaky")
    breaker.failure(b)
    assert breaker.available(b)
    breaker.failure(b)
    assert not breaker.available(b)
    router = Router(breaker, backoff_s=0)
    with pytest.raises(GatewayError) as exc:
        await router.run([b], lambda _: None)  # type: ignore[arg-type, return-value]
    assert exc.value.cause is Cause.NO_BACKEND


@pytest.mark.parametrize("status", [401, 403])
async def test_a_backend_that_refuses_us_is_not_asked_again_and_the_next_one_is(
    status: int,
) -> None:
    # A wrong or expired credential: the prompt went to that backend on every request, each
    # answered 502, and the breaker never opened (only >= 429 counted).
    calls: list[str] = []

    async def attempt(b: BackendSpec) -> str:
        calls.append(b.id)
        if b.id == "deepseek-self":
            raise UpstreamFailure("status", status)
        return b.id

    breaker = CircuitBreaker()
    router = Router(breaker, backoff_s=0)
    _backend, result = await router.run([SELF, spec("other", priority=30)], attempt)
    assert result == "other" and calls == ["deepseek-self", "other"]
    for _ in range(SELF.circuit_failures):
        with pytest.raises(GatewayError):
            await router.run([SELF], attempt)
    assert not breaker.available(SELF)
