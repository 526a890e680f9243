"""What the guard, the checks and the framework adapters all speak: the handshake a check sees,
what a check answers, and the exception an application raises to deny.

- `Handshake` is the read-only view of a WebSocket handshake a check is given, with `MultiMap`
  for its headers, query and cookies.
- A `Check` is a sync or async callable ``Handshake -> CheckResult``: ``None`` admits, a
  `Denial` refuses, and raising `Denied` refuses with its denial and close reason. An
  `Admission` admits with effects: entries the application finds in its scope, and a release
  the guard calls once when the connection ends, however it ends (the hook of checks that hold
  something for the connection's life, such as a connection cap's lease).
- `admit` runs one the way `asgi_ws_deny.guard.WebSocketGuard` does, failing closed;
  `run_check` does the same for adapters that cannot hold a release; `AllOf` composes several,
  the first refusal winning and releasing what the checks before it took.

Nothing here sends a message or imports an event loop; the rooms above (``guard``, ``checks``,
``contrib``) do that.
"""

from __future__ import annotations

import builtins
import http
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from asgi_ws_deny import _deny

__all__ = (
    "MAX_CLOSE_REASON_BYTES",
    "Admission",
    "AllOf",
    "Check",
    "CheckError",
    "CheckResult",
    "Denied",
    "Handshake",
    "InvalidCheckError",
    "MultiMap",
    "admit",
    "check_name",
    "close_reason",
    "denied_in",
    "run_check",
    "status_phrase",
)

_logger = logging.getLogger("asgi_ws_deny")

#: RFC 6455 section 5.5: a control frame carries at most 125 bytes, two of them the close code.
MAX_CLOSE_REASON_BYTES = 123


class Admission:
    """What a check returns to admit a handshake with effects; ``None`` admits without any.

    ``Admission(*, scope=None, release=None)``

    - ``scope``: entries the guard adds to the ASGI scope before it calls the application,
      which reads them as ``scope[key]`` (a ticket's subject, say). Name keys after your
      package, as ASGI extensions do, so that they cannot meet a server's or a framework's.
    - ``release``: a callable, sync or async, that the guard calls exactly once when the
      connection ends, however it ends: the application returns or raises, the connection is
      cancelled, or the handshake is denied after all (by a later check of an `AllOf`, or by
      the application). A check that holds something for the life of a connection (a lease of
      `asgi_ws_deny.checks.ConnectionLimit`) takes it before returning and gives it back here.
      Under trio a cancelled connection's release runs in a cancelled scope, where an await
      raises at once: keep a release sync, as the package's own are, or shield it.

    An error of ``release`` is logged on the ``"asgi_ws_deny"`` logger and does not replace
    the application's own outcome.
    """

    __slots__ = ("_released", "release", "scope")

    def __init__(
        self,
        *,
        scope: Mapping[str, Any] | None = None,
        release: Callable[[], object] | None = None,
    ) -> None:
        if release is not None and not callable(release):
            raise InvalidCheckError(f"release must be callable, got {type(release).__name__}")
        self.scope: Mapping[str, Any] = MappingProxyType(dict(scope or {}))
        self.release = release
        self._released = False

    async def end(self) -> None:
        """Call ``release`` (awaiting it when it is async), once; later calls do nothing."""
        if self._released or self.release is None:
            return
        self._released = True
        outcome = self.release()
        if inspect.isawaitable(outcome):
            await outcome

    @classmethod
    def combine(cls, admissions: Iterable[Admission]) -> Admission:
        """One admission for several: every scope entry (a later one wins a key) and every
        release, called in reverse order, each one whatever the others do."""
        parts = tuple(admissions)
        scope: dict[str, Any] = {}
        for part in parts:
            scope.update(part.scope)
        releasing = [part for part in parts if part.release is not None]
        if not releasing:
            return cls(scope=scope)

        async def release() -> None:
            for part in reversed(releasing):
                await _end_quietly(part)

        return cls(scope=scope, release=release)

    def __repr__(self) -> str:
        # Keys only: a value may be a subject or a credential.
        keys = sorted(self.scope)
        return f"{type(self).__name__}(scope_keys={keys!r}, release={self.release is not None})"


async def _end_quietly(admission: Admission) -> None:
    try:
        await admission.end()
    except Exception:
        _logger.exception("A check's release raised; the connection has ended all the same")


