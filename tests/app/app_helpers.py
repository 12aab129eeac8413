"""Shared by the app tests: the hostile strings the fixture study holds, and the app's CSRF token."""

HOSTILE = '<script>alert("x")</script>'
HOSTILE_ID = "<script>alert(1)</script>"


def csrf_of(app) -> str:
    return app.extensions["hemiface"]["csrf"]


def make_client(folder):
    """A Flask test client over a study folder, with its CSRF token (``.csrf``) and application (``.app_``)."""
    from hemiface.app import create_app

    app = create_app(folder)
    app.testing = True
    client = app.test_client()
    client.csrf = csrf_of(app)
    client.app_ = app
    return client
