"""The access guard every request passes: the ``Host`` check, the caller's identity (session
cookie or API token), and the CSRF defence of state-changing requests made with the cookie.

One ASGI layer, because byte routes answer many small requests a second and each layer costs;
the decisions themselves are in ``request_checks`` and ``app.accounts``.
"""

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.accounts.credentials import new_secret, sign, tokens_equal
from app.accounts.identity import Identities
from app.accounts.policy import Caller
from app.errors import BadHost, CrossSiteRequest, InvalidToken, StreamportError
from app.web.body_limit import SMALL_BODY_BYTES
from app.web.errors import render_error
from app.web.request_checks import SAFE_METHODS, cross_site, host_allowed

SESSION_COOKIE = "streamport_session"
CSRF_COOKIE = "streamport_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CALLER = "streamport.caller"
_CSRF_BINDING = "streamport.csrf_binding"
_NEW_CSRF_COOKIE = "streamport.new_csrf_cookie"
_CSRF_PURPOSE = "csrf"


def caller_of(scope: Scope) -> Caller | None:
    """Who made this request: a signed-in user, or None for anonymous."""
    return scope.get(_CALLER)


def csrf_token(scope: Scope, key: bytes) -> str:
    """The token this request's pages put in their forms and scripts: tied to the session,
    or to a random cookie before sign-in (set on the response when it is new)."""
    binding = scope.get(_CSRF_BINDING)
    if binding is None:
        binding = new_secret()
        scope[_CSRF_BINDING] = scope[_NEW_CSRF_COOKIE] = binding
    return sign(key, _CSRF_PURPOSE, binding)


class AccessGuard:
    """Host check, then identity, then CSRF; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: frozenset[str],
        identities: Identities,
        secure_cookies: bool,
        public_origin: str | None = None,
    ) -> None:
        self.app = app
        self.public_origin = public_origin
        self.allowed_hosts = allowed_hosts
        self.identities = identities
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = authorization = cookie_header = origin = fetch_site = None
        hosts = 0
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
                hosts += 1
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"cookie":
                cookie_header = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"sec-fetch-site":
                fetch_site = value.decode("latin-1")
        try:
            # Two Host headers are a bad request (RFC 9112 §3.2), and the one checked here
            # might not be the one that absolute links are built from.
            if hosts > 1 or (
                not host_allowed(host, self.allowed_hosts)
                and not (host is None and scope.get("http_version") == "1.0")
            ):
                raise BadHost()
            cookies = cookie_parser(cookie_header) if cookie_header else {}
            bearer = _bearer_token(authorization)
            if bearer is not None:
                caller = await self.identities.from_token(bearer)
                if caller is None:
                    raise InvalidToken()
            else:
                session_cookie = cookies.get(SESSION_COOKIE)
                caller = (
                    await self.identities.from_cookie(session_cookie) if session_cookie else None
                )
            scope[_CALLER] = caller
            if caller is not None and caller.session_id is not None:
                scope[_CSRF_BINDING] = caller.session_id
            elif CSRF_COOKIE in cookies:
                scope[_CSRF_BINDING] = cookies[CSRF_COOKIE]
            if (
                bearer is None
                and scope["method"] not in SAFE_METHODS
                and (SESSION_COOKIE in cookies or not scope["path"].startswith("/api/"))
            ):
                if cross_site(origin, fetch_site, host, self.public_origin):
                    raise CrossSiteRequest()
                receive = await self._check_csrf_token(scope, receive)
        except StreamportError as exc:
            response = render_error(Request(scope), exc.status_code, exc.detail, exc.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, self._with_csrf_cookie(scope, send))

    async def _check_csrf_token(self, scope: Scope, receive: Receive) -> Receive:
        """Raise ``CrossSiteRequest`` unless the request carries this session's token: in the
        ``X-CSRF-Token`` header, a form's ``csrf_token`` field, or (for a multipart form,
        whose fields come after its files) the query. Returns what reads the body now."""
        submitted = None
        content_type = ""
        for name, value in scope["headers"]:
            if name == CSRF_HEADER.encode():
                submitted = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1").lower()
        if submitted is None and content_type.startswith("application/x-www-form-urlencoded"):
            body, receive = await _read_small_body(receive)
            values = parse_qs(body.decode("latin-1"), max_num_fields=100).get(CSRF_FIELD)
            submitted = values[0] if values else None
        if submitted is None and content_type.startswith("multipart/form-data"):
            values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(CSRF_FIELD)
            submitted = values[0] if values else None
        binding = scope.get(_CSRF_BINDING)
        if (
            submitted is None
            or binding is None
            or not tokens_equal(submitted, sign(self.identities.key, _CSRF_PURPOSE, binding))
        ):
            raise CrossSiteRequest(
                "The form has expired or did not come from Streamport's own pages; "
                "reload the page and try again."
            )
        return receive

    def _with_csrf_cookie(self, scope: Scope, send: Send) -> Send:
        cacheable = scope["path"].startswith("/static/")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and not cacheable:
                headers = message.get("headers", [])
                # Pages and API answers depend on who asks (and carry CSRF tokens, share
                # links): no cache keeps them unless the route says otherwise, as the byte
                # routes do.
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    message["headers"] = [*headers, (b"cache-control", b"private, no-store")]
            if message["type"] == "http.response.start" and _NEW_CSRF_COOKIE in scope:
                cookie: SimpleCookie = SimpleCookie()
                cookie[CSRF_COOKIE] = scope.pop(_NEW_CSRF_COOKIE)
                morsel = cookie[CSRF_COOKIE]
                morsel["path"] = "/"
                morsel["httponly"] = True
                morsel["samesite"] = "Lax"
                if self.secure_cookies:
                    morsel["secure"] = True
                header = cookie.output(header="").strip().encode("latin-1")
                message["headers"] = [*message.get("headers", []), (b"set-cookie", header)]
            await send(message)

        return send_with_cookie


def _bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _read_small_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read a form body (bounded by ``BodyLimit``, outside this layer) and hand it on."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > SMALL_BODY_BYTES or not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
