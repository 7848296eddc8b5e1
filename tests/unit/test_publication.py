"""A finished run's report survives every late failure: archived whole first, published as a step of its
own (retried, manifest last, partial uploads removed), and waiting in the archive until it is out."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from cleanroom.crypto.keys import load_signing_key
from cleanroom.errors import ConfigurationError, StorageError
from cleanroom.processes import free_port
from cleanroom.report import publish as publication
from cleanroom.report.content import build_report
from cleanroom.report.publish import (
    DESTINATION,
    MANIFEST,
    PUBLISHED,
    Destination,
    SealedReport,
    archive,
    publish,
    publish_archived,
    read_archive,
    seal_report,
    unpublished_runs,
)
from cleanroom.secure import RevealedTotals
from cleanroom.spec import AnalysisKind, Protocol
from cleanroom.storage.moto_server import MotoServer
from cleanroom.storage.s3 import S3ObjectStore
from flows.cli import app
from tests.conftest import small_disk
from tests.reliability import CLEAR, cli_outcome, fault, input_outcome

pytestmark = pytest.mark.reliability  # `make check-reliability` (tests/reliability.py)


def all_shown(cells: int) -> RevealedTotals:
    """Revealed market totals with every cell shown: what the report is built from."""
    return RevealedTotals(
        sales_cents=[5_000_00 + i for i in range(cells)],
        shown=[True] * cells,
        contribution_consistent={},
        protocol=Protocol.ABY3,
        seconds=0.1,
    )


@pytest.fixture()
def sealed(small_workspace, small_spec, tmp_path) -> SealedReport:
    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    run_id = f"run-{tmp_path.name}"  # one per test: they share the store
    report = build_report(small_spec.spec, analysis, small_spec.sha256, run_id, all_shown(analysis.cells), {})
    return seal_report(report, small_spec.spec, load_signing_key(small_workspace.signing_key_path))


@dataclass
class RefusingStore(S3ObjectStore):
    """The real store, refusing (or failing transiently) when one named object is put."""

    refuse: str = MANIFEST
    transient_failures: int = 0  # fail this many times transiently, then work
    permanent: bool = True
    puts: list[str] = field(default_factory=list)

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.puts.append(key.rsplit("/", 1)[1])
        if key.endswith("/" + self.refuse):
            if self.transient_failures > 0:
                self.transient_failures -= 1
                raise StorageError("the object store could not be reached (ReadTimeout)", transient=True)
            if self.permanent:
                raise StorageError("the object store refused the request (AccessDenied)")
        return super().put(bucket, key, data, content_type)


def refusing(store: S3ObjectStore, **behaviour) -> RefusingStore:
    return RefusingStore(
        store.endpoint_url, store.region, store.access_key_id, store.secret_access_key, **behaviour
    )


def stored(store: S3ObjectStore, destination: Destination, run_id: str) -> list[str]:
    return sorted(k.rsplit("/", 1)[1] for k in store.keys(destination.bucket, f"{destination.prefix}/{run_id}/"))


def test_archive_is_whole_and_says_where_it_goes(sealed, small_spec, tmp_path) -> None:
    destination = Destination.of(small_spec.spec)
    run_dir = archive(sealed, tmp_path / "archive", destination)
    assert read_archive(run_dir) == sealed.files()
    assert publication.destination_of(run_dir) == destination
    assert unpublished_runs(tmp_path / "archive") == [run_dir]  # archived first, so it waits until published
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [sealed.run_id]


def test_a_refused_manifest_leaves_nothing_in_the_bucket_and_the_report_waits(
    sealed, small_spec, object_store, tmp_path
) -> None:
    destination = Destination.of(small_spec.spec)
    run_dir = archive(sealed, tmp_path / "archive", destination)
    store = refusing(object_store)
    with pytest.raises(StorageError, match="refused the request"):
        publish(sealed.run_id, sealed.files(), store, destination)
    assert store.puts[-1] == MANIFEST and len(store.puts) == 4  # the manifest goes last; refusals are not retried
    leftover = stored(object_store, destination, sealed.run_id)
    assert fault(
        "store refuses the manifest mid-upload", run_dir in unpublished_runs(tmp_path / "archive"), len(leftover)
    )
    assert leftover == []  # the ciphertexts uploaded before are gone

    uris = publish_archived(run_dir, object_store)  # the store works again: `cleanroom publish` sends it
    assert stored(object_store, destination, sealed.run_id) == sorted(sealed.files())
    assert (run_dir / PUBLISHED).is_file() and uris[MANIFEST].endswith(f"/{sealed.run_id}/{MANIFEST}")
    assert unpublished_runs(tmp_path / "archive") == []
    assert publish_archived(run_dir, object_store, again=True) == uris  # idempotent
    from cleanroom.locks import exclusive

    held = exclusive(run_dir / publication.PUBLISH_LOCK, 0, lambda _: StorageError("held"))
    with held, pytest.raises(StorageError, match="another process is publishing this run"):
        publish_archived(run_dir, object_store, again=True)  # one publisher at a time


def test_transient_failures_are_retried_with_backoff(sealed, small_spec, object_store, monkeypatch) -> None:
    monkeypatch.setattr(publication, "RETRY_BACKOFF_SECONDS", 0.01)
    destination = Destination.of(small_spec.spec)
    store = refusing(object_store, transient_failures=2, permanent=False)
    publish(sealed.run_id, sealed.files(), store, destination)
    fault("store times out twice", stored(object_store, destination, sealed.run_id) == sorted(sealed.files()))
    assert store.puts.count(MANIFEST) == 3
    assert stored(object_store, destination, sealed.run_id) == sorted(sealed.files())
    always = refusing(object_store, refuse="report.json.age", transient_failures=99)
    with pytest.raises(StorageError, match="could not be reached"):
        publish(sealed.run_id + "-b", sealed.files(), always, destination)
    assert (
        always.puts.count("report.json.age") == 3 and stored(object_store, destination, sealed.run_id + "-b") == []
    )


def test_a_closed_port_or_refused_credentials_is_one_line_before_anything_runs(object_store) -> None:
    closed = S3ObjectStore(
        f"http://127.0.0.1:{free_port()}",
        "eu-central-1",
        object_store.access_key_id,
        object_store.secret_access_key,
    )
    with pytest.raises(StorageError, match=r"could not be reached \(EndpointConnectionError\)") as unreachable:
        closed.check_writable("reports", "runs", "probe")
    assert input_outcome("store endpoint on a closed port", unreachable.value) == CLEAR
    assert unreachable.value.transient and "CLEANROOM_S3_ENDPOINT_URL" in unreachable.value.one_line()
    object_store.check_writable("reports", "runs", "probe")
    assert object_store.keys("reports", "runs/.write-check/") == []  # the probe is removed again


def test_refused_credentials_are_not_retried(tmp_path) -> None:
    """moto with authentication on (it knows no keys): a real store refusing every request."""
    with MotoServer(tmp_path, environment={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        store = S3ObjectStore(server.endpoint_url, "eu-central-1", SecretStr("AKIAWRONG"), SecretStr("wrong"))
        with pytest.raises(StorageError, match=r"refused the request \(403\)") as refused:
            store.check_writable("reports", "runs", "probe")
    assert input_outcome("store credentials refused", refused.value) == CLEAR
    assert not refused.value.transient and "CLEANROOM_AWS_ACCESS_KEY_ID" in refused.value.one_line()


def test_a_full_disk_leaves_no_half_written_archive(sealed, small_spec, tmp_path) -> None:
    """A real tmpfs too small for the report (the machines are root)."""
    disk = tmp_path / "small-disk"
    with small_disk(disk, 8):
        assert len(sealed.objects["report.html.age"]) > 8 * 1024
        with pytest.raises(StorageError, match=r"could not be written \(No space left on device\)") as full:
            archive(sealed, disk / "archive", Destination.of(small_spec.spec))
        assert (
            input_outcome("archive on a full disk", full.value, len(list((disk / "archive").iterdir()))) == CLEAR
        )
        assert str(disk / "archive" / sealed.run_id) in full.value.one_line()
        assert list((disk / "archive").iterdir()) == []  # neither the run nor its .partial folder


def test_publish_command_sends_what_waits_and_decrypt_names_unknown_runs(
    sealed, small_spec, small_workspace, object_store, tmp_path, monkeypatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("CLEANROOM_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("CLEANROOM_S3_ENDPOINT_URL", object_store.endpoint_url)
    destination = Destination.of(small_spec.spec)
    run_dir = archive(sealed, tmp_path / "archive", destination)
    result = runner.invoke(app, ["publish"])
    assert result.exit_code == 0 and f"published run {sealed.run_id}" in result.output, result.output
    assert (run_dir / PUBLISHED).is_file() and (run_dir / DESTINATION).is_file()
    assert "nothing waits" in runner.invoke(app, ["publish"]).output
    identity = small_workspace.keys_root / "approvers" / "ana-lopez.age"
    for command in (
        ["publish", "--run", "20990101-nope"],
        ["decrypt", "--identity", str(identity), "--run", "20990101-nope"],
    ):
        unknown = runner.invoke(app, command)
        assert cli_outcome(f"{command[0]} of an unknown run", unknown.exit_code, unknown.output) == CLEAR
        assert "no archived run '20990101-nope'" in unknown.output and sealed.run_id in unknown.output


def test_decrypt_works_from_any_directory(sealed, small_spec, small_workspace, tmp_path, monkeypatch) -> None:
    """The archive is found above the spec (or given), not only in the current directory's var/."""
    consortium = tmp_path / "consortium"
    (consortium / "demo").mkdir(parents=True)
    spec_path = consortium / "demo" / small_spec.path.name
    shutil.copy(small_spec.path, spec_path)
    shutil.copy(small_spec.path.parent / "catalogue.csv", consortium / "demo" / "catalogue.csv")
    run_dir = archive(sealed, consortium / "archive", Destination.of(small_spec.spec))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CLEANROOM_WORKSPACE", raising=False)
    identity = str(small_workspace.keys_root / "approvers" / "ana-lopez.age")
    runner = CliRunner()
    for extra in ([], ["--archive", str(consortium / "archive")], ["--archive", str(run_dir)]):
        result = runner.invoke(app, ["decrypt", "--identity", identity, "--spec", str(spec_path), *extra])
        assert result.exit_code == 0 and sealed.run_id in result.output, (extra, result.output)
    lost = runner.invoke(app, ["decrypt", "--identity", identity, "--spec", str(tmp_path / "nowhere.yaml")])
    assert lost.exit_code == 2 and "no archive found" in lost.output and "--archive" in lost.output


