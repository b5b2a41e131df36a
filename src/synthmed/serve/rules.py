"""The rules a publication can break, and the refusal that names one.

Every refusal reaches the client as ``{"error": RULE, "detail": "..."}`` with a 4xx status;
the detail states the numbers (measured value and limit) so the publisher knows what to fix.
"""

from __future__ import annotations

RULES: dict[str, tuple[int, str]] = {
    "bad_token": (401, "no API token, or one that is unknown or revoked"),
    "wrong_role": (403, "the token's role may not do this"),
    "not_found": (404, "no such item (or it is private)"),
    "duplicate_name": (409, "an item of that name is already published"),
    "bundle_too_large": (413, "the upload or its uncompressed contents exceed the size limit"),
    "file_too_large": (413, "a file in the bundle exceeds the per-file size limit"),
    "bad_bundle": (400, "the upload is not a readable publication zip"),
    "zip_slip": (400, "an archive entry escapes its folder (absolute, '..', link)"),
    "bad_descriptor": (422, "publication.json is missing, malformed or incomplete"),
    "checksum_mismatch": (422, "a file differs from its listed sha256, or is missing/unlisted"),
    "manifest_missing": (422, "a dataset needs manifest.csv and export.json"),
    "package_invalid": (422, "the model package fails its own checksum/format verification"),
    "report_missing": (422, "report.html is required"),
    "card_missing": (422, "card.md is required"),
    "provenance_mismatch": (422, "files do not come from the generator the audit evaluated"),
    "privacy_audit_missing": (422, "metrics.json holds no privacy audit"),
    "near_copy_rate": (422, "the near-copy rate is above the server's threshold"),
    "membership_auc": (422, "a membership-inference AUC is above the server's threshold"),
    "dicom_header": (422, "a DICOM header carries an element outside the synthetic whitelist"),
    "bad_query": (400, "a search filter has a bad value"),
    "bad_study": (422, "a reader study cannot be built as asked (sizes, classes, images)"),
    "bad_answer": (400, "an answer needs real/synthetic, a confidence 1-5 and the class if asked"),
    "wrong_position": (409, "a reader answers in order: only their next position is open"),
    "already_answered": (409, "that position is answered; the first answer stands"),
    "not_a_dataset": (409, "a model package has no dataset layout to re-lay it in"),
}


class Refusal(Exception):
    """A request refused under ``rule``; ``detail`` says which file and which numbers."""

    def __init__(self, rule: str, detail: str) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}")
        super().__init__(f"{rule}: {detail}")
        self.rule, self.detail = rule, detail

    @property
    def status(self) -> int:
        return RULES[self.rule][0]

    def body(self) -> dict[str, str]:
        return {"error": self.rule, "detail": self.detail}
