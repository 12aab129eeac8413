"""Serving the app: waitress (a pure-Python WSGI server) on 127.0.0.1, or with an access token elsewhere."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

from ._errors import AppError


def is_loopback(host: str) -> bool:
    """Whether ``host`` means this computer only (127.0.0.0/8, ::1 or ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh access token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass
class AppServer:
    """A bound server: ``url`` to open (with ``?token=`` when one is needed), ``run()`` to serve, ``close()``."""

    server: object
    app: object
    host: str
    port: int
    token: str | None
    _closing: bool = field(default=False, init=False, repr=False)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def url(self) -> str:
        return self.address + (f"?token={self.token}" if self.token else "")

    def run(self) -> None:
        """Serve until :meth:`close` (called from another thread) or Ctrl-C."""
        try:
            self.server.run()
        except OSError:
            # close() from another thread pulls the sockets from under the poll that waits on them
            # (EBADF): that is how serving ends, not a failure.
            if not self._closing:
                raise

    def close(self) -> None:
        self._closing = True
        self.server.close()
        self.app.extensions["hemiface"]["study"].close()


def make_server(study_dir, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
                threads: int = 4) -> AppServer:
    """Bind the app over ``study_dir`` to ``host``:``port`` (0 picks a free port); serve with ``.run()``.

    On any address other than this computer's loopback an access token is
    required (:class:`AppError` without one); the caller prints :attr:`AppServer.url`
    once, for the people it is meant for.
    """
    from waitress import create_server

    from ._web import create_app

    local = is_loopback(host)
    if not local and not token:
        raise AppError(f"serving on {host} (reachable from other computers) requires an access token; "
                       "`hemiface app --host` generates one")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise AppError(f"port must be a whole number from 0 to 65535; got {port!r}")
    app = create_app(study_dir, token=token)
    try:
        server = create_server(app, host=host, port=port, threads=threads, ident="hemiface")
    except OSError as exc:
        app.extensions["hemiface"]["study"].close()
        raise AppError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return AppServer(server, app, host, int(server.effective_port), token)
