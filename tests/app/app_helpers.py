"""Shared by the app tests: the hostile strings the fixture study holds, and the app's CSRF token."""

HOSTILE = '<script>alert("x")</script>'
HOSTILE_ID = "<script>alert(1)</script>"


def csrf_of(app) -> str:
    return app.extensions["hemiface"]["csrf"]
