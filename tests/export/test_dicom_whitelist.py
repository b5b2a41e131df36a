"""The synthetic-header whitelist: the writer's own files pass, anything from a real study fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from synthmed.export.dicom import synthetic_header_problems, write_sc


def written(tmp_path: Path) -> pydicom.Dataset:
    header = dict(index=0, study_uid="1.2.3", frame_uid="1.2.4", created="20260101")
    header.update(series_number=1, description="SYNTHETIC - test", comments="SYNTHETIC sample")
    write_sc(tmp_path / "a.dcm", np.zeros((4, 4), np.uint8), False, header)
    return pydicom.dcmread(tmp_path / "a.dcm")


def test_the_writers_own_header_passes(tmp_path: Path):
    assert synthetic_header_problems(written(tmp_path)) == []


def test_elements_from_a_real_study_are_named(tmp_path: Path):
    ds = written(tmp_path)
    ds.PatientAge = "045Y"
    ds.InstitutionName = "Secret Hospital"
    ds.add_new(0x00091001, "LO", "vendor private")
    problems = synthetic_header_problems(ds)
    assert problems == [
        "(0008,0080) InstitutionName",
        "(0009,1001) private/unknown",
        "(0010,1010) PatientAge",
    ]


def test_identifying_values_must_be_the_synthetic_ones(tmp_path: Path):
    ds = written(tmp_path)
    ds.PatientName = "Doe^Jane"
    ds.StudyDate = "20200304"
    problems = synthetic_header_problems(ds)
    assert any(p.startswith("PatientName must say") for p in problems)
    assert "StudyDate must be empty" in problems
