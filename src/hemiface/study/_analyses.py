"""The analyses a study runs and their settings: one home for both.

Each analysis is a library function (:func:`hemiface.photo.analyze_photo`,
:func:`hemiface.scan.analyze_scan`, :func:`hemiface.scan.compare_scans`). Its
*settings* are that function's own keyword arguments, less the inputs that the
study supplies job by job (the files, the patient's affected side, a corrected
landmark file). So the functions' signatures are the only home of the defaults:

1. the function's own default,
2. :data:`STUDY_DEFAULTS`, where a study run deliberately differs from the
   command line (scans come in any pose, so a study finds their frame itself),
3. the study's ``study.toml``, section ``[analysis.<analysis>]``.

The merged settings are validated against the signature (an unknown or mistyped
key is an error naming the allowed keys; a value of the wrong type is refused),
passed through whole to the function, hashed into each result's identity (so
changing a setting re-runs exactly the analysis it belongs to) and recorded with
the result. A setting whose type is a dataclass (the scan's face ``region``) is
a TOML table of that dataclass' fields; the fields left out keep their defaults.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from functools import lru_cache
from typing import Any, Mapping

from ._errors import StudyError

ANALYSES = ("photo_analyze", "scan_analyze", "scan_compare")

#: Keyword arguments each analysis receives per job from the study's records, never from settings.
JOB_INPUTS = {
    "photo_analyze": ("affected", "landmarks"),
    "scan_analyze": ("affected", "landmarks", "stable"),
    "scan_compare": ("affected", "landmarks_pre", "landmarks_post", "plan", "stable", "plane_stable"),
}

#: Where a study run departs from the library's (and the command line's) defaults, and why:
#: clinic scans come in the scanner's pose, so a study finds each face's frame itself.
STUDY_DEFAULTS = {
    "photo_analyze": {},
    "scan_analyze": {"orient": "auto"},
    "scan_compare": {"orient": "auto"},
}


def analysis_function(analysis: str):
    """The library function behind an analysis name."""
    if analysis == "photo_analyze":
        from ..photo import analyze_photo

        return analyze_photo
    if analysis == "scan_analyze":
        from ..scan import analyze_scan

        return analyze_scan
    if analysis == "scan_compare":
        from ..scan import compare_scans

        return compare_scans
    raise StudyError(f"unknown analysis {analysis!r}; known: {', '.join(ANALYSES)}")


@dataclasses.dataclass(frozen=True)
class _Setting:
    name: str
    default: Any
    kind: Any  # a dataclass type, a tuple of Literal choices, or None (type of the default)


def _dataclass_in(hint):
    for arg in (hint, *typing.get_args(hint)):
        if isinstance(arg, type) and dataclasses.is_dataclass(arg):
            return arg
    return None


def _literal_choices(hint):
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    return None


@lru_cache(maxsize=None)
def _settings_of(analysis: str) -> tuple[_Setting, ...]:
    func = analysis_function(analysis)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # noqa: BLE001 - an unresolvable annotation only loses the type check
        hints = {}
    out = []
    for p in inspect.signature(func).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.name in JOB_INPUTS[analysis]:
            continue
        hint = hints.get(p.name)
        cls = _dataclass_in(hint) if p.default is None else None
        kind = cls or _literal_choices(hint)
        default = dataclasses.asdict(cls()) if cls is not None else p.default
        out.append(_Setting(p.name, default, kind))
    return tuple(out)


def setting_defaults(analysis: str) -> dict:
    """The analysis function's own defaults for every setting (a dataclass setting as a dict)."""
    return {s.name: _copy(s.default) for s in _settings_of(analysis)}


def _copy(value):
    return dict(value) if isinstance(value, dict) else value


def _type_problem(value, default, choices=None) -> str | None:
    if choices is not None:
        return None if value in choices else f"one of {', '.join(map(repr, choices))}"
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    return None


