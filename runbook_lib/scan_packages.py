"""Which files of a code package are installed third-party dependencies, and which are the team's own.

A secret scanner that reads a deployment package also reads the libraries vendored into it
(Powertools, the caching client, their ``dist-info``): a badge token in ``METADATA``, a
docstring's sample key. Those are findings in someone else's published code, not a secret
the function's team put there. This module tells them apart from the package's own bytes:

* **Python**: each ``<name>-<version>.dist-info/RECORD`` lists the files its distribution
  installed with their SHA-256. A file whose hash still matches its RECORD line is that
  distribution's, unmodified (**verified**); a file listed with another hash was changed
  after installation and is first-party again.
* **Node.js**: ``node_modules/<name>/package.json`` (and ``@scope/name``) names the package
  whose folder a file is in. npm keeps no per-file hashes, so such files are attributed to
  their package but **not verified**: a changed file there cannot be told from the original.

Everything else is first-party. Paths are those of the archive's members (the scanner's
``Finding.path`` is ``<label>!<member>``) or of a folder's files; nested archives are not
attributed. The scanner moves findings in attributed files to ``ScanReport.third_party``
(:func:`runbook_lib.scanning.attribute_third_party`).

Examples
--------
>>> owners = third_party_files({"pkg-1.0.dist-info/RECORD": b"pkg/a.py,sha256=x,1\\n", "pkg/a.py": b"changed"})
>>> owners  # the hash does not match: pkg/a.py is first-party
{}
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

PYTHON, NPM = "python", "npm"
_DIST_INFO = re.compile(r"^(?P<site>(?:.*/)?)(?P<dir>[^/]+)\.dist-info/RECORD$")
_NPM_MANIFEST = re.compile(r"^(?P<root>(?:.*/)?node_modules/(?:@[^/]+/)?[^/@][^/]*)/package\.json$")
#: Files of a package larger than this are not hashed (a RECORD can list big binaries).
MAX_HASHED_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Package:
    """A third-party distribution some files of a package belong to."""

    name: str
    version: str
    ecosystem: str
    verified: bool

    def label(self) -> str:
        how = "unmodified, by its RECORD hashes" if self.verified else "by its package.json, not verifiable"
        return f"{self.name} {self.version} ({self.ecosystem}; {how})"

    def to_dict(self) -> dict:
        return {"package": self.name, "package_version": self.version, "ecosystem": self.ecosystem,
                "verified": self.verified}


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist_name(members, site: str, folder: str) -> tuple[str, str]:
    """(name, version) from METADATA's headers, else from the folder name ``name-version``."""
    metadata = members.get(f"{site}{folder}.dist-info/METADATA", b"").decode("utf-8", "replace")
    headers = dict(re.findall(r"^(Name|Version):\s*(.+?)\s*$", metadata.split("\n\n", 1)[0], re.M))
    if "Name" in headers and "Version" in headers:
        return headers["Name"], headers["Version"]
    name, _, version = folder.partition("-")
    return name, version or "?"


def _python_files(members) -> dict[str, Package]:
    owners: dict[str, Package] = {}
    for path in list(members):
        match = _DIST_INFO.match(path)
        if not match:
            continue
        site, folder = match.group("site"), match.group("dir")
        name, version = _dist_name(members, site, folder)
        package = Package(name, version, PYTHON, verified=True)
        text = (members.get(path) or b"").decode("utf-8", "replace")
        for row in csv.reader(io.StringIO(text)):
            if len(row) < 2 or not row[1].startswith("sha256="):
                continue  # RECORD lists itself (and .pyc files) without a hash: nothing to verify
            member = posixpath.normpath(site + row[0])
            data = members.get(member) if member in members else None
            if data is not None and _record_hash(data) == row[1]:
                owners[member] = package
    return owners


def _npm_files(members) -> dict[str, Package]:
    roots: dict[str, Package] = {}
    for path in list(members):
        match = _NPM_MANIFEST.match(path)
        if not match:
            continue
        try:
            manifest = json.loads(members.get(path) or b"")
        except ValueError:
            continue
        if isinstance(manifest, dict) and manifest.get("name"):
            roots[match.group("root") + "/"] = Package(str(manifest["name"]), str(manifest.get("version", "?")),
                                                       NPM, verified=False)
    owners: dict[str, Package] = {}
    if not roots:
        return owners
    for path in list(members):
        # the innermost package folder owns the file (nested node_modules belong to their own package):
        # the longest of the path's own folder prefixes that is a root, not a search of every root
        cut = path.rfind("/")
        while cut > 0:
            package = roots.get(path[:cut + 1])
            if package is not None:
                owners[path] = package
                break
            cut = path.rfind("/", 0, cut)
    return owners


def third_party_files(members) -> dict[str, Package]:
    """``{member path: Package}`` for every member that is an installed dependency's file."""
    return {**_npm_files(members), **_python_files(members)}


class ArchiveMembers:
    """The files of a zip as a read-on-demand mapping: only what RECORDs and manifests name is read."""

    def __init__(self, archive: zipfile.ZipFile, limit: int = MAX_HASHED_BYTES):
        self._archive = archive
        self._infos = {i.filename: i for i in archive.infolist()
                       if not i.is_dir() and i.file_size <= limit and not i.flag_bits & 0x1}

    def __iter__(self):
        return iter(self._infos)

    def __contains__(self, name) -> bool:
        return name in self._infos

    def get(self, name: str, default=None):
        info = self._infos.get(name)
        if info is None:
            return default
        try:
            return self._archive.read(info)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError):
            return default

    def __getitem__(self, name: str) -> bytes:
        data = self.get(name)
        if data is None:
            raise KeyError(name)
        return data


def archive_owners(data: bytes) -> dict[str, Package]:
    """:func:`third_party_files` of a zip's top-level members ({} for a zip that cannot be read)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return third_party_files(ArchiveMembers(archive))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return {}


class FolderMembers:
    """The files under a folder as a read-on-demand mapping of their ``/``-separated relative paths."""

    def __init__(self, root, limit: int = MAX_HASHED_BYTES):
        self._root = Path(root)
        self._limit = limit
        self._names: dict[str, str] = {}
        self._walk(os.fspath(self._root))

    def _walk(self, top: str) -> None:
        """Regular files, in os.walk's order; symbolic links (to files or folders) are not followed, as the scanner."""
        pending = [(top, "")]
        while pending:
            folder, prefix = pending.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError:  # an unreadable folder lists nothing, as os.walk
                continue
            below = []
            for entry in entries:  # the kind comes from the listing itself: no stat per file
                try:
                    if entry.is_file(follow_symlinks=False):
                        self._names[prefix + entry.name] = entry.path
                    elif entry.is_dir(follow_symlinks=False):
                        below.append((entry.path, f"{prefix}{entry.name}/"))
                except OSError:
                    continue
            pending.extend(reversed(below))

    def __iter__(self):
        return iter(self._names)

    def __contains__(self, name) -> bool:
        return name in self._names

    def get(self, name: str, default=None):
        path = self._names.get(name)
        try:
            if path is None or os.stat(path).st_size > self._limit:
                return default
            with open(path, "rb") as file:
                return file.read()
        except OSError:
            return default


def folder_owners(root) -> dict[str, Package]:
    """:func:`third_party_files` of the files under ``root`` (paths relative to it, OS separators)."""
    owners = third_party_files(FolderMembers(root))
    return {name.replace("/", os.sep): package for name, package in owners.items()}
