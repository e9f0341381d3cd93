"""The edge's proxy configuration for nginx and Caddy, rendered from one layout.

``deploy/nginx/velvetrope-gateway.conf`` and ``deploy/caddy/Caddyfile`` are
:func:`nginx_site` and :func:`caddyfile` of :data:`EXAMPLE` (a test keeps them equal),
and the end-to-end tests and ``benchmarks/gateway.py`` run exactly these texts with
their own ports. What every rendering does, for each guarded location:

* asks velvetrope's edge check (``GET /auth/gateway``, over a keep-alive upstream of
  every node) with the original method and URI, the location's audience, and the
  client's credentials: its cookies, and ``Authorization`` and ``DPoP`` for token
  callers (a DPoP proof is checked against the original method and URI);
* forwards the internal token as ``Authorization: Bearer``, overwriting whatever the
  client sent as ``Authorization`` (its access token never reaches the service), and
  drops ``DPoP``, ``X-Velvetrope-Token``, ``X-Velvetrope-Audience``,
  ``X-Original-Method`` and ``X-Original-URI``;
* strips velvetrope's cookies (session, bound, CSRF, and any duplicates) from the
  request to the service, keeping the service's own. nginx removes three with chained
  maps (all velvetrope sets on a browser at once) and, should more be left (a client
  sending duplicates), drops the whole ``Cookie`` header rather than pass one on;
  Caddy removes every one;
* answers a refusal itself: ``401`` sends browsers (``Accept: text/html``) to
  ``/signin`` and gives API clients the JSON error (with the check's
  ``WWW-Authenticate`` and, with DPoP nonces on, ``DPoP-Nonce``); ``403`` (CSRF) is
  JSON; a check that failed (``503``
  ``store_unavailable`` when the store is down, or no node answering) is a JSON ``503``
  with ``Retry-After`` (nginx turns any other status of ``auth_request`` into a bare
  ``500``, so the rendering maps it; Caddy passes the check's ``503`` on as it is).
  None of these answers may be cached.

Everything else (``/auth/*``, the pages) goes to the velvetrope nodes, except
``/auth/gateway`` itself, which only the proxy may call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EXAMPLE", "EdgeLayout", "GuardedService", "caddyfile", "nginx_conf", "nginx_site"]


@dataclass(frozen=True, slots=True)
class GuardedService:
    """A service behind the gateway: its path prefix at the edge, audience and address.

    ``rewrite`` (nginx only) replaces the prefix on the way to the service (``/bench/``).
    """

    path: str
    audience: str
    upstream: str
    rewrite: str = ""


@dataclass(frozen=True, slots=True)
class EdgeLayout:
    """Where the edge listens, the velvetrope nodes, and the guarded services.

    ``direct`` (benchmarks only) adds an unguarded path to the first service, to measure
    what the gateway adds.
    """

    listen: str = "127.0.0.1:8080"
    nodes: tuple[str, ...] = ("127.0.0.1:8001", "127.0.0.1:8002")
    services: tuple[GuardedService, ...] = field(
        default=(GuardedService("/api/orders/", "orders", "127.0.0.1:9001"),)
    )
    direct: str | None = None


EXAMPLE = EdgeLayout()

_SESSION_RE = r"(?:^|;)\s*(?:__Host-)?velvetrope-session=(?<vr_id>[^;]+)"
# Removes one velvetrope cookie (and its separator) from a Cookie header; chained
# _STRIP_STEPS times (session, bound, CSRF: all velvetrope ever sets on a browser at once).
_COOKIE_RE = r"^(?<pre>(?:[^;]*;\s*)*?)\s*(?:__Host-)?velvetrope-[a-z]+=[^;]*(?:;\s*)?(?<post>.*)$"
# Any velvetrope cookie still there after the steps (duplicates): no Cookie header at all.
_LEFT_RE = r"(?:^|;)\s*(?:__host-)?velvetrope-"
_STRIP_STEPS = 3
_UNAVAILABLE = (
    '{"error":"$vr_unavailable",'
    '"detail":"The authentication service is unavailable; try again shortly."}'
)


def nginx_site(layout: EdgeLayout) -> str:
    """The ``http {}``-level configuration: upstreams, cookie maps and the edge server."""
    nodes = "\n".join(f"    server {node} max_fails=0;" for node in layout.nodes)
    upstreams = [
        f"upstream velvetrope {{\n{nodes}\n    keepalive 32;\n}}",
        # The edge checks of one session go to one node (consistent hashing on the session
        # cookie), so its token is minted once per lifetime, not once per node; a node
        # that fails hands its sessions to the others.
        f"upstream velvetrope_check {{\n    hash $vr_session$http_authorization consistent;\n"
        f"{nodes}\n"
        "    keepalive 32;\n}",
        *(
            f"upstream {s.audience} {{\n    server {s.upstream};\n    keepalive 32;\n}}"
            for s in layout.services
        ),
    ]
    maps = [f'map $http_cookie $vr_session {{\n    "~{_SESSION_RE}" $vr_id;\n    default "";\n}}']
    source = "$http_cookie"
    for step in range(1, _STRIP_STEPS + 1):
        maps.append(
            f'map {source} $vr_cookies_{step} {{\n    "~{_COOKIE_RE}" "$pre$post";\n'
            f"    default {source};\n}}"
        )
        source = f"$vr_cookies_{step}"
    maps.append(f'map {source} $vr_cookies {{\n    "~*{_LEFT_RE}" "";\n    default {source};\n}}')
    # The check's refusal code, or (no node answered) the outage's.
    maps.append(
        'map $vr_error $vr_unavailable {\n    "" "store_unavailable";\n    default $vr_error;\n}'
    )
    locations = [_nginx_guarded(s) for s in layout.services]
    if layout.direct is not None:
        first = layout.services[0]
        locations.append(
            f"    # Benchmarks only: the same service without the gateway.\n"
            f"    location {layout.direct} {{\n"
            f"        proxy_pass http://{first.audience}{first.rewrite};\n{_KEEPALIVE}    }}\n"
        )
    return (
        "# velvetrope hybrid gateway: include inside http { } (see README, The hybrid gateway).\n"
        + "\n\n".join(upstreams + maps)
        + f"""

