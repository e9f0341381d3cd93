"""Settings in, a service out: the one place that turns configuration into objects.

Core knows nothing of settings or of which backend holds the data; the web layer and
the CLI ask this module for a service built from ``VELVETROPE_*`` settings.
"""

from __future__ import annotations

from velvetrope.core.hooks import Hooks
from velvetrope.core.passwords import PasswordHasher, PasswordPolicy
from velvetrope.core.service import AuthService
from velvetrope.settings import Settings
from velvetrope.stores.protocols import Stores
from velvetrope.stores.registry import StoreOptions, open_stores

__all__ = ["build_service", "open_configured_stores", "store_options"]


def store_options(settings: Settings) -> StoreOptions:
    """What the settings tell the store backends."""
    return StoreOptions(
        sqlite_synchronous=settings.sqlite_synchronous,
        session_cache_ttl=settings.session_cache_ttl,
        redis_prefix=settings.redis_prefix,
    )


def open_configured_stores(settings: Settings) -> Stores:
    """The stores the settings name (``database_url``, ``redis_url``), not yet started.

    Raises:
        ConfigurationError: A URL's scheme is not supported, or it is malformed.
    """
    return open_stores(
        settings.database_url, fast_url=settings.redis_url, options=store_options(settings)
    )


def build_service(settings: Settings, *, stores: Stores | None = None) -> AuthService:
    """The auth service the settings describe, over ``stores`` (default: the configured
    ones). Call ``await service.start()`` before serving.

    Raises:
        ConfigurationError: A store URL is not supported.
    """
    return AuthService(
        stores or open_configured_stores(settings),
        hasher=PasswordHasher(
            settings.password_hash_profile,
            max_concurrency=settings.password_hash_concurrency,
            max_waiting=settings.password_hash_queue,
            max_wait=settings.password_hash_queue_timeout,
            nice=settings.password_hash_nice,
        ),
        password_policy=PasswordPolicy(min_length=settings.password_min_length),
        session_policy=settings.session_policy(),
        throttle_policy=settings.throttle_policy(),
        token_policy=settings.token_policy(),
        dpop_policy=settings.dpop_policy(),
        binding_policy=settings.binding_policy(),
        csrf_secret=settings.csrf_secret_bytes(),
        poll_interval=settings.revocation_poll,
        hooks=Hooks(max_claims_bytes=settings.max_claims_bytes),
    )
