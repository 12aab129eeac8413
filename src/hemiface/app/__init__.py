"""`hemiface app`: a local web workspace over one study folder.

Pages: the study overview (flow, one row per patient, downloads, `study run` with
progress), a patient page (overlays, depth and gain maps, numbers with provenance),
a landmark editor whose save is :func:`hemiface.study.correct_landmarks`, and the blinded
rating panel (coordinator pages under ``/rating``; each rater's own pages under
``/rate/<token>``, see :mod:`hemiface.app._rating`).
Everything is served from the package (no CDN). See :mod:`hemiface.app._web` for
the security model.

Public: :func:`create_app` (the WSGI application), :func:`make_server` (bind it
with waitress), :func:`is_loopback`, :func:`new_token` and the errors. The web
framework is imported only when an application is made, so that the command line
can read :func:`make_server`'s defaults without it.
"""

from ._errors import AppError, AppValidationError, ConflictError, NotFoundError
from ._server import AppServer, is_loopback, make_server, new_token

__all__ = ["AppError", "AppServer", "AppValidationError", "ConflictError", "NotFoundError", "create_app",
           "is_loopback", "make_server", "new_token"]


def __getattr__(name):
    if name == "create_app":
        from ._web import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
