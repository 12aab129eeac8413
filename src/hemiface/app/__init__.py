"""`hemiface app`: a local web workspace over one study folder.

Pages: the study overview (flow, one row per patient, downloads, `study run` with
progress), a patient page (overlays, depth and gain maps, numbers with provenance)
and a landmark editor whose save is :func:`hemiface.study.correct_landmarks`.
Everything is served from the package (no CDN). See :mod:`hemiface.app._web` for
the security model.

Public: :func:`create_app` (the WSGI application), :func:`make_server` (bind it
with waitress), :func:`is_loopback`, :func:`new_token` and the errors.
"""

from ._errors import AppError, AppValidationError, ConflictError, NotFoundError
from ._server import AppServer, is_loopback, make_server, new_token
from ._web import create_app

__all__ = ["AppError", "AppServer", "AppValidationError", "ConflictError", "NotFoundError", "create_app",
           "is_loopback", "make_server", "new_token"]