#: What a check gives back: ``None`` or an `Admission` admits, a `Denial` refuses.
CheckResult = _deny.Denial | Admission | None
#: A sync or async callable deciding on a `Handshake`; it may also raise `Denied`.
Check = Callable[["Handshake"], "CheckResult | Awaitable[CheckResult]"]


class InvalidCheckError(_deny.DenyError, ValueError):
    """A check was configured with an option it cannot work with. Raised at construction."""


class CheckError(_deny.DenyError, RuntimeError):
    """A check failed, and its message says all there is to log.

    `run_check` logs it without its traceback and without the exception it replaced: the
    frames a check's exception passes through hold the handshake (its scope, its cookies and
    ``Authorization`` header) and the check's own locals (a token), and error trackers record
    the local variables of every frame of a logged traceback. A check that raises it puts what
    helps find the failure (the file and line where it happened, as text) in the message.
    """


def status_phrase(status: int) -> str:
    """The reason phrase of an HTTP status ("Not Found"), or ``""`` for an unregistered one."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def close_reason(reason: str) -> str:
    """``reason`` cut to the 123 UTF-8 bytes a close frame can carry (RFC 6455 section 5.5)."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return reason
    # The cut may fall inside a multi-byte character; "ignore" drops only that partial tail.
    return encoded[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def check_name(check: object) -> str:
    """A check's name for a log or an error: never its repr, which may hold a key or a token."""
    name = getattr(check, "__qualname__", None) or type(check).__qualname__
    return f"{getattr(check, '__module__', None) or type(check).__module__}.{name}"


# --- The exception an application raises -----------------------------------------------------


_EXCEPTION_GROUP: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)


def _exception_group() -> type[BaseException] | None:
    """The type of exception groups: built in from Python 3.11; on 3.10, that of the
    ``exceptiongroup`` backport, which trio and anyio load before they raise a group."""
    if _EXCEPTION_GROUP is not None:
        return _EXCEPTION_GROUP
    backport = sys.modules.get("exceptiongroup")
    group: type[BaseException] | None = getattr(backport, "BaseExceptionGroup", None)
    return group


class Denied(Exception):
    """Raise to deny the WebSocket handshake from anywhere under a `WebSocketGuard`.

    ``Denied(status, headers=(), body=b"", *, reason=None)`` validates its arguments into a
    `Denial` at once (so a bad status fails where it is raised, with `InvalidDenialError`);
    ``status`` may also be a ready `Denial`, given alone. ``reason`` is the text of the close
    frame when the denial travels as a close (after accept, or under a browser-visible policy);
    it defaults to the status phrase ("Not Found") and is cut to 123 UTF-8 bytes when sent.

    It is not a `DenyError`: those report misuse of this package, while `Denied` is an answer
    the application chose, so ``except DenyError`` does not swallow it.
    """

    def __init__(
        self,
        status: int | _deny.Denial = 403,
        headers: _deny.Headers = (),
        body: _deny.Body = b"",
        *,
        reason: str | None = None,
    ) -> None:
        denial = _deny.as_denial(status, headers, body)
        if reason is None:
            reason = status_phrase(denial.status)
        elif not isinstance(reason, str):
            raise _deny.InvalidDenialError(f"reason must be str, got {type(reason).__name__}")
        try:
            reason.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _deny.InvalidDenialError(
                f"reason cannot be encoded as UTF-8: {exc.reason}"
            ) from None
        super().__init__(denial.status, reason)
        self._denial = denial
        self._reason = reason

    @property
    def denial(self) -> _deny.Denial:
        """The validated response."""
        return self._denial

    @property
    def status(self) -> int:
        """The HTTP status of the denial."""
        return self._denial.status

    @property
    def reason(self) -> str:
        """The close reason, uncut."""
        return self._reason

    def __str__(self) -> str:
        return f"{self._denial.status} {self._reason}".rstrip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._denial!r}, reason={self._reason!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_denied, (type(self), self._denial, self._reason))


def _restore_denied(cls: type[Denied], denial: _deny.Denial, reason: str) -> Denied:
    return cls(denial, reason=reason)


def denied_in(exc: BaseException) -> Denied | None:
    """The `Denied` that ``exc`` is, or that alone fills an exception group, else None."""
    if isinstance(exc, Denied):
        return exc
    group = _exception_group()
    if group is not None and isinstance(exc, group):
        # A Denied raised inside a task group arrives wrapped; it still means "deny" when
        # nothing else failed beside it.
        matched, rest = exc.split(Denied)  # type: ignore[attr-defined]
        while matched is not None and rest is None and not isinstance(matched, Denied):
            matched = matched.exceptions[0]
        if isinstance(matched, Denied):
            return matched
    return None


