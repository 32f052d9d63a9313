"""``streamport migrate`` and ``scan``, the migrations, and README's configuration table."""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from app.catalog.migrate import check_models_match, upgrade_to_head
from app.config import Settings
from tests.conftest import REPO_ROOT, start_server


def _run_cli(*args: str, media_dir: Path) -> subprocess.CompletedProcess[str]:
    media_dir.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STREAMPORT_MEDIA_DIR": str(media_dir)}
    env.pop("STREAMPORT_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=media_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_creates_the_catalog_on_an_empty_machine(tmp_path: Path) -> None:
    media_dir = tmp_path / "fresh" / "media"
    result = _run_cli("migrate", media_dir=media_dir)
    assert result.returncode == 0, result.stderr
    assert (media_dir / "streamport.db").exists()
    # Running it again is harmless.
    assert _run_cli("migrate", media_dir=media_dir).returncode == 0


def test_models_and_migrations_agree(settings: Settings) -> None:
    upgrade_to_head(settings)
    check_models_match(settings)  # raises when autogenerate would find a difference


def test_scan_adds_files_and_skips_known_ones(tmp_path: Path) -> None:
    library = tmp_path / "library"
    (library / "sub").mkdir(parents=True)
    files = {
        library / "a.mp4": b"\x00\x00\x00\x18ftypmp42" + os.urandom(1000),
        library / "sub" / "Ünïcode name.txt": b"hello",
        library / "sub" / "copy-of-a.mp4": b"",
    }
    files[library / "sub" / "copy-of-a.mp4"] = files[library / "a.mp4"]
    for path, data in files.items():
        path.write_bytes(data)
    media_dir = tmp_path / "media"

    first = _run_cli("scan", str(library), media_dir=media_dir)
    assert first.returncode == 0, first.stderr
    assert "added 2, already in the catalog 1, failed 0" in first.stdout
    second = _run_cli("scan", str(library), media_dir=media_dir)
    assert "added 0, already in the catalog 3, failed 0" in second.stdout
    assert all(path.exists() for path in files)  # originals are left alone

    settings = Settings(_env_file=None, media_dir=media_dir)
    server = start_server(settings, tmp_path / "server.log")
    try:
        with server.client() as client:
            items = client.get("/api/media").json()["items"]
            by_name = {m["filename"]: m for m in items}
            assert set(by_name) == {"a.mp4", "Ünïcode name.txt"}
            assert by_name["a.mp4"]["content_type"] == "video/mp4"
            for name, path in (
                ("a.mp4", library / "a.mp4"),
                ("Ünïcode name.txt", library / "sub" / "Ünïcode name.txt"),
            ):
                body = client.get(by_name[name]["download_url"]).content
                assert (
                    hashlib.sha256(body).hexdigest()
                    == hashlib.sha256(path.read_bytes()).hexdigest()
                )
    finally:
        server.stop()


def test_scan_of_a_missing_directory_fails_clearly(tmp_path: Path) -> None:
    result = _run_cli("scan", str(tmp_path / "nope"), media_dir=tmp_path / "media")
    assert result.returncode == 2
    assert "not a directory" in result.stderr


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    documented = set(re.findall(r"`STREAMPORT_([A-Z0-9_]+)`", readme))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_serve_migrates_an_empty_machine_and_listens_where_told(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, media_dir=tmp_path / "empty" / "media")
    server = start_server(settings, tmp_path / "server.log")  # passes --host and --port
    try:
        with server.client() as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/api/media").json()["total"] == 0
    finally:
        server.stop()
    assert (settings.media_dir / "streamport.db").exists()
