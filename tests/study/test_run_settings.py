"""`[run]` in ``study.toml``: where `study run` runs, checked like the other settings, overridden by the command line."""

import pytest
from typer.testing import CliRunner

from hemiface.cli import app
from hemiface.study import StudyError
from hemiface.study import RunSettings, StudySettings, read_settings
from test_integrity import one_line_error


def _settings_file(tmp_path, run_section: str):
    path = tmp_path / "study.toml"
    path.write_text(StudySettings().to_toml() + run_section)
    return path


@pytest.mark.parametrize("section, message", [
    ('[run]\nschedular = "local:2"\n', "unknown key(s) schedular in [run]; known: jobs, scheduler"),
    ('[run]\nscheduler = "nonsense"\n', "[run] scheduler 'nonsense' is not a Dask scheduler address"),
    ('[run]\nscheduler = "tcp://10.0.0.5"\n', "[run] scheduler 'tcp://10.0.0.5' is not a Dask scheduler address"),
    ('[run]\nscheduler = "local:0"\n', "[run] scheduler 'local:0': local:N needs a whole number of workers >= 1"),
    ('[run]\nscheduler = 8786\n', "[run] scheduler must be a Dask scheduler address (tcp://HOST:PORT) or local:N; "
                                  "got 8786"),
    ('[run]\njobs = "2"\n', "[run] jobs must be a whole number >= 1; got '2'"),
    ('[run]\njobs = 0\n', "[run] jobs must be a whole number >= 1; got 0"),
    ('[run]\njobs = true\n', "[run] jobs must be a whole number >= 1; got True"),
    ('[run]\njobs = 2\nscheduler = "local:2"\n', "[run] jobs=2 and a scheduler exclude each other"),
    # a password is never shown (and a Dask address never holds one)
    ('[run]\nscheduler = "tcp://ann:s3cret@10.0.0.5:8786"\n', "[run] scheduler 'tcp://***@10.0.0.5:8786' is not a"),
])
def test_a_bad_run_setting_is_refused_naming_the_file_and_the_key(tmp_path, section, message):
    path = _settings_file(tmp_path, section)
    with pytest.raises(StudyError) as err:
        read_settings(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)
    assert "s3cret" not in str(err.value)


def test_run_settings_round_trip_and_are_not_rules(tmp_path):
    for section, expected in (("", RunSettings()), ('[run]\njobs = 3\n', RunSettings(jobs=3)),
                              ('[run]\nscheduler = " tcp://10.0.0.5:8786 "\n', RunSettings(scheduler="tcp://10.0.0.5:8786"))):
        settings = read_settings(_settings_file(tmp_path, section))
        assert settings.run == expected
        again = tmp_path / "again.toml"
        again.write_text(settings.to_toml())
        assert read_settings(again).run == expected
        # where the analyses run changes no result: it is no rule of the study's outputs
        assert "run" not in settings.to_dict() and settings == StudySettings()


def test_the_command_line_overrides_the_file():
    cluster, pool = RunSettings(scheduler="tcp://10.0.0.5:8786"), RunSettings(jobs=4)
    assert cluster.overridden() is cluster
    assert cluster.overridden(jobs=1) == RunSettings(jobs=1)  # --jobs alone: this machine
    assert cluster.overridden(jobs=2) == RunSettings(jobs=2)
    assert pool.overridden(scheduler="local:2") == RunSettings(scheduler="local:2")  # --scheduler replaces jobs
    assert pool.overridden(scheduler="local:2", jobs=1) == RunSettings(scheduler="local:2")
    with pytest.raises(StudyError, match="exclude each other"):
        pool.overridden(scheduler="local:2", jobs=2)


def test_study_run_refuses_a_bad_run_setting_in_one_line_before_anything_runs(tmp_path):
    runner = CliRunner()
    folder = tmp_path / "study"
    assert runner.invoke(app, ["study", "init", str(folder)]).exit_code == 0
    settings = folder / "study.toml"
    settings.write_text(settings.read_text() + '[run]\nscheduler = "tcp://10.0.0.5"\n')
    line = one_line_error(runner.invoke(app, ["study", "run", str(folder)]))
    assert line.startswith(f"hemiface: error: {settings}: [run] scheduler 'tcp://10.0.0.5' is not a Dask scheduler "
                           "address"), line
    assert not (folder / "results").exists()
