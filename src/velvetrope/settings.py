"""Configuration from ``VELVETROPE_*`` environment variables (or a ``.env`` file).

Durations accept seconds (``1800``) or ISO 8601 (``PT30M``). A bad value stops the
start with one sentence naming the variable (see :func:`describe_validation_error`).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import ipaddress
import re
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from velvetrope.core.accounts import AccountMailPolicy
from velvetrope.core.binding.dbsc import SessionBindingPolicy
from velvetrope.core.binding.dpop import DPoPPolicy
from velvetrope.core.gateway.tokens import GatewayPolicy
from velvetrope.core.mail import SmtpConfig, check_sender, smtp_config
from velvetrope.core.ratelimit import ThrottlePolicy
from velvetrope.core.sessions import SessionPolicy
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.errors import ConfigurationError
from velvetrope.stores.registry import check_database_url

__all__ = ["MAX_DURATION", "Settings", "describe_validation_error"]

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(value: str) -> str:
    """``value`` as browsers write it in ``Origin``: lower case, no default port.

    Raises:
        ValueError: It is not a bare http(s) origin with a valid host and port.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError("must be an origin like https://auth.example.com") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in _DEFAULT_PORTS or not host:
        raise ValueError("must be an origin like https://auth.example.com")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("must be a bare origin: scheme, host and optional port only")
    if ":" in host:  # an IPv6 literal
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"has an invalid IPv6 address {host!r}") from None
        host = f"[{host}]"
    elif _HOST.fullmatch(host) is None:
        raise ValueError(f"has an invalid host name {host!r}")
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _seconds(value: object) -> object:
    """Let environment strings such as ``"1800"`` mean seconds, as ISO 8601 ``PT30M`` does."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# --- duration bound (RES-02) ---
MAX_DURATION = timedelta(days=36500)
"""The longest duration any setting takes (about a century): longer ones are refused
with a sentence, instead of overflowing later when the policies add them to a date."""


def _bounded(value: timedelta) -> timedelta:
    if value > MAX_DURATION:
        longest = MAX_DURATION.days
        raise ValueError(f"must be at most {longest} days ({longest * 86400} seconds)")
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds), AfterValidator(_bounded)]


def _seconds_text(value: timedelta) -> str:
    return (
        f"{int(value.total_seconds()):,} s"
        if value.total_seconds().is_integer()
        else f"{value.total_seconds()} s"
    )


class Settings(BaseSettings):
    """Every setting, each readable from ``VELVETROPE_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="VELVETROPE_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = Field(
        "sqlite:///velvetrope.db",
        description=(
            "sqlite:///relative.db, sqlite:////absolute.db, a plain path, "
            "postgresql://user:password@host/database, or memory://"
        ),
    )
    sqlite_synchronous: Literal["normal", "full"] = "normal"
    redis_url: str | None = Field(
        None,
        description="redis://host:6379/0: sessions, refresh families, revocations and login "
        "counters in Redis; users and keys stay in database_url",
    )
    redis_prefix: str = Field("velvetrope:", description="Starts every Redis key; no braces")
    session_cache_ttl: Duration = Field(
        timedelta(seconds=1),
        description="How long a node may serve a Redis or PostgreSQL session from its "
        "near-cache without reading it again (the staleness bound should a push be lost); "
        "0 turns the cache off",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_origin: str | None = Field(
        None, description="The origin browsers use, e.g. https://auth.example.com"
    )
    dev_insecure_http: bool = Field(
        False, description="Allow plain-http origins other than localhost (development only)"
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Proxies whose X-Forwarded-For/-Proto headers are trusted"
    )

    session_idle_timeout: Duration = timedelta(minutes=30)
    session_absolute_lifetime: Duration = timedelta(hours=12)
    session_touch_interval: Duration = timedelta(seconds=60)
    session_max_per_user: int = Field(10, ge=1, le=1000)
    reauth_window: Duration = timedelta(minutes=10)

    token_issuer: str | None = Field(
        None, description="`iss` of access tokens (default: the origin)"
    )
    token_audience: str | None = Field(
        None, description="`aud` of access tokens (default: the origin)"
    )
    token_algorithm: Literal["EdDSA", "ES256", "RS256", "HS256"] = "EdDSA"  # noqa: S105
    access_token_ttl: Duration = timedelta(minutes=15)
    token_leeway: Duration = timedelta(seconds=30)
    refresh_idle_timeout: Duration = timedelta(days=1)
    refresh_absolute_lifetime: Duration = timedelta(days=30)
    refresh_grace: Duration = timedelta(seconds=10)
    key_rotation: Duration = timedelta(days=30)
    revocation_poll: Duration = Field(
        timedelta(seconds=1), description="How often each process replays the revocation feed"
    )
    browser_credentials: Literal["session", "jwt-cookie"] = Field(
        "session", description="What POST /auth/login sets in the browser"
    )
    dpop: Literal["off", "allow", "require"] = Field(
        "allow",
        description="DPoP-bound tokens (RFC 9449): off, allow (a client that sends a DPoP "
        "proof gets bound tokens), require (bearer tokens are refused)",
    )
    dpop_nonce: bool = Field(False, description="Require the server's nonce in DPoP proofs")
    dpop_proof_window: Duration = Field(
        timedelta(seconds=60), description="How old a DPoP proof's iat may be"
    )
    session_binding: Literal["off", "offer", "require"] = Field(
        "offer",
        description="Device-bound sessions (DBSC): off, offer (browsers that can, bind), "
        "require (an unbound browser session is refused)",
    )
    bound_cookie_ttl: Duration = Field(
        timedelta(minutes=10),
        description="Lifetime of a device-bound session's short cookie (the browser renews it)",
    )
    session_binding_grace: Duration = Field(
        timedelta(seconds=10),
        description="Under session_binding=require: how long after sign-in an unbound "
        "session is accepted while the browser registers its key",
    )
    csrf_secret: SecretStr | None = Field(
        None,
        description="Base64 of at least 32 random bytes that sign CSRF tokens (default: made "
        "once and kept in the database, shared by every node)",
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins (https://app.example.com) allowed to call the API "
        "with credentials; exact matches, never *",
    )

    password_min_length: int = Field(15, ge=8, le=64)
    password_hash_profile: Literal["rfc9106-low-memory", "owasp-minimum", "test-only"] = (
        "rfc9106-low-memory"  # noqa: S105 - a profile name, not a password
    )
    password_hash_concurrency: int = Field(2, ge=1, le=64)

    login_free_failures: int = Field(5, ge=1, le=100)
    login_max_delay: Duration = timedelta(minutes=15)
    login_ip_failures: int = Field(100, ge=1)
    login_ip_window: Duration = timedelta(minutes=15)
    registrations_per_ip: int = Field(20, ge=1, description="Sign-ups per client address per hour")

    # --- account lifecycle: mail (password reset, email verification) ---
    smtp_url: SecretStr | None = Field(
        None,
        description="smtp://user:password@host:587?starttls=true or smtps://user:password@host "
        "(465); unset: mail is printed to the console on a loopback origin, else not sent",
    )
    mail_from: str | None = Field(
        None,
        description="The From of every mail (default: the mail product's name and "
        "no-reply@ the origin's host)",
    )
    mail_product: str = Field(
        "velvetrope",
        min_length=1,
        max_length=64,
        pattern=r"^[^\r\n]+$",
        description="The name mails give your service (subject and text)",
    )
    password_reset_ttl: Duration = Field(
        timedelta(minutes=30), description="How long a password reset link works"
    )
    email_verification_ttl: Duration = Field(
        timedelta(hours=24), description="How long an email verification link works"
    )
    mail_cooldown: Duration = Field(
        timedelta(seconds=60),
        description="At most one reset (per address) or verification (per user) mail this often",
    )

    # Above the largest body the OpenAPI document allows (every field at its maxLength,
    # each character a 12-byte escape), so its limits, not this cap, decide (issue 14).
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=1024 * 1024)
    max_cookie_bytes: int = Field(8 * 1024, ge=512, le=64 * 1024)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Operations (`velvetrope serve`): worker processes, log format, access log, metrics.
    workers: int = Field(
        1, ge=1, le=64, description="Worker processes `serve` runs on the one port"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="text: timestamped lines; json: one JSON object per line"
    )
    access_log: bool = Field(False, description="Log one line per request (uvicorn's access log)")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve Prometheus metrics at /metrics on this port of metrics_host "
        "(never on the public port); off when unset",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Where the metrics port listens (loopback by default)"
    )

    @model_validator(mode="after")
    def _metrics_apart(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError(
                "VELVETROPE_METRICS_PORT must differ from the port velvetrope serves on: "
                "metrics are never served on the public port"
            )
        return self

    # Hot path and load (issue 13): the DPoP replay cache, password-hash admission.
    dpop_replay_scope: Literal["auto", "shared", "process"] = Field(
        "auto",
        description="Where a DPoP proof's first use is decided: shared (the store every "
        "node shares, behind an in-process cache), process (one server process over a store "
        "no other process verifies proofs against), auto (process for memory://, else shared)",
    )
    dpop_replay_cache_size: int = Field(
        65_536, ge=1024, le=1_048_576, description="Spent DPoP proof ids kept per process"
    )
    password_hash_queue: int = Field(
        32,
        ge=0,
        le=4096,
        description="Password checks that may wait for a hashing worker; past it, 503 with "
        "Retry-After",
    )
    password_hash_queue_timeout: Duration = Field(
        timedelta(seconds=2),
        description="A password check that waited this long for a worker is refused (503 "
        "with Retry-After) instead of hashing for a client that has likely given up",
    )
    password_hash_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="How much lower the hashing threads' CPU priority is than the event "
        "loop's (Linux nice increment), so sign-ins never starve authenticated requests",
    )

    # --- library mode: remember me, application claims, tests (issue 12) ---
    session_transient_lifetime: Duration | None = Field(
        None,
        description="Absolute lifetime of a session signed in without 'remember me' (its "
        "cookie has no Max-Age and ends with the browser); default: half of "
        "session_absolute_lifetime",
    )
    max_claims_bytes: int = Field(
        2048, ge=64, le=4096, description="Cap on application claims, as compact JSON bytes"
    )

    @field_validator("password_hash_profile")
    @classmethod
    def _test_only_on_memory(cls, value: str, info: ValidationInfo) -> str:
        if value == "test-only" and info.data.get("database_url") != "memory://":
            raise ValueError(
                "test-only hashes with almost no work and is for tests only: it needs "
                "VELVETROPE_DATABASE_URL=memory://"
            )
        return value

    # Slow and greedy clients (issue 14), per worker: velvetrope serve applies them
    # (web/server_limits.py, web/deadlines.py).
    header_timeout: Duration = Field(
        timedelta(seconds=10),
        description="Time for a request's line and headers to arrive (else 408, closed)",
    )
    body_timeout: Duration = Field(
        timedelta(seconds=30),
        description="Time for a request's whole body to arrive once read (else 408, closed)",
    )
    keep_alive_timeout: Duration = Field(
        timedelta(seconds=5), description="Idle time allowed between requests on a connection"
    )
    max_connections: int = Field(
        2048,
        ge=16,
        le=65536,
        description="Open connections per worker; past it the longest-idle one is closed",
    )
    max_header_bytes: int = Field(
        32 * 1024, ge=4096, le=1024 * 1024, description="Size of a request's line and headers"
    )

    # The persisted security log (issue 14; core/security_log.py).
    security_log_retention: Duration = Field(
        timedelta(days=90),
        description="How long security events (sign-ins, failures, revocations...) are kept",
    )

    @model_validator(mode="after")
    def _client_limits(self) -> Settings:
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            value: timedelta = getattr(self, name)
            if not timedelta(seconds=1) <= value <= timedelta(minutes=10):
                raise ValueError(f"VELVETROPE_{name.upper()} must be between 1 s and 10 min")
        if not timedelta(hours=1) <= self.security_log_retention <= timedelta(days=3650):
            raise ValueError("VELVETROPE_SECURITY_LOG_RETENTION must be between 1 h and 10 years")
        if self.max_header_bytes <= self.max_cookie_bytes:
            raise ValueError(
                "VELVETROPE_MAX_HEADER_BYTES must exceed VELVETROPE_MAX_COOKIE_BYTES, so an "
                "oversized Cookie header still gets its own answer (431 header_too_large)"
            )
        return self

    # The hybrid gateway (issue 10): GET /auth/gateway for nginx auth_request / Caddy
    # forward_auth; on only when at least one audience is configured.
    gateway_audiences: str = Field(
        "",
        description="Comma-separated services (audiences) the edge may mint internal tokens "
        "for; the proxy names one per location in X-Velvetrope-Audience. Empty: gateway off",
    )
    gateway_issuer: str | None = Field(
        None, description="`iss` of internal tokens (default: the origin)"
    )
    gateway_token_ttl: Duration = Field(
        timedelta(seconds=60), description="Internal token lifetime (5 s to 10 min)"
    )
    gateway_algorithm: Literal["EdDSA", "ES256", "RS256"] = "EdDSA"
    gateway_mint_cache: int = Field(
        10_000, ge=0, le=1_000_000, description="Minted tokens kept per node; 0: no mint cache"
    )

    @field_validator("gateway_audiences")
    @classmethod
    def _audiences_named(cls, value: str) -> str:
        # Only the empty value turns the gateway off; " , ," is a typo or a template
        # that lost its values, and reading it as "off" would hide that.
        if value and not any(part.strip() for part in value.split(",")):
            raise ValueError(
                f"{value[:40]!r} names no audience; list the services, comma-separated "
                "(orders,billing), or leave it empty to turn the gateway off"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_supported(cls, value: str) -> str:
        # A bad URL is a bad setting: refused when settings load (exit status 2, the
        # variable named), not later when the stores open.
        try:
            check_database_url(value)
        except ConfigurationError as exc:
            raise ValueError(exc.detail) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        schemes = {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}
        if value is not None and value.split("://", 1)[0] not in schemes:
            raise ValueError(
                "must be redis://host:port/db, rediss://..., unix:///path or "
                "redis+cluster://host:port[,host:port...]"
            )
        return value

    @field_validator("session_cache_ttl")
    @classmethod
    def _session_cache_ttl_bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(0) <= value <= timedelta(seconds=60):
            raise ValueError("must be between 0 and 60 seconds (0 turns the session cache off)")
        return value

    @field_validator("public_origin")
    @classmethod
    def _origin_shape(cls, value: str | None) -> str | None:
        return None if value is None else normalise_origin(value)

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        # OPS-01: cookies are always Secure; a plain-http origin other than loopback
        # (where browsers accept Secure cookies) needs an explicit development flag.
        parts = urlsplit(self.origin)
        insecure = parts.scheme == "http" and not (
            _is_loopback(parts.hostname or "") and _is_loopback(self.host)
        )
        if insecure and not self.dev_insecure_http:
            raise ValueError(
                f"the origin {self.origin} is plain http on a non-loopback host, where "
                "browsers drop Secure cookies; put velvetrope behind https and set "
                "VELVETROPE_PUBLIC_ORIGIN=https://..., or set "
                "VELVETROPE_DEV_INSECURE_HTTP=true for local development only"
            )
        for name in (
            "session_idle_timeout",
            "session_absolute_lifetime",
            "access_token_ttl",
            "refresh_idle_timeout",
            "refresh_absolute_lifetime",
            "login_max_delay",
            "login_ip_window",
            "reauth_window",
            "key_rotation",
            "revocation_poll",
            "password_hash_queue_timeout",
            "gateway_token_ttl",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"VELVETROPE_{name.upper()} must be a positive duration")
        self._lifetimes_in_order()
        if self.dpop == "require" and self.browser_credentials == "jwt-cookie":
            raise ValueError(
                "VELVETROPE_DPOP=require cannot be combined with "
                "VELVETROPE_BROWSER_CREDENTIALS=jwt-cookie: browsers hold those tokens in "
                "cookies, without a DPoP key; use session cookies (with device binding)"
            )
        if self.workers > 1 and self.dpop_replay_scope == "process":
            raise ValueError(
                "VELVETROPE_DPOP_REPLAY_SCOPE=process needs a single server process: with "
                "several workers a proof replayed to another worker would be accepted; use "
                "shared (or auto)"
            )
        self.dpop_policy()
        self.binding_policy()
        self.csrf_secret_bytes()
        self.cors_allowlist()
        self.token_policy()  # each raises ValueError with the reason (TIME-03 limits...)
        self.session_policy()
        self.throttle_policy()
        self.account_policy()
        self.smtp()
        check_sender(self.sender)

        if self.gateway_audiences.strip() and self.browser_credentials == "jwt-cookie":
            raise ValueError(
                "VELVETROPE_GATEWAY_AUDIENCES needs session cookies at the edge; it cannot be "
                "combined with VELVETROPE_BROWSER_CREDENTIALS=jwt-cookie"
            )
        self.gateway_policy()
        return self

    def _lifetimes_in_order(self) -> None:
        """The deadlines that bound each other, named as the variables that set them (the
        policies check the same in their own words)."""
        ordered = (
            ("session_idle_timeout", "session_absolute_lifetime"),
            ("session_touch_interval", "session_idle_timeout"),
            ("refresh_idle_timeout", "refresh_absolute_lifetime"),
        )
        for shorter, longer in ordered:
            low: timedelta = getattr(self, shorter)
            high: timedelta = getattr(self, longer)
            strict = shorter == "session_touch_interval"
            if low > high or (strict and low == high):
                raise ValueError(
                    f"VELVETROPE_{shorter.upper()} ({_seconds_text(low)}) "
                    f"{'must be shorter than' if strict else 'cannot exceed'} "
                    f"VELVETROPE_{longer.upper()} ({_seconds_text(high)})"
                )
        transient = self.session_transient_lifetime
        if transient is not None and transient <= timedelta(0):
            raise ValueError("VELVETROPE_SESSION_TRANSIENT_LIFETIME must be a positive duration")
        if transient is not None and transient >= self.session_absolute_lifetime:
            raise ValueError(
                f"VELVETROPE_SESSION_TRANSIENT_LIFETIME ({_seconds_text(transient)}) must be "
                "shorter than VELVETROPE_SESSION_ABSOLUTE_LIFETIME "
                f"({_seconds_text(self.session_absolute_lifetime)})"
            )
        if self.session_absolute_lifetime > timedelta(days=30):
            raise ValueError("VELVETROPE_SESSION_ABSOLUTE_LIFETIME must be at most 30 days")
        if self.access_token_ttl > timedelta(hours=1):
            raise ValueError("VELVETROPE_ACCESS_TOKEN_TTL must be at most 1 hour (3600 s)")

    def smtp(self) -> SmtpConfig | None:
        """The SMTP server ``smtp_url`` names, if any.

        Raises:
            ValueError: The URL is malformed (the message never shows the password).
        """
        if self.smtp_url is None:
            return None
        try:
            return smtp_config(self.smtp_url.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"VELVETROPE_SMTP_URL {exc}") from None

    @property
    def sender(self) -> str:
        """The From address of mail."""
        if self.mail_from is not None:
            return self.mail_from
        host = urlsplit(self.origin).hostname or "localhost"
        if _is_loopback(host) or ":" in host or host.replace(".", "").isdigit():
            host = "localhost"
        return email.utils.formataddr((self.mail_product, f"no-reply@{host}"))

    @property
    def mail_to_console(self) -> bool:
        """Whether mail is printed rather than sent: no SMTP server, in development (a
        loopback origin, or ``dev_insecure_http``). Elsewhere no mail leaves at all."""
        host = urlsplit(self.origin).hostname or ""
        return self.smtp_url is None and (_is_loopback(host) or self.dev_insecure_http)

    def account_policy(self) -> AccountMailPolicy:
        """Where mailed links point and how long they work."""
        return AccountMailPolicy(
            origin=self.origin,
            reset_ttl=self.password_reset_ttl,
            verify_ttl=self.email_verification_ttl,
            cooldown=self.mail_cooldown,
            product=self.mail_product,
        )

    def csrf_secret_bytes(self) -> bytes | None:
        """The configured CSRF secret, decoded; ``None`` to use the one in the database.

        Raises:
            ValueError: It is not base64 of at least 32 bytes.
        """
        if self.csrf_secret is None:
            return None
        text = self.csrf_secret.get_secret_value().strip()
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) < 32:
            raise ValueError(
                "VELVETROPE_CSRF_SECRET must be base64 of at least 32 random bytes, e.g. the "
                "output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return raw

    def cors_allowlist(self) -> tuple[str, ...]:
        """The origins allowed to call with credentials, normalised.

        Raises:
            ValueError: An entry is not an exact origin (``*`` and patterns are refused).
        """
        allowed = []
        for entry in (part.strip() for part in self.cors_origins.split(",")):
            if not entry:
                continue
            try:
                allowed.append(normalise_origin(entry))
            except ValueError as exc:
                raise ValueError(
                    f"VELVETROPE_CORS_ORIGINS: {entry[:100]!r} {exc} (exact origins only, "
                    "never * or patterns)"
                ) from None
        return tuple(allowed)

    @property
    def origin(self) -> str:
        """The configured public origin, or the one ``host`` and ``port`` give."""
        if self.public_origin is not None:
            return self.public_origin
        host = self.host
        if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - describing, not binding
            host = "0.0.0.0"  # noqa: S104
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def session_policy(self) -> SessionPolicy:
        """The session policy these settings describe."""
        return SessionPolicy(
            idle_timeout=self.session_idle_timeout,
            absolute_lifetime=self.session_absolute_lifetime,
            touch_interval=self.session_touch_interval,
            max_per_user=self.session_max_per_user,
            reauth_window=self.reauth_window,
            transient_lifetime=self.session_transient_lifetime,
        )

    def token_policy(self) -> TokenPolicy:
        """The token policy these settings describe (issuer and audience: the origin)."""
        return TokenPolicy(
            issuer=self.token_issuer or self.origin,
            audience=self.token_audience or self.origin,
            algorithm=self.token_algorithm,
            access_ttl=self.access_token_ttl,
            leeway=self.token_leeway,
            refresh_idle_timeout=self.refresh_idle_timeout,
            refresh_absolute_lifetime=self.refresh_absolute_lifetime,
            refresh_grace=self.refresh_grace,
            key_rotation=self.key_rotation,
            revocation_staleness=max(timedelta(seconds=5), 3 * self.revocation_poll),
        )

    def dpop_policy(self) -> DPoPPolicy:
        """The DPoP policy these settings describe."""
        scope = self.dpop_replay_scope
        if scope == "auto":  # a memory store is this process's alone
            memory = self.database_url.startswith("memory:") and self.redis_url is None
            scope = "process" if memory else "shared"
        return DPoPPolicy(
            mode=self.dpop,
            window=self.dpop_proof_window,
            nonce=self.dpop_nonce,
            replay_scope=scope,
            replay_cache_size=self.dpop_replay_cache_size,
        )

    def binding_policy(self) -> SessionBindingPolicy:
        """The device-bound session policy these settings describe."""
        return SessionBindingPolicy(
            mode=self.session_binding,
            bound_cookie_ttl=self.bound_cookie_ttl,
            grace=self.session_binding_grace,
        )

    def throttle_policy(self) -> ThrottlePolicy:
        """The login-throttling policy these settings describe."""
        return ThrottlePolicy(
            free_failures=self.login_free_failures,
            max_delay=self.login_max_delay,
            per_ip_failures=self.login_ip_failures,
            per_ip_window=self.login_ip_window,
            registrations_per_ip=self.registrations_per_ip,
        )

    def gateway_policy(self) -> GatewayPolicy | None:
        """The gateway's policy, or ``None`` when no audience is configured (gateway off).

        Raises:
            ValueError: An audience, the lifetime or the issuer is out of bounds.
        """
        audiences = frozenset(a.strip() for a in self.gateway_audiences.split(",") if a.strip())
        if not audiences:
            return None
        ttl = self.gateway_token_ttl
        return GatewayPolicy(
            issuer=self.gateway_issuer or self.origin,
            audiences=audiences,
            ttl=ttl,
            algorithm=self.gateway_algorithm,
            cache_size=self.gateway_mint_cache,
            renew_before=min(timedelta(seconds=5), ttl / 6),
        )

    @property
    def secure_cookies(self) -> bool:
        """Whether auth cookies carry ``Secure`` and the ``__Host-`` prefix."""
        parts = urlsplit(self.origin)
        return parts.scheme == "https" or _is_loopback(parts.hostname or "")

    @property
    def https(self) -> bool:
        """Whether the public origin is https (HSTS is sent then)."""
        return self.origin.startswith("https://")


def describe_validation_error(error: ValidationError) -> str:
    """Turn a settings validation error into one sentence per problem."""
    lines = []
    for item in error.errors():
        loc = "_".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"].startswith("time_delta"):  # say which forms a duration takes
            message = (
                f"{str(item.get('input'))[:40]!r} is not a duration; write seconds (1800) "
                "or ISO 8601 (PT30M, PT1H30M, P1D)"
            )
        if loc:
            lines.append(f"invalid setting VELVETROPE_{loc.upper()}: {message}")
        else:
            lines.append(f"invalid settings: {message}")
    return "\n".join(lines)
