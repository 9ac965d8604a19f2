"""Limits on guessing: the client address lockouts count against, and DRF token
authentication that answers 429 to an address after too many bad tokens.

Log-ins are locked out by django-axes (settings: IPPAM_LOGIN_FAILURE_LIMIT failures per user
name and, separately, per client address lock it for IPPAM_LOGIN_LOCKOUT_SECONDS)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind IPPAM_TRUSTED_PROXIES proxies (an Ingress:
    1) the address that many hops back in X-Forwarded-For, which those proxies append to. A
    client can write anything into the header, so only the trusted hops' entries count."""
    hops = int(getattr(settings, "IPPAM_TRUSTED_PROXIES", 0))
    remote = str(request.META.get("REMOTE_ADDR", "") or "")
    if hops <= 0:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    return forwarded[-hops] if len(forwarded) >= hops else remote


class ThrottledTokenAuthentication(TokenAuthentication):
    """Token authentication that counts failures per client address: past the rate
    IPPAM_TOKEN_FAILURE_RATE ("10/min") the address is answered 429 with Retry-After, before
    its token is even looked at, until its oldest failure leaves the window."""

    def authenticate(self, request: Any) -> Any:
        scheme = request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0]
        if scheme.lower() != self.keyword.lower():
            return None  # not a token request: nothing to count
        key = f"ippam:token-failures:{client_ip(request)}"
        limit, window = _rate(str(getattr(settings, "IPPAM_TOKEN_FAILURE_RATE", "10/min")))
        now = time.time()
        failures = [t for t in _cache_get(key) if t > now - window]
        if len(failures) >= limit:
            raise Throttled(
                wait=max(1.0, failures[0] + window - now),
                detail="Too many bad API tokens from this address; wait and try again.",
            )
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            _cache_set(key, [*failures, now], window)
            raise


def _rate(text: str) -> tuple[int, int]:
    """DRF's rate syntax, "10/min": (failures, window in seconds)."""
    count, _, period = text.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(period.strip()[:1], 60)
    return max(1, int(count)), seconds


def _cache_get(key: str) -> list[float]:
    try:
        return list(caches["throttle"].get(key) or [])
    except Exception:  # noqa: BLE001 - a cache that is down must not lock everyone out
        logger.warning("the throttle cache did not answer; token failures are not counted")
        return []


def _cache_set(key: str, value: list[float], window: int) -> None:
    try:
        caches["throttle"].set(key, value, window)
    except Exception:  # noqa: BLE001
        logger.warning("the throttle cache did not answer; token failures are not counted")