server {{
    listen {layout.listen};

    # The edge check answers the proxy only, never a browser.
    location ^~ /auth/gateway {{
        return 404;
    }}

    # velvetrope itself: sign-in, pages, the API.
    location / {{
        proxy_pass http://velvetrope;
{_KEEPALIVE}        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}

{"".join(locations)}
    location @velvetrope_401 {{
        add_header Cache-Control no-store always;
        add_header WWW-Authenticate $vr_challenge always;
        add_header DPoP-Nonce $vr_nonce always;
        if ($http_accept ~* "text/html") {{
            return 302 /signin;
        }}
        default_type application/json;
        return 401 '{{"error":"$vr_error","detail":"Sign in first, or send a valid token."}}';
    }}

    location @velvetrope_403 {{
        add_header Cache-Control no-store always;
        default_type application/json;
        return 403 '{{"error":"$vr_error","detail":"The edge refused this request."}}';
    }}

    # auth_request answers any status but 2xx/401/403 of the check (503 when the store
    # is down, 502 when no node answers) with a bare 500: make it the JSON 503.
    location @velvetrope_unavailable {{
        add_header Cache-Control no-store always;
        add_header Retry-After 5 always;
        default_type application/json;
        return 503 '{_UNAVAILABLE}';
    }}
}}
"""
    )


_KEEPALIVE = '        proxy_http_version 1.1;\n        proxy_set_header Connection "";\n'


def _nginx_guarded(service: GuardedService) -> str:
    check = f"/_velvetrope_check/{service.audience}"
    return f"""    # {service.audience}: guarded by the gateway.
    location {service.path} {{
        auth_request {check};
        auth_request_set $vr_token $upstream_http_x_velvetrope_token;
        auth_request_set $vr_error $upstream_http_x_velvetrope_error;
        auth_request_set $vr_challenge $upstream_http_www_authenticate;
        auth_request_set $vr_nonce $upstream_http_dpop_nonce;
        error_page 401 = @velvetrope_401;
        error_page 403 = @velvetrope_403;
        error_page 500 = @velvetrope_unavailable;
        proxy_pass http://{service.audience}{service.rewrite};
{_KEEPALIVE}        proxy_set_header Authorization "Bearer $vr_token";
        proxy_set_header DPoP "";
        proxy_set_header X-Velvetrope-Token "";
        proxy_set_header X-Velvetrope-Audience "";
        proxy_set_header X-Original-Method "";
        proxy_set_header X-Original-URI "";
        proxy_set_header Cookie $vr_cookies;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}

    location = {check} {{
        internal;
        proxy_pass http://velvetrope_check/auth/gateway;
{_KEEPALIVE}        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Forwarded-Method "";
        proxy_set_header X-Forwarded-Uri "";
        proxy_set_header Authorization $http_authorization;
        proxy_set_header DPoP $http_dpop;
        proxy_set_header X-Velvetrope-Audience {service.audience};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}

"""


def nginx_conf(layout: EdgeLayout, root: str, *, user: str | None = None) -> str:
    """A whole ``nginx.conf`` around :func:`nginx_site`, running in the foreground from
    the directory ``root`` (its pid file, logs and temporary files)."""
    who = f"user {user};\n" if user else ""
    site = "\n".join(f"  {line}" if line else "" for line in nginx_site(layout).splitlines())
    return f"""{who}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
{site}
}}
"""


def caddyfile(layout: EdgeLayout) -> str:
    """The same edge for Caddy (``forward_auth``), as a Caddyfile."""
    nodes = " ".join(layout.nodes)
    routes = "".join(_caddy_guarded(s, nodes) for s in layout.services)
    return f"""# velvetrope hybrid gateway for Caddy (see README, The hybrid gateway).
{{
    admin off
    auto_https off
}}

http://{layout.listen} {{
    # The edge check answers the proxy only, never a browser.
    @edge_check path /auth/gateway /auth/gateway/*
    respond @edge_check 404

{routes}
    # velvetrope itself: sign-in, pages, the API.
    reverse_proxy {nodes}
}}
"""


def _caddy_guarded(service: GuardedService, nodes: str) -> str:
    return f"""    # {service.audience}: guarded by the gateway.
    route {service.path}* {{
        # Authorization and DPoP go to the check (token callers), never to the service.
        request_header -X-Velvetrope-Token
        request_header -X-Velvetrope-Audience
        request_header -X-Original-Method
        request_header -X-Original-URI
        forward_auth {nodes} {{
            uri /auth/gateway
            # A session's checks go to one node (a hash of its cookies): one mint per
            # token lifetime, not one per node (token callers, without cookies, go to
            # any node: at most one mint per node and lifetime).
            lb_policy header Cookie
            header_up X-Velvetrope-Audience {service.audience}
            copy_headers X-Velvetrope-Token
            @refused status 401
            handle_response @refused {{
                @browser header Accept *text/html*
                redir @browser /signin 302
                header Content-Type application/json
                header Cache-Control no-store
                copy_response_headers {{
                    include WWW-Authenticate DPoP-Nonce
                }}
                respond `{_CADDY_401}` 401
            }}
        }}
        request_header Authorization "Bearer {{http.request.header.X-Velvetrope-Token}}"
        request_header -X-Velvetrope-Token
        request_header -DPoP
        request_header Cookie "{_CADDY_COOKIE_RE}" "$1"
        reverse_proxy {service.upstream}
    }}

"""


_CADDY_401 = (
    '{"error":"{rp.header.X-Velvetrope-Error}","detail":"Sign in first, or send a valid token."}'
)
# Caddy drops an empty replacement, so the separator before the cookie is kept ($1).
_CADDY_COOKIE_RE = r"(^|;\s*)(?:__Host-)?velvetrope-[a-z]+=[^;]*"