def test_what_the_end_of_a_run_needs_is_checked_before_it_computes(
    small_spec, small_workspace, object_store, tmp_path
) -> None:
    """A closed store port or an unwritable archive used to discard a run after its computation."""
    from tasks.context import open_run
    from tasks.objectives import _check_release_path

    reachable = small_workspace.model_copy(update={"s3_endpoint_url": object_store.endpoint_url})
    _check_release_path(open_run(small_spec, "run-ok", reachable))
    closed = reachable.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(StorageError, match="could not be reached") as unreachable:
        _check_release_path(open_run(small_spec, "run-closed", closed))
    assert input_outcome("store down before the run computes", unreachable.value) == CLEAR
    elsewhere = reachable.model_copy(update={"workspace": tmp_path})
    with pytest.raises(ConfigurationError, match="signing key not found") as keyless:  # loaded up front too
        open_run(small_spec, "run-keyless", elsewhere)
    assert input_outcome("signing key missing", keyless.value) == CLEAR
    (tmp_path / "keys").symlink_to(small_workspace.keys_root.resolve())
    (tmp_path / "archive").write_text("a file where the archive folder belongs")
    with pytest.raises(StorageError, match="report archive is not writable") as unwritable:
        _check_release_path(open_run(small_spec, "run-unwritable", elsewhere))
    assert input_outcome("archive not writable", unwritable.value) == CLEAR


