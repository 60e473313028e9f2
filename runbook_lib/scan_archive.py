"""Zip archives read in memory, member by member, within bounds that stop a zip bomb.

A Lambda deployment package or layer is a zip; a package may carry a layer zip inside it.
:class:`ZipWalker` reads each member (declared sizes checked before reading, actual bytes
counted while reading), hands text members to the scanner's ``scan_content`` and records
every member it does not read in the report with the reason. Errors and skip reasons name
the archive and member paths, never content.

Examples
--------
>>> import io, zipfile
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w") as z:
...     z.writestr("app.py", "x = 1\\n")
>>> seen = []
>>> report = ZipWalker(ZipLimits(), lambda content, path, report: seen.append(path)).report(buf.getvalue(), "")
>>> seen, report.skipped
(['app.py'], [])
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable

from .exceptions import InputError
from .scan_results import ScanReport

ZIP_SUFFIXES = {".zip", ".jar", ".whl", ".war"}
ZIP_MAGIC = b"PK\x03\x04"
#: Members larger than this are checked against :attr:`ZipLimits.max_ratio`.
RATIO_CHECK_BYTES = 1024 * 1024
_READ_CHUNK = 1024 * 1024
_OPEN_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError)
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError, EOFError)


@dataclass(frozen=True)
class ZipLimits:
    """Bounds for reading an archive in memory.

    Defaults fit a Lambda deployment package (250 MB unzipped, code plus layers) with
    headroom, and stop a zip bomb long before it fills memory.
    """

    max_members: int = 50_000
    max_total_bytes: int = 512 * 1024 * 1024
    max_file_bytes: int = 64 * 1024 * 1024
    max_ratio: int = 200  # uncompressed/compressed above this, for members over 1 MB
    max_depth: int = 1  # zips inside the zip: scanned one level down


class TooLarge(Exception):
    """A member held more bytes than the limit, whatever its header declared."""


def read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Read a member, stopping as soon as it passes ``limit`` whatever its header claims."""
    chunks, total = [], 0
    with archive.open(info) as fh:
        while True:
            chunk = fh.read(_READ_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise TooLarge()
            chunks.append(chunk)
    return b"".join(chunks)


def member_refusal(info: zipfile.ZipInfo, limits: ZipLimits, bytes_left: int) -> str | None:
    """Why a member is not read, judged from its header before reading; ``None`` to read it."""
    if info.flag_bits & 0x1:
        return "encrypted member"
    if info.file_size > limits.max_file_bytes:
        return f"declared size {info.file_size} bytes exceeds the per-file limit {limits.max_file_bytes}"
    if info.file_size > bytes_left:
        return f"total uncompressed limit {limits.max_total_bytes} bytes reached"
    if info.file_size > RATIO_CHECK_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        return f"compression ratio above {limits.max_ratio}:1 (zip bomb guard)"
    return None


def is_archive(name: str, content: bytes) -> bool:
    """A zip by its magic bytes or by its name."""
    return content[:4] == ZIP_MAGIC or name.lower().endswith(tuple(ZIP_SUFFIXES))


#: ``scan_content(content, path, report)``: scans one member's bytes into the report.
ContentScan = Callable[[bytes, str, ScanReport], None]


class ZipWalker:
    """Walks an archive (and archives inside it, :attr:`ZipLimits.max_depth` deep)."""

    def __init__(self, limits: ZipLimits, scan_content: ContentScan):
        self.limits = limits
        self.scan_content = scan_content

    def report(self, data: bytes, label: str) -> ScanReport:
        """A report of the archive ``data``; members are named ``label!member`` unless ``label`` is empty.

        Raises
        ------
        InputError
            ``data`` is not a readable zip archive.
        """
        report = ScanReport()
        budget = {"members": self.limits.max_members, "bytes": self.limits.max_total_bytes}
        self.walk(data, label or "archive.zip", report, budget, depth=0, top=not label)
        return report

    def walk(self, data: bytes, label: str, report: ScanReport, budget: dict, depth: int,
             top: bool = False) -> None:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = archive.infolist()
        except _OPEN_ERRORS as exc:
            raise InputError("zip", f"{label}: not a readable zip archive ({type(exc).__name__})") from None
        with archive:
            for index, info in enumerate(members):
                if info.is_dir():
                    continue
                if budget["members"] <= 0:
                    rest = sum(1 for m in members[index:] if not m.is_dir())
                    report.skip(label, f"member limit {self.limits.max_members} reached; {rest} more members not scanned")
                    return
                budget["members"] -= 1
                member_path = info.filename if top else f"{label}!{info.filename}"
                self.member(archive, info, member_path, report, budget, depth)

    def member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, member_path: str, report: ScanReport,
               budget: dict, depth: int) -> None:
        limits = self.limits
        reason = member_refusal(info, limits, budget["bytes"])
        if reason:
            report.skip(member_path, reason)
            return
        try:
            content = read_bounded(archive, info, min(limits.max_file_bytes, budget["bytes"]))
        except TooLarge:
            report.skip(member_path, "actual size exceeds the limit (declared size was wrong)")
            budget["bytes"] = 0  # a header that lied about one member: the others' are not trusted either
            return
        except _MEMBER_ERRORS as exc:
            report.skip(member_path, f"unreadable member ({type(exc).__name__})")
            return
        budget["bytes"] -= len(content)
        if not is_archive(info.filename, content):
            self.scan_content(content, member_path, report)
        elif depth >= limits.max_depth:
            report.skip(member_path, f"nested archive deeper than {limits.max_depth} level(s)")
        else:
            try:
                self.walk(content, member_path, report, budget, depth + 1)
            except InputError:
                report.skip(member_path, "nested archive is not a readable zip")
