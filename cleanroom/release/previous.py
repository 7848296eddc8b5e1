"""The coordinator's record of each release's headline figures, sealed to its own key, so the next
run's report can compare with the previous release of the same consortium. The record names its ledger
entry (run, index, report manifest hash) and is used only if it matches the ledger's last entry."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from cleanroom.crypto.sealed import Member, open_sealed, seal
from cleanroom.errors import CleanroomError
from cleanroom.release.ledger import LedgerEntry
from cleanroom.report.comparison import HeadlineFigures, PreviousRelease
from cleanroom.whole_files import write_whole_file

NAME = "release-headline"


class ReleaseRecord(BaseModel):
    run_id: str
    ledger_index: int
    report_manifest_sha256: str
    spec_sha256: str
    figures: HeadlineFigures


def records_folder(workspace: Path, collaboration: str) -> Path:
    return workspace / "releases" / collaboration


def keep_record(folder: Path, record: ReleaseRecord, me: Member) -> Path:
    """Sealed to the coordinator itself and signed by it; written whole (renamed into place)."""
    folder.mkdir(parents=True, exist_ok=True)
    blob = seal(
        record.model_dump_json().encode(),
        run=record.run_id,
        name=NAME,
        sender=me,
        recipients=[str(me.identity.to_public())],
    )
    return write_whole_file(folder / f"{record.run_id}.age", blob)


def previous_release(
    folder: Path, ledger: list[LedgerEntry], me: Member, signing_key_b64: str, spec_sha256: str
) -> PreviousRelease | None:
    """The ledger's last release and, if this coordinator kept a matching record, its headline."""
    if not ledger:
        return None
    last = ledger[-1]
    figures = None
    path = folder / f"{last.run_id}.age"
    if path.is_file():
        try:
            payload = open_sealed(
                path.read_bytes(),
                run=last.run_id,
                name=NAME,
                sender=me.name,
                sender_key_b64=signing_key_b64,
                me=me,
            )
            record = ReleaseRecord.model_validate_json(payload)
        except (CleanroomError, ValidationError):
            record = None  # not this coordinator's, or damaged: compare with nothing rather than with it
        if record and (record.ledger_index, record.report_manifest_sha256) == (
            last.index,
            last.report_manifest_sha256,
        ):
            figures = record.figures
    return PreviousRelease(
        run_id=last.run_id,
        ledger_index=last.index,
        released_at=last.released_at,
        same_spec=last.spec_sha256 == spec_sha256,
        figures=figures,
    )
