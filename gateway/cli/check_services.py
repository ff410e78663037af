"""The checks of ``portcullis check`` for services outside the request path, each only where the
configuration names it (no line otherwise):

- single sign-on (``admin.sso``): the provider's discovery document answers, names the configured
  issuer and its endpoints, and its key set (``jwks_uri``) holds a usable key — read by the
  gateway's own :class:`~gateway.oidc_provider.OidcProvider`, as a sign-in reads them; the
  client secret is there (its own line);
- tracing (``tracing.endpoint``): the collector takes an empty OTLP/HTTP export
  (``{"resourceSpans":[]}``: no span) with the configured headers. A 2xx is ``ok``; a 401 or 403
  a ``fail`` (every span would be refused); any other answer a ``warn`` (reachable, but whether
  it takes spans is not known); no answer a ``fail``;
- each budget webhook (``budgets.webhooks``): a TCP connection to its host (and, for https, a TLS
  handshake), closed at once — nothing is posted, so no receiver gets a made-up alert; its
  signing secret, where one is configured, is there (else alerts would go unsigned).

A webhook is shown by its place in the list and its scheme, host and port only: a chat
webhook's path is its credential. No secret is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from gateway.config import Settings
from gateway.config.admin import SsoSettings
from gateway.config.core import TracingSettings, WebhookSettings

__all__ = ["Result", "services"]


@dataclass
class Result:
    """One line of the check (the type every check of ``portcullis check`` returns)."""

    check: str
    status: str  # ok | warn | fail
    detail: str


def _ms(t0: float) -> str:
    return f"{(time.perf_counter() - t0) * 1000:.0f} ms"


def _sso_secret(sso: SsoSettings) -> Result:
    if sso.client_secret_env:
        where = f"environment variable {sso.client_secret_env}"
    else:
        where = f"admin.sso.client_secret_file {sso.client_secret_file}"
    if sso.client_secret() is None:
        return Result("sso client secret", "fail", f"{where} is missing or empty")
    return Result("sso client secret", "ok", f"{where} is set")


async def _sso(sso: SsoSettings, timeout_s: float) -> Result:
    from gateway.oidc_provider import OidcProvider, SsoError

    client = OidcProvider(sso)  # as a sign-in reads the provider; nothing signed, no secret
    where = client.discovery_url
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            meta = await client.metadata()
            where = meta["jwks_uri"]
            keys = await client.key_set()
    except SsoError as exc:
        return Result("sso", "fail", f"{where}: {exc.message}")
    except TimeoutError:
        return Result("sso", "fail", f"{where}: no answer within {timeout_s:g} s")
    finally:
        await client.close()
    n = len(keys.keys)
    found = f"{sso.issuer} names its endpoints and publishes {n} signing key{'s' * (n != 1)}"
    if sso.sign_out_at_provider and not isinstance(meta.get("end_session_endpoint"), str):
        return Result(
            "sso",
            "warn",
            f"{found}, but no end_session_endpoint: sign_out_at_provider will end the "
            "gateway's session only",
        )
    # back-channel logout needs nothing set here, only the URI registered with the provider
    front = f"{sso.public_url}/console/sso/frontchannel-logout"
    if meta.get("backchannel_logout_supported") is True:
        back = f"; back-channel logout: register {sso.public_url}/console/sso/backchannel-logout"
    elif sso.frontchannel_logout:
        back = f"; front-channel logout: register {front}"
    else:
        back = "; it offers no back-channel logout (sessions there ending do not end ours" + (
            f": set frontchannel_logout and register {front})"
            if meta.get("frontchannel_logout_supported") is True
            else ")"
        )
    return Result("sso", "ok", f"{found}{back} ({_ms(t0)})")


async def _tracing(tracing: TracingSettings, timeout_s: float) -> Result:
    import aiohttp

    from gateway.tracing import collector_headers

    assert tracing.endpoint is not None
    parts = urlsplit(tracing.endpoint)
    # shown without its query, which may hold a token
    shown = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    headers = collector_headers(tracing)
    if tracing.headers_env and len(headers) == 1:  # only the content type: none of its own
        return Result(
            "tracing",
            "fail",
            f"tracing.headers_env: environment variable {tracing.headers_env} is empty "
            "or holds no name=value",
        )
    limit = min(timeout_s, tracing.timeout_s)
    t0 = time.perf_counter()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as http,
            http.post(
                tracing.endpoint,
                data=b'{"resourceSpans":[]}',  # an export with no span in it
                headers=headers,
                allow_redirects=False,
            ) as resp,
        ):
            await resp.content.read(1 << 16)
            status = resp.status
    except TimeoutError:
        return Result("tracing", "fail", f"POST {shown}: no answer within {limit:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return Result("tracing", "fail", f"POST {shown}: cannot be reached ({type(exc).__name__})")
    what = f"POST {shown} (an empty export)"
    if 200 <= status < 300:
        return Result("tracing", "ok", f"{what}: {status} in {_ms(t0)}")
    if status in (401, 403):
        return Result(
            "tracing", "fail", f"{what}: {status}, the collector refused the headers_env headers"
        )
    return Result("tracing", "warn", f"{what}: {status}, reachable but it may not take spans there")


def _unsigned(hook: WebhookSettings) -> str | None:
    """Where the hook's signing secret should be, when it is configured but not there."""
    if not (hook.secret_env or hook.secret_file) or hook.secret() is not None:
        return None
    if hook.secret_env:
        return f"environment variable {hook.secret_env}"
    return f"file {hook.secret_file}"


async def _webhook(i: int, hook: WebhookSettings, timeout_s: float) -> Result:
    name = f"webhook {i}"
    parts = urlsplit(hook.url)
    host = parts.hostname
    assert host is not None  # the settings refuse a URL without one
    port = parts.port or (443 if parts.scheme == "https" else 80)
    shown = f"{parts.scheme}://{host}:{port}"  # not the path: a chat webhook's is its credential
    missing = _unsigned(hook)
    unsigned = (
        f"; its signing secret ({missing}) is missing or empty: alerts would go unsigned"
        if missing
        else ""
    )
    limit = min(timeout_s, hook.timeout_s)
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(host, port, ssl=tls)
        took = _ms(t0)
        writer.close()  # before a byte is written
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
    except TimeoutError:
        return Result(name, "fail", f"{shown}: no connection within {limit:g} s{unsigned}")
    except ssl.SSLError as exc:
        detail = f"{shown}: the TLS handshake failed ({type(exc).__name__}){unsigned}"
        return Result(name, "fail", detail)
    except OSError as exc:
        detail = f"{shown}: cannot be reached ({type(exc).__name__}){unsigned}"
        return Result(name, "fail", detail)
    reached = f"{shown} takes a {'TLS ' if tls else ''}connection ({took}, nothing sent)"
    if missing:
        return Result(name, "fail", reached + unsigned)
    signed = "signed" if hook.secret_env or hook.secret_file else "unsigned (no secret set)"
    return Result(name, "ok", f"{reached}; alerts go {signed}")


async def services(settings: Settings, timeout_s: float) -> list[Result]:
    """The lines for single sign-on, tracing and the budget webhooks, where configured."""
    checks = []
    sso = settings.admin.sso
    if sso is not None:
        checks.append(_sso(sso, timeout_s))
    if settings.tracing.endpoint:
        checks.append(_tracing(settings.tracing, timeout_s))
    checks += [_webhook(i, h, timeout_s) for i, h in enumerate(settings.budgets.webhooks)]
    found = list(await asyncio.gather(*checks))
    if sso is not None:
        found.insert(1, _sso_secret(sso))  # beside the provider's line
    return found