def validate_analysis_settings(section: Mapping, *, source: str = "") -> dict:
    """Check ``[analysis.*]`` settings against the analysis functions; returns a plain nested dict.

    Raises :class:`StudyError` naming the analysis, the key and what is allowed.
    """
    pre = f"{source}: " if source else ""
    if not isinstance(section, Mapping):
        raise StudyError(f"{pre}[analysis] must hold one table per analysis ({', '.join(ANALYSES)})")
    out: dict = {}
    for analysis, values in section.items():
        if analysis not in ANALYSES:
            raise StudyError(f"{pre}unknown analysis [analysis.{analysis}]; known: {', '.join(ANALYSES)}")
        if not isinstance(values, Mapping):
            raise StudyError(f"{pre}[analysis.{analysis}] must be a table of settings")
        known = {s.name: s for s in _settings_of(analysis)}
        checked = {}
        for key, value in values.items():
            where = f"{pre}[analysis.{analysis}] {key}"
            if key not in known:
                extra = (f" ({key} is given per patient by the study, not as a setting)"
                         if key in JOB_INPUTS[analysis] else "")
                raise StudyError(f"{pre}unknown setting {key!r} in [analysis.{analysis}]{extra}; "
                                 f"allowed: {', '.join(sorted(known))}")
            setting = known[key]
            if isinstance(setting.kind, type):  # a dataclass: a table of its fields
                if not isinstance(value, Mapping):
                    raise StudyError(f"{where} must be a table with keys {', '.join(setting.default)}")
                for field_name, field_value in value.items():
                    if field_name not in setting.default:
                        raise StudyError(f"{pre}unknown key {field_name!r} in [analysis.{analysis}.{key}]; "
                                         f"allowed: {', '.join(setting.default)}")
                    problem = _type_problem(field_value, setting.default[field_name])
                    if problem:
                        raise StudyError(f"{where}.{field_name} must be {problem}; got {field_value!r}")
                try:
                    setting.kind(**{**setting.default, **value})  # the dataclass' own range checks
                except (ValueError, TypeError) as exc:
                    raise StudyError(f"{where}: {exc}") from None
                checked[key] = dict(value)
                continue
            choices = setting.kind if isinstance(setting.kind, tuple) else None
            problem = _type_problem(value, setting.default, choices)
            if problem:
                raise StudyError(f"{where} must be {problem}; got {value!r}")
            checked[key] = value
        out[analysis] = checked
    return out


def analysis_parameters(analysis_settings: Mapping | None = None) -> dict[str, dict]:
    """The complete settings of every analysis: function defaults, then :data:`STUDY_DEFAULTS`, then the study's.

    ``analysis_settings`` is the validated ``[analysis]`` section (``StudySettings.analysis``).
    """
    given = analysis_settings or {}
    out = {}
    for analysis in ANALYSES:
        params = setting_defaults(analysis)
        for layer in (STUDY_DEFAULTS[analysis], given.get(analysis, {})):
            for key, value in layer.items():
                params[key] = {**params[key], **value} if isinstance(params.get(key), dict) else value
        out[analysis] = params
    return out


def call_arguments(analysis: str, parameters: Mapping) -> dict:
    """Keyword arguments for the analysis function: dataclass settings rebuilt from their tables."""
    kinds = {s.name: s.kind for s in _settings_of(analysis)}
    out = {}
    for key, value in parameters.items():
        kind = kinds.get(key)
        out[key] = kind(**value) if isinstance(kind, type) and isinstance(value, Mapping) else value
    return out


def settings_table(analysis_settings: Mapping | None = None) -> list[dict]:
    """Every setting of every analysis, with its value and where the value comes from.

    Rows ``{"analysis", "setting", "value", "source"}``; ``source`` is ``"default"`` (the
    analysis function's), ``"study default"`` (:data:`STUDY_DEFAULTS`) or ``"study.toml"``.
    A dataclass setting gives one row per field (``region.width_mm``).
    """
    given = analysis_settings or {}
    rows = []
    for analysis, params in analysis_parameters(given).items():
        for key, value in params.items():
            own, study = given.get(analysis, {}).get(key), STUDY_DEFAULTS[analysis].get(key)
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, v in items:
                if sub is None:
                    source = "study.toml" if own is not None else "study default" if study is not None else "default"
                else:
                    source = "study.toml" if isinstance(own, Mapping) and sub in own else "default"
                rows.append({"analysis": analysis, "setting": key if sub is None else f"{key}.{sub}",
                             "value": v, "source": source})
    return rows