# --- The read-only view of a handshake ------------------------------------------------------


class MultiMap(Mapping[str, str]):
    """A read-only mapping that keeps every value of a repeated key, in order.

    ``m[key]`` and ``m.get(key)`` give the first value, ``m.getall(key)`` all of them, and
    ``m.multi_items()`` every pair as received. With ``case_insensitive`` (headers) keys are
    compared and listed in lowercase.
    """

    __slots__ = ("_fold", "_index", "_items")

    _fold: Callable[[str], str] | None
    _items: tuple[tuple[str, str], ...]
    _index: dict[str, tuple[str, ...]]

    def __init__(self, items: Iterable[tuple[str, str]], *, case_insensitive: bool = False) -> None:
        fold = str.lower if case_insensitive else None
        pairs = tuple((fold(k) if fold else k, v) for k, v in items)
        index: dict[str, list[str]] = {}
        for key, value in pairs:
            index.setdefault(key, []).append(value)
        object.__setattr__(self, "_fold", fold)
        object.__setattr__(self, "_items", pairs)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})

    def _key(self, key: str) -> str:
        return self._fold(key) if self._fold is not None and isinstance(key, str) else key

    def __getitem__(self, key: str) -> str:
        return self._index[self._key(key)][0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._key(key) in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def getall(self, key: str) -> tuple[str, ...]:
        """Every value of ``key`` in order; empty when it is absent."""
        return self._index.get(self._key(key), ())

    def multi_items(self) -> tuple[tuple[str, str], ...]:
        """Every (key, value) pair in order, repeats included."""
        return self._items

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._items)!r})"


