"""The study database's ORM models (SQLAlchemy 2.0), for queries of your own.

    from sqlalchemy import select
    from hemiface.study import open_study
    from hemiface.study.models import Patient

    with open_study("my_study") as study, study.session() as session:
        sides = session.scalars(select(Patient.affected_side)).all()
"""

from ._models import (  # noqa: F401
    GUERREROSANTOS_STAGES,
    MEDIA_KINDS,
    RATING_ITEM_KINDS,
    SEVERITIES,
    SEXES,
    SIDES,
    TABLES,
    VISIT_KINDS,
    AnalysisResult,
    AuditEntry,
    Base,
    Complication,
    FaceQScore,
    Media,
    LandmarkCorrection,
    Patient,
    Rater,
    Rating,
    RatingItem,
    RatingRound,
    ScanSetting,
    StudyMeta,
    Surgery,
    SurgeryInjection,
    Visit,
)
