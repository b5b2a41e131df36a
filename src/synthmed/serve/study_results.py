"""A reader study's results from its answer records: the statistics of
:mod:`synthmed.evaluation.reader_study` arranged overall, per reader and per reader pair.

Pure: records in, a JSON-ready dict out (the API, the results page and the tests use it).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from synthmed.evaluation.reader_study import (
    category_counts,
    cohen_kappa,
    fleiss_kappa,
    proportion,
    real_vs_synthetic,
)

SIDES = ("real", "synthetic")


@dataclass(frozen=True)
class AnswerRecord:
    """One stored answer joined with its image's truth (what the CSV export lists)."""

    reader: str
    position: int
    image_id: str
    truth: str
    answer: str
    confidence: int
    class_truth: str | None
    class_answer: str | None
    answered_at: str


def reader_rows(records: Sequence[AnswerRecord], readers: Sequence[str], total: int) -> list:
    """Per reader: progress, accuracy, sensitivity/specificity, mean confidence."""
    rows = []
    for name in readers:
        mine = [r for r in records if r.reader == name]
        stats = real_vs_synthetic([r.truth for r in mine], [r.answer for r in mine])
        confidence = sum(r.confidence for r in mine) / len(mine) if mine else None
        rows.append(
            {"reader": name, "answered": len(mine), "of": total, "done": len(mine) == total,
             "mean_confidence": confidence, **stats}
        )  # fmt: skip
    return rows


def pairwise_kappa(records: Sequence[AnswerRecord], readers: Sequence[str]) -> list[dict]:
    """Cohen's kappa of each pair of readers on the images both answered."""
    by_reader = {
        name: {r.image_id: r.answer for r in records if r.reader == name} for name in readers
    }
    pairs = []
    for a, b in itertools.combinations(readers, 2):
        common = sorted(set(by_reader[a]) & set(by_reader[b]))
        kappa = cohen_kappa([by_reader[a][i] for i in common], [by_reader[b][i] for i in common])
        pairs.append({"reader_a": a, "reader_b": b, "n_images": len(common), "kappa": kappa})
    return pairs


def fleiss_across(records: Sequence[AnswerRecord], readers: Sequence[str]) -> dict:
    """Fleiss' kappa across all readers, on the images every one of them answered."""
    answers: dict[str, dict[str, str]] = {}
    for r in records:
        answers.setdefault(r.image_id, {})[r.reader] = r.answer
    complete = sorted(i for i, got in answers.items() if set(readers) <= set(got))
    kappa = None
    if len(readers) >= 2 and complete:
        table = category_counts([[answers[i][n] for n in readers] for i in complete], SIDES)
        kappa = fleiss_kappa(table)
    return {"kappa": kappa, "n_images": len(complete), "n_readers": len(readers)}


def class_accuracy(records: Sequence[AnswerRecord]) -> dict:
    """How often the class answered is the image's class, overall and per side."""
    known = [r for r in records if r.class_truth is not None and r.class_answer is not None]
    out = {"overall": proportion(sum(r.class_truth == r.class_answer for r in known), len(known))}
    for side in SIDES:
        part = [r for r in known if r.truth == side]
        out[side] = proportion(sum(r.class_truth == r.class_answer for r in part), len(part))
    return out


def by_confidence(records: Sequence[AnswerRecord]) -> list[dict]:
    """Accuracy at each confidence level 1-5 (are confident readers right more often?)."""
    rows = []
    for level in range(1, 6):
        part = [r for r in records if r.confidence == level]
        rows.append(
            {"confidence": level, **proportion(sum(r.truth == r.answer for r in part), len(part))}
        )
    return rows


def summarise(
    records: Sequence[AnswerRecord], readers: Sequence[str], n_images: int, ask_class: bool
) -> dict:
    """The results JSON: overall, per reader, Cohen's kappa per pair, Fleiss' kappa."""
    return {
        "n_images": n_images,
        "n_answers": len(records),
        "overall": real_vs_synthetic([r.truth for r in records], [r.answer for r in records]),
        "by_confidence": by_confidence(records),
        "readers": reader_rows(records, readers, n_images),
        "cohen_kappa": pairwise_kappa(records, readers),
        "fleiss_kappa": fleiss_across(records, readers),
        "class_accuracy": class_accuracy(records) if ask_class else None,
    }