class Handshake:
    """A read-only view of a WebSocket handshake, given to a guard's check.

    Every attribute is derived from the ASGI scope on first use: ``path``, ``root_path``,
    ``query_string`` (raw bytes) and ``query`` (parsed, blank values kept), ``headers``
    (case-insensitive, repeats kept, decoded as latin-1), ``cookies`` (across every ``Cookie``
    header: the first value of each name, ``getall`` for every one), ``origin``, ``client``
    and ``server`` (``(host, port)`` or ``None``), ``subprotocols``, ``http_version``,
    ``scheme``, and ``scope`` itself as a read-only mapping.
    """

    __slots__ = ("_cache", "_scope")

    _scope: Mapping[str, Any]
    _cache: dict[str, Any]

    def __init__(self, scope: _deny.Scope) -> None:
        # Every admitted handshake pays for this, so it only keeps the scope: what a check asks
        # for is derived on first use and kept in `_cache`, made then too.
        object.__setattr__(self, "_scope", scope)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def _memo(self) -> dict[str, Any]:
        try:
            return self._cache
        except AttributeError:
            cache: dict[str, Any] = {}
            object.__setattr__(self, "_cache", cache)
            return cache

    @property
    def scope(self) -> Mapping[str, Any]:
        """The ASGI scope, read-only (its nested values are the server's own)."""
        memo = self._memo()
        cached = memo.get("scope")
        if cached is None:
            cached = memo["scope"] = MappingProxyType(self._scope)
        return cached

    @property
    def path(self) -> str:
        """The decoded request path, without the query string."""
        return str(self._scope.get("path", ""))

    @property
    def root_path(self) -> str:
        """Where the application is mounted."""
        return str(self._scope.get("root_path", "") or "")

    @property
    def query_string(self) -> bytes:
        """The raw query string."""
        return bytes(self._scope.get("query_string", b"") or b"")

    @property
    def query(self) -> MultiMap:
        """The parsed query string; ``?a=1&a=2`` gives ``query["a"] == "1"``, ``getall`` both."""
        memo = self._memo()
        cached = memo.get("query")
        if cached is None:
            pairs = parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True)
            cached = memo["query"] = MultiMap(pairs)
        return cached

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The request headers as the server gave them."""
        return tuple((bytes(k), bytes(v)) for k, v in self._scope.get("headers", ()))

    @property
    def headers(self) -> MultiMap:
        """The request headers, case-insensitive, repeats kept in order."""
        memo = self._memo()
        cached = memo.get("headers")
        if cached is None:
            pairs = ((k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers)
            cached = memo["headers"] = MultiMap(pairs, case_insensitive=True)
        return cached

    @property
    def cookies(self) -> MultiMap:
        """Cookies by name (RFC 6265 section 5.4): ``cookies["a"]`` is the first of a repeated
        name, ``cookies.getall("a")`` every value in order (a sibling subdomain can add one)."""
        memo = self._memo()
        cached = memo.get("cookies")
        if cached is None:
            pairs = []
            for header in self.headers.getall("cookie"):
                for pair in header.split(";"):
                    name, sep, value = pair.partition("=")
                    name = name.strip()
                    if sep and name:
                        pairs.append((name, value.strip()))
            cached = memo["cookies"] = MultiMap(pairs)
        return cached

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header, which every browser sends; ``None`` when absent."""
        return self.headers.get("origin")

    @property
    def client(self) -> tuple[str, int] | None:
        """The remote ``(host, port)``, or ``None`` when the server does not know it."""
        return _address(self._scope.get("client"))

    @property
    def server(self) -> tuple[str, int | None] | None:
        """The listening ``(host, port)`` (``(path, None)`` for a unix socket), or ``None``."""
        return _address(self._scope.get("server"))

    @property
    def subprotocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered, in its order of preference."""
        return tuple(self._scope.get("subprotocols") or ())

    @property
    def http_version(self) -> str:
        """``"1.1"`` or ``"2"``."""
        return str(self._scope.get("http_version", "1.1"))

    @property
    def scheme(self) -> str:
        """``"ws"`` or ``"wss"``."""
        return str(self._scope.get("scheme", "ws") or "ws")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} client={self.client!r}>"


def _address(value: Any) -> tuple[Any, Any] | None:
    if value is None:
        return None
    host, port = value
    return (host, port)


# --- Running a check --------------------------------------------------------------------------


_Refusal = tuple[_deny.Denial, str | None]


async def admit(
    check: Check, scope: _deny.Scope, error_denial: _deny.Denial
) -> _Refusal | Admission | None:
    """Run ``check`` on the handshake of ``scope`` as `WebSocketGuard` does, failing closed.

    Returns ``None`` or the check's `Admission` when it admitted; otherwise the denial to send
    and the reason to close with: the check's `Denial`, a raised `Denied`'s denial and reason,
    or ``error_denial`` (logged) for an exception or any other return value. The caller applies
    the admission's scope entries and calls its `Admission.end` when the connection ends.
    """
    try:
        result: object = check(Handshake(scope))
    except Exception as exc:
        return _check_raised(check, scope, error_denial, exc)
    if result is None:
        return None
    return await _check_returned(check, scope, error_denial, result)


async def run_check(
    check: Check, scope: _deny.Scope, error_denial: _deny.Denial
) -> _Refusal | None:
    """`admit` for adapters that run a check outside the guard, such as a framework's
    dependency, and cannot call a release when the connection ends.

    Returns ``None`` when the check admitted, after adding an `Admission`'s scope entries to
    ``scope`` itself; otherwise the denial and the reason, as `admit`. An admission with a
    release (a connection cap's lease) is released at once and fails closed with
    ``error_denial``, logged: such a check needs `WebSocketGuard`.
    """
    verdict = await admit(check, scope, error_denial)
    if not isinstance(verdict, Admission):
        return verdict
    if verdict.release is not None:
        await _end_quietly(verdict)
        _logger.error(
            "WebSocket check %s holds something for the connection's life (its Admission has "
            "a release), which only WebSocketGuard can give back; denying %r with %d",
            check_name(check),
            scope.get("path"),
            error_denial.status,
        )
        return error_denial, None
    scope.update(verdict.scope)  # type: ignore[attr-defined]
    return None


def _check_raised(
    check: Check, scope: _deny.Scope, error_denial: _deny.Denial, exc: Exception
) -> _Refusal:
    """A raised `Denied` refuses with its denial; any other exception fails closed, logged."""
    denied = denied_in(exc)
    if denied is not None:
        return denied.denial, denied.reason
    if isinstance(exc, CheckError):
        # Logged from its message alone: no frame of its traceback (which holds the scope and
        # maybe a token) and no exception it replaced reaches the log, or an error tracker.
        exc.__traceback__ = exc.__context__ = exc.__cause__ = None
        _logger.error(
            "WebSocket check %s failed on %r; denying with %d",
            check_name(check),
            scope.get("path"),
            error_denial.status,
            exc_info=(type(exc), exc, None),
        )
        return error_denial, None
    _logger.exception(
        "WebSocket check %s raised on %r; denying with %d",
        check_name(check),
        scope.get("path"),
        error_denial.status,
        exc_info=exc,
    )
    return error_denial, None


async def _check_returned(
    check: Check, scope: _deny.Scope, error_denial: _deny.Denial, result: object
) -> _Refusal | Admission | None:
    """Judge what a check returned other than ``None``: await it first when it is awaitable."""
    if inspect.isawaitable(result):
        try:
            result = await result
        except Exception as exc:
            return _check_raised(check, scope, error_denial, exc)
        if result is None:
            return None
    if isinstance(result, _deny.Denial):
        return result, None
    if isinstance(result, Admission):
        return result
    _logger.error(
        "WebSocket check %s returned a %s on %r; a check returns None or an Admission to admit "
        "or a Denial to refuse; denying with %d",
        check_name(check),
        type(result).__name__,
        scope.get("path"),
        error_denial.status,
    )
    return error_denial, None


# --- Composition ------------------------------------------------------------------------------


class AllOf:
    """Run checks in order; the first refusal wins. Give it to the guard as its ``check``.

    ``AllOf(*checks)``: each check is sync or async. A `Denial` from one check is the answer
    and the checks after it do not run; ``None`` from every check admits, and the `Admission`
    of some checks are combined into one (`Admission.combine`). A check that raises (`Denied`
    included) stops the chain and the exception reaches the guard, which fails closed as for
    any check; a result that is neither ``None``, an `Admission` nor a `Denial` raises
    `TypeError`. A refusal or an exception after an admission with a release gives it back
    before it reaches the guard. While the checks are sync and none has admitted with effects
    ``AllOf`` is sync; from the first awaitable result or `Admission` on it returns a
    coroutine. Order them cheap first: origin and subprotocol, then the rate limit, then a
    token validator that may do I/O, and a check that takes a lease (a connection cap) last,
    so that a refusal takes none. Raises `InvalidCheckError` for no checks or one that is not
    callable.

    Checks with a true ``runs_first`` attribute (`asgi_ws_deny.checks.OriginCheck` has one)
    run before the others, whatever the order given; ``checks`` holds the order they run in.
    A page on another origin must learn nothing from how it is refused: run after a token
    check, the origin check would let it tell a valid session (refused for its origin) from
    an invalid one (refused for its token), through the close code of a browser-visible
    refusal or through the time the token check took.
    """

    __slots__ = ("checks",)

    def __init__(self, *checks: Check) -> None:
        if not checks:
            raise InvalidCheckError("AllOf needs at least one check")
        for check in checks:
            if not callable(check):
                raise InvalidCheckError(f"each check must be callable, got {check!r}")
        first: list[Check] = []
        rest: list[Check] = []
        for check in checks:
            (first if getattr(check, "runs_first", False) is True else rest).append(check)
        self.checks: tuple[Check, ...] = (*first, *rest)

    def __call__(self, handshake: Handshake) -> CheckResult | Awaitable[CheckResult]:
        for index, check in enumerate(self.checks):
            result = check(handshake)
            if inspect.isawaitable(result) or isinstance(result, Admission):
                return self._finish(handshake, index, result)
            if result is not None:
                return _refusal(check, result)
        return None

    async def _finish(self, handshake: Handshake, index: int, pending: object) -> CheckResult:
        admitted: list[Admission] = []
        try:
            for position in range(index, len(self.checks)):
                check = self.checks[position]
                outcome = pending if position == index else check(handshake)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                if isinstance(outcome, Admission):
                    admitted.append(outcome)
                elif outcome is not None:
                    refusal = _refusal(check, outcome)
                    await _give_back(admitted)
                    return refusal
        except BaseException:
            await _give_back(admitted)
            raise
        return Admission.combine(admitted) if admitted else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.checks))})"


async def _give_back(admitted: list[Admission]) -> None:
    for admission in reversed(admitted):
        await _end_quietly(admission)
    admitted.clear()


def _refusal(check: Check, result: object) -> _deny.Denial:
    if isinstance(result, _deny.Denial):
        return result
    raise TypeError(
        f"check {check_name(check)} returned {type(result).__name__}; a check returns None or "
        "an Admission to admit or a Denial to refuse"
    )