def test_the_publish_step_keeps_every_report_through_store_and_disk_faults(
    sealed, small_spec, small_workspace, object_store, tmp_path
) -> None:
    """The lifecycle's publish step itself (outside a flow run): a store that is down leaves the report
    waiting in the archive, and the next run sends it; a full archive disk still publishes."""
    from prefect.logging import disable_run_logger

    from tasks.context import open_run
    from tasks.reporting import publication_failed, publish_report

    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    (tmp_path / "keys").symlink_to(small_workspace.keys_root.resolve())
    working = small_workspace.model_copy(
        update={"workspace": tmp_path, "s3_endpoint_url": object_store.endpoint_url}
    )
    down = working.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    destination = Destination.of(small_spec.spec)

    def publish_step(settings, run_id):  # type: ignore[no-untyped-def]
        with disable_run_logger():
            context = open_run(small_spec, run_id, settings)
            report = build_report(
                small_spec.spec, analysis, small_spec.sha256, run_id, all_shown(analysis.cells), {}
            )
            return publish_report.fn(context, seal_report(report, small_spec.spec, context.me.signing_key))

    first = publish_step(down, f"{tmp_path.name}-down")
    assert first.uris == {} and first.problems and "could not be reached" in first.problems[0]
    error = publication_failed(f"{tmp_path.name}-down", first).one_line()
    assert error.count("— fix:") == 1 and f"cleanroom publish --run {tmp_path.name}-down" in error
    waiting = unpublished_runs(tmp_path / "archive")
    assert [r.name for r in waiting] == [f"{tmp_path.name}-down"] and read_archive(waiting[0])

    second = publish_step(working, f"{tmp_path.name}-next")  # the next run sends what waits, then itself
    assert second.problems == [] and unpublished_runs(tmp_path / "archive") == []
    assert fault("object store down at publish", stored(object_store, destination, f"{tmp_path.name}-down") != [])

    disk = tmp_path / "full"
    with small_disk(disk, 8):
        (disk / "keys").symlink_to(small_workspace.keys_root.resolve())
        full = publish_step(working.model_copy(update={"workspace": disk}), f"{tmp_path.name}-full")
        assert full.archive_dir is None and full.uris and "No space left on device" in full.problems[0]
        assert list((disk / "archive").iterdir()) == []  # nothing half-written
        assert fault(
            "archive disk full at publish", stored(object_store, destination, f"{tmp_path.name}-full") != []
        )
