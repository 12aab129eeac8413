"""`hemiface app`: the command prints the address, binds 127.0.0.1 by default, and needs a token elsewhere."""

import re

from typer.testing import CliRunner

from hemiface.cli import app

runner = CliRunner()


def test_help_names_the_options():
    result = runner.invoke(app, ["app", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--host", "--open"):
        assert option in result.output


def test_missing_study_is_one_line_and_exit_1(tmp_path):
    result = runner.invoke(app, ["app", str(tmp_path / "nope"), "--port", "0"])
    assert result.exit_code == 1 and "no such study folder" in result.output


def test_serves_on_loopback_and_prints_the_address(built_study, monkeypatch):
    from hemiface.app import _server

    ran = []
    monkeypatch.setattr(_server.AppServer, "run", lambda self: ran.append(self.address))
    result = runner.invoke(app, ["app", str(built_study), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"serving .* at http://127\.0\.0\.1:\d+/", result.output)
    assert "token" not in result.output and len(ran) == 1


def test_open_opens_the_address_in_a_browser(built_study, monkeypatch):
    import webbrowser

    from hemiface.app import _server

    opened = []
    monkeypatch.setattr(_server.AppServer, "run", lambda self: None)
    monkeypatch.setattr(webbrowser, "open", opened.append)
    result = runner.invoke(app, ["app", str(built_study), "--port", "0", "--open"])
    assert result.exit_code == 0, result.output
    assert len(opened) == 1 and opened[0].startswith("http://127.0.0.1:") and opened[0] in result.output


def test_another_host_gets_a_fresh_token_printed_once(built_study, monkeypatch):
    import hemiface.app

    seen = {}

    class Fake:
        address = "http://192.0.2.1:8765/"

        def __init__(self, token):
            self.token = token
            self.url = self.address + "?token=" + token

        def run(self):
            pass

        def close(self):
            pass

    def fake_make_server(folder, *, host, port, token):
        seen.update(host=host, port=port, token=token)
        return Fake(token)

    monkeypatch.setattr(hemiface.app, "make_server", fake_make_server)
    result = runner.invoke(app, ["app", str(built_study), "--host", "192.0.2.1"])
    assert result.exit_code == 0, result.output
    assert seen["host"] == "192.0.2.1" and seen["port"] == 8765 and len(seen["token"]) >= 40
    assert result.output.count(seen["token"]) == 1
