"""Server settings: where the database and files live, upload limits, gate thresholds.

One frozen object, built from CLI options or from ``SYNTHMED_SERVE_*`` environment variables.
The environment is how the settings reach uvicorn's worker processes, which import the app
by name and cannot be handed a Python object.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path

from synthmed.errors import InputError

ENV_PREFIX = "SYNTHMED_SERVE_"
MiB = 1 << 20


@dataclass(frozen=True)
class ServeSettings:
    """Everything the server reads; defaults give a zero-set-up server in ``data_dir``.

    Attributes:
        data_dir: folder of the default SQLite file, stored files and upload spool.
        db_url: SQLAlchemy URL; default ``sqlite:///DATA_DIR/synthmed.db``.
        storage_url: fsspec URL or folder for published files; default ``DATA_DIR/files``.
        max_bundle_bytes: largest upload (the zip as sent).
        max_file_bytes: largest single file inside a bundle (uncompressed).
        max_total_bytes: largest sum of uncompressed sizes (zip bombs).
        max_near_copy_rate: refuse when more synthetic images than this fraction are
            calibrated near-copies of a training image.
        max_membership_auc: refuse when any membership-inference attack reaches this ROC AUC.
    """

    data_dir: Path = Path("synthmed-server")
    db_url: str = ""
    storage_url: str = ""
    max_bundle_bytes: int = 2048 * MiB
    max_file_bytes: int = 512 * MiB
    max_total_bytes: int = 4096 * MiB
    max_near_copy_rate: float = 0.05
    max_membership_auc: float = 0.75

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{self.data_dir / 'synthmed.db'}")
        if not self.storage_url:
            object.__setattr__(self, "storage_url", str(self.data_dir / "files"))
        for name in ("max_bundle_bytes", "max_file_bytes", "max_total_bytes"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1 byte, got {getattr(self, name)}")
        if not 0.0 <= self.max_near_copy_rate <= 1.0:
            raise InputError(f"max_near_copy_rate must be in [0, 1], got {self.max_near_copy_rate}")
        if not 0.0 <= self.max_membership_auc <= 1.0:
            raise InputError(f"max_membership_auc must be in [0, 1], got {self.max_membership_auc}")

    @property
    def spool_dir(self) -> Path:
        """Local folder where an upload is received before it is checked (never listed)."""
        return self.data_dir / "spool"

    def to_env(self) -> dict[str, str]:
        """``SYNTHMED_SERVE_*`` variables that :meth:`from_env` turns back into these settings."""
        return {f"{ENV_PREFIX}{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeSettings:
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f"{ENV_PREFIX}{f.name.upper()}")
            if raw is None:
                continue
            kind = {"int": int, "float": float}.get(str(f.type), str)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise InputError(
                    f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a {kind.__name__}"
                ) from None
        return cls(**values)

    def replace(self, **changes) -> ServeSettings:
        return dataclasses.replace(self, **changes)
