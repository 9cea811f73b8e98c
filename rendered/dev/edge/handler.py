"""Lambda@Edge origin-response function: add the environment's security headers.

The header names and values are data, not code: the renderer writes them to
``headers.json`` beside this file (``{"headers": {"Canonical-Name": "value", ...}}``),
and the handler reads that file once per cold start. Every configured header replaces
whatever the origin sent under that name, in any casing; every other header from the
origin passes through untouched. Runs for every origin status, 4xx/5xx included.

Plain Python 3.12, standard library only (Lambda@Edge allows no layers and no
environment variables).
"""

import json
import os
import re
from functools import lru_cache
from typing import Any

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "headers.json")

# Headers a Lambda@Edge function may not add (CloudFront answers 502), plus the ones
# that are read-only in origin-response events ("Restrictions on edge functions",
# CloudFront Developer Guide). Checked once per cold start: a bad file fails loudly.
_FORBIDDEN = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
        # read-only in origin-response events
        "transfer-encoding",
        "via",
    }
)
_FORBIDDEN_PREFIXES = ("x-amz-cf-", "x-edge-")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name

# (lower-case name, canonical name, value) for each configured header.
Config = tuple[tuple[str, str, str], ...]


class ConfigError(ValueError):
    """headers.json is missing, malformed, or names a header CloudFront rejects."""


def parse_config(data: object) -> Config:
    """Validate the decoded headers.json and return its headers as a tuple."""
    headers = data.get("headers") if isinstance(data, dict) else None
    if not isinstance(headers, dict) or not headers:
        raise ConfigError('headers.json: expected {"headers": {name: value, ...}}, non-empty')
    seen: set[str] = set()
    config = []
    for name, value in headers.items():
        lower = name.lower()
        if not _TOKEN.fullmatch(name):
            raise ConfigError(f"headers.json: headers.{name!r}: not a valid header name")
        if lower in _FORBIDDEN or lower.startswith(_FORBIDDEN_PREFIXES):
            raise ConfigError(f"headers.json: headers.{name}: CloudFront forbids setting it here")
        if lower in seen:
            raise ConfigError(f"headers.json: headers.{name}: given twice (names ignore case)")
        if not isinstance(value, str) or not value or "\r" in value or "\n" in value:
            raise ConfigError(f"headers.json: headers.{name}: value must be a one-line string")
        seen.add(lower)
        config.append((lower, name, value))
    return tuple(config)


@lru_cache(maxsize=1)
def load_config(path: str = CONFIG_PATH) -> Config:
    """Read and validate headers.json; cached, so it runs once per cold start."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from error
    return parse_config(data)


def _find_response(event: object) -> dict[str, Any] | None:
    """Return ``event["Records"][0]["cf"]["response"]`` if it is a dict, else None."""
    records = event.get("Records") if isinstance(event, dict) else None
    record = records[0] if isinstance(records, list) and records else None
    cf = record.get("cf") if isinstance(record, dict) else None
    response = cf.get("response") if isinstance(cf, dict) else None
    return response if isinstance(response, dict) else None


def handler(event: object, context: object = None) -> dict[str, Any]:
    """Set the configured security headers on the origin response and return it.

    Never raises on an odd event. A missing or non-dict ``headers`` map is replaced by
    a new dict. When the event holds no response dict at all (not an origin-response
    event), there is nothing to decorate or pass through, so the handler returns a new
    ``{"headers": {...}}`` carrying only the security headers: CloudFront rejects that
    (no status) with a visible 502 instead of serving anything unprotected, and the
    postcondition -- every configured header present exactly once -- holds for every
    input. A broken headers.json raises ConfigError: that is a deployment bug.
    """
    config = load_config()
    response = _find_response(event)
    if response is None:
        response = {}
    headers = response.get("headers")
    if not isinstance(headers, dict):
        headers = response["headers"] = {}
    names = _names(config)
    # Keys already lower-case are overwritten below; only other casings of a configured name
    # need removing (CloudFront sends lower-case keys, so this list is almost always empty).
    for key in [k for k in headers if k not in names and isinstance(k, str) and k.lower() in names]:
        del headers[key]
    for lower, name, value in config:
        headers[lower] = [{"key": name, "value": value}]
    return response


@lru_cache(maxsize=1)
def _names(config: Config) -> frozenset[str]:
    return frozenset(lower for lower, _, _ in config)
