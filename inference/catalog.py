"""The runtime's facts for the gateway's backend catalogue (``gateway.config.backends``).

A self-hosted DeepSeek backend: operator ``self``, model family ``deepseek``, weights developed in
``CN``, hosted where the operator configured the site. Policy tells it from DeepSeek's hosted API
by these facts.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["backend_entry"]


def backend_entry(
    base_url: str,
    site_country: str,
    site_region: str | None,
    model_name: str,
    *,
    backend_id: str = "deepseek-self",
    served_model: str | None = None,
) -> dict[str, Any]:
    """A ``BackendSpec``-shaped dict for a runtime at ``base_url`` (``http://host:port/v1``).

    ``model_name`` is the name clients ask for; ``served_model`` the name the runtime serves
    (``--served-model-name``), when different.
    """
    if not re.match(r"^https?://", base_url):
        raise ValueError("base_url must be http(s)://host[:port][/v1]")
    entry: dict[str, Any] = {
        "id": backend_id,
        "protocol": "openai",
        "base_url": base_url.rstrip("/"),
        "models": [model_name],
        "endpoints": ["chat", "completions"],
        "operator": "self",
        "model_family": "deepseek",
        "model_origin": "CN",
        "hosting_country": site_country.upper(),
        "hosting_region": site_region,
        "self_hosted": True,
        "retention": {"days": 0, "zero_data_retention": True},
    }
    if served_model and served_model != model_name:
        entry["upstream_model"] = {model_name: served_model}
    return entry
