"""``portcullis serve``: migrate, then run the gateway on uvicorn."""

from __future__ import annotations

import logging
import os

import click

from gateway.cli._common import settings_from
from gateway.storage.migrate import upgrade

__all__ = ["serve"]


@click.command()
@click.option("--host", default=None, help="Default: server.host from the configuration.")
@click.option("--port", type=int, default=None)
@click.option("--workers", type=int, default=None)
@click.option("--no-migrate", is_flag=True, help="Do not apply migrations at start.")
@click.option("--log-level", default="info", show_default=True)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    no_migrate: bool,
    log_level: str,
) -> None:
    """Run the gateway. With no configuration: SQLite file, embedded policy, in-memory limits."""
    import uvicorn

    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not no_migrate:
        upgrade(settings.database_url())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    # NER's small matrix products go through numpy's OpenBLAS (gateway/pii/ner.py): one thread
    # per process, as the benchmark measured; requests run side by side, not one matrix.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    n_workers = workers or settings.server.workers
    if (
        n_workers > 1
        and settings.redis.url is None
        and (settings.limits.requests_per_minute or settings.limits.tokens_per_minute)
    ):
        logging.getLogger("portcullis").warning(
            "%d workers and no redis.url: each worker keeps its own limits, so a key may use "
            "%d times the configured rate; set redis.url to share them",
            n_workers,
            n_workers,
        )
    if n_workers > 1 and settings.redis.url is None and settings.keys.cache_ttl_s > 0:
        logging.getLogger("portcullis").warning(
            "%d workers and no redis.url: a key revoked through one worker stays usable on the "
            "others for up to keys.cache_ttl_s (%g s); set redis.url to announce revocations",
            n_workers,
            settings.keys.cache_ttl_s,
        )
    config_path = (ctx.find_root().obj or {}).get("config_path")
    if config_path:
        os.environ["PORTCULLIS_CONFIG"] = os.path.abspath(config_path)
    proxies = settings.server.forwarded_allow_ips()
    uvicorn.run(
        "gateway.asgi:app",
        factory=True,
        proxy_headers=proxies is not None,
        forwarded_allow_ips=proxies,
        host=host or settings.server.host,
        port=port if port is not None else settings.server.port,
        workers=n_workers,
        log_level=log_level,
        access_log=False,
        server_header=False,
        date_header=False,
    )
