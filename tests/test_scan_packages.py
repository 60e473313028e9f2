"""Which files of a package are installed dependencies, and what the scanner does with their findings."""

import base64
import hashlib
import io
import zipfile

from runbook_lib import scan_packages
from runbook_lib.redaction import Fingerprinter
from runbook_lib.scanning import Scanner

TOKEN_LINE = 'api_token = "ghp_' + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa12" + '"\n'


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def python_package(library: bytes, shipped: bytes | None = None, app: bytes = b"print('hi')\n") -> dict:
    """A package with ``app.py`` and the dependency ``libx 1.2``; ``shipped``: what RECORD hashed (default: library)."""
    metadata = b"Metadata-Version: 2.1\nName: libx\nVersion: 1.2\n\n[badge](https://x/?token=1)\n"
    record = "\n".join([record_line("libx/__init__.py", library if shipped is None else shipped),
                        record_line("libx-1.2.dist-info/METADATA", metadata),
                        "libx-1.2.dist-info/RECORD,,"]) + "\n"
    return {"app.py": app, "libx/__init__.py": library, "libx-1.2.dist-info/METADATA": metadata,
            "libx-1.2.dist-info/RECORD": record.encode()}


def zipped(files: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def scanner() -> Scanner:
    return Scanner(fingerprinter=Fingerprinter(b"k" * 32))


def test_unmodified_python_dependency_files_are_attributed_with_name_and_version():
    owners = scan_packages.archive_owners(zipped(python_package(TOKEN_LINE.encode())))
    assert owners["libx/__init__.py"] == scan_packages.Package("libx", "1.2", "python", True)
    assert "libx-1.2.dist-info/METADATA" in owners and "app.py" not in owners


def test_a_dependency_file_changed_after_installation_is_first_party():
    owners = scan_packages.archive_owners(zipped(python_package(TOKEN_LINE.encode(), shipped=b"# original\n")))
    assert "libx/__init__.py" not in owners


def test_node_modules_files_belong_to_the_innermost_package_unverified():
    files = {"node_modules/a/package.json": b'{"name": "a", "version": "1.0.0"}',
             "node_modules/a/index.js": b"x", "node_modules/a/node_modules/@s/b/package.json":
             b'{"name": "@s/b", "version": "2.0.0"}', "node_modules/a/node_modules/@s/b/lib.js": b"y",
             "node_modules/broken/package.json": b"not json", "node_modules/broken/x.js": b"z", "index.mjs": b"w"}
    owners = scan_packages.archive_owners(zipped(files))
    assert owners["node_modules/a/index.js"].name == "a" and owners["node_modules/a/index.js"].verified is False
    assert owners["node_modules/a/node_modules/@s/b/lib.js"].to_dict() == {
        "package": "@s/b", "package_version": "2.0.0", "ecosystem": "npm", "verified": False}
    assert "index.mjs" not in owners and "node_modules/broken/x.js" not in owners


def test_not_a_zip_has_no_owners():
    assert scan_packages.archive_owners(b"plain text") == {}


def test_the_scanner_keeps_third_party_findings_apart_in_zips_and_folders(tmp_path):
    files = python_package(TOKEN_LINE.encode(), app=TOKEN_LINE.encode())
    report = scanner().scan_zip(zipped(files), "fn.zip")
    assert [f.path for f in report.findings] == ["fn.zip!app.py"]
    assert [(t.finding.path, t.package.name, t.package.version) for t in report.third_party] == [
        ("fn.zip!libx/__init__.py", "libx", "1.2")]
    assert "libx 1.2" in str(report.third_party[0]) and TOKEN_LINE[14:30] not in str(report.third_party[0])
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    folder = scanner().scan_path(tmp_path)
    assert [f.path.endswith("app.py") for f in folder.findings] == [True]
    assert [t.package.name for t in folder.third_party] == ["libx"]


def test_a_modified_dependency_file_finding_is_a_first_party_finding():
    files = python_package(TOKEN_LINE.encode(), shipped=b"# original\n")
    report = scanner().scan_zip(zipped(files))
    assert [f.path for f in report.findings] == ["libx/__init__.py"]
    assert report.third_party == []
