"""Find secrets in environment variables, files, directories and zip archives.

This module is the scanner's public face: :class:`Scanner` and what it returns
(:class:`Finding`, :class:`ScanReport`, :class:`ZipLimits`). The engine never lets a value
out: a finding holds a location, a rule, a redacted preview
(:func:`~runbook_lib.redaction.redact`) and a keyed fingerprint
(:class:`~runbook_lib.redaction.Fingerprinter`), and nothing from which the value could be
read back. Exceptions and skip reasons name paths and sizes, never content.

How a buffer is scanned, module by module:

* :mod:`runbook_lib.rules` -- what a secret looks like: token formats, secret-named keys,
  the value test;
* :mod:`runbook_lib.scan_prefilter` -- every rule's prefilter in one Hyperscan database,
  run once over the whole file (without Hyperscan the same prefilters run with :mod:`re`);
* :mod:`runbook_lib.scan_buffer` and :mod:`runbook_lib.scan_lines` -- only the lines where
  the prefilter reports a hit are decoded and confirmed in Python;
* :mod:`runbook_lib.scan_environment` -- environment variables, JSON values opened up;
* :mod:`runbook_lib.scan_archive` -- zip packages and layers, bounded;
* :mod:`runbook_lib.scan_packages` -- which files are installed dependencies (``dist-info/RECORD``
  hashes, ``node_modules/*/package.json``): their findings go to ``ScanReport.third_party``;
* :mod:`runbook_lib.scan_results` -- :class:`Finding` and :class:`ScanReport`.

Examples
--------
>>> scanner = Scanner()
>>> [f.rule for f in scanner.scan_text('DB_PASSWORD = "pa55-w0rd!x"\\n', "app.py")]
['keyword-assignment']
>>> scanner.scan_environment({"SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x"})
[]
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from . import rules as R
from . import scan_packages, scan_pool
from .allowlist import Allowlist, allowlist_entry, has_inline_marker
from .exceptions import InputError
from .redaction import Fingerprinter, redact
from .scan_archive import ZIP_MAGIC, ZIP_SUFFIXES, ZipLimits, ZipWalker
from .scan_buffer import BufferScan, Candidate, select_candidates
from .scan_environment import environment_candidates
from .scan_prefilter import engine_name, shared_prefilter
from .scan_ignore import PathFilter
from .scan_results import Finding, ScanReport, ThirdPartyFinding

__all__ = ["CODE_SUFFIXES", "SKIP_DIRS", "ZIP_SUFFIXES", "Finding", "ScanReport", "Scanner", "ThirdPartyFinding",
           "ZipLimits", "attribute_third_party", "engine_name", "is_binary", "is_config", "scan_many"]

CODE_SUFFIXES = {".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".kts",
                 ".go", ".rb", ".php", ".cs", ".scala", ".groovy", ".swift", ".rs", ".c", ".cc",
                 ".cpp", ".h", ".hpp", ".m", ".dart", ".lua", ".pl", ".r", ".vue", ".svelte"}
SKIP_DIRS = {".git", ".hg", ".svn"}
#: A NUL byte in this many first bytes makes a file binary (not scanned).
BINARY_SNIFF = 8192


def is_binary(data: bytes) -> bool:
    """A NUL byte in the first :data:`BINARY_SNIFF` bytes."""
    return b"\0" in data[:BINARY_SNIFF]


def is_config(path: str) -> bool:
    """Configuration (unquoted values count) unless the name, or a zip member's, has a code suffix."""
    suffix = os.path.splitext(path)[1].lower()  # of the last component: ``a.zip!app.py`` -> ``.py``
    return suffix not in CODE_SUFFIXES


class Scanner:
    """The detection engine.

    Parameters
    ----------
    fingerprinter:
        Keyed hash for findings (default: a new :class:`Fingerprinter`, keyed from
        ``RUNBOOK_FINGERPRINT_KEY`` or at random).
    allowlist:
        An :class:`~runbook_lib.allowlist.Allowlist`, a path to an allowlist file, or
        an iterable of entries. Allowlisted findings are counted, not reported.
    zip_limits:
        Bounds for archives (:class:`ZipLimits`).
    workers:
        Processes that scan a folder's files (:mod:`runbook_lib.scan_pool`): ``1`` (default)
        this one only; ``0`` or ``None`` every core; small folders always use one.
    """

    def __init__(self, fingerprinter: Fingerprinter | None = None, allowlist=None,
                 zip_limits: ZipLimits | None = None, workers: int | None = 1):
        self.fingerprinter = fingerprinter or Fingerprinter()
        if allowlist is None or isinstance(allowlist, Allowlist):
            self.allowlist = allowlist
        elif isinstance(allowlist, (str, Path)):
            self.allowlist = Allowlist.from_file(allowlist)
        else:
            self.allowlist = Allowlist(allowlist)
        self.zip_limits = zip_limits or ZipLimits()
        self.workers = workers
        self.allowlisted = 0
        self._entries: dict[str, str] = {}  # fingerprint -> allowlist entry (a hash)
        self._prefilter = shared_prefilter()
        self._nothing_at: set = set()  # assignment windows that confirmed nothing (scan_buffer.BufferScan.memo_key)
        self._zips = ZipWalker(self.zip_limits, self._scan_content)

    def __repr__(self) -> str:
        return f"Scanner(engine={self._prefilter.engine!r}, allowlist={self.allowlist!r})"

    @property
    def engine(self) -> str:
        return self._prefilter.engine

    def allowlist_entry(self, finding: Finding) -> str | None:
        """The ``sha256:`` allowlist entry for a finding of this scanner (a hash, not the value)."""
        return self._entries.get(finding.fingerprint)

    # -- building findings

    def _finding(self, rule_id: str, value: str, **where) -> Finding | None:
        fingerprint = self.fingerprinter(value)
        entry = allowlist_entry(value)
        if self.allowlist is not None and self.allowlist.allows(entry, fingerprint):
            self.allowlisted += 1
            return None
        self._entries[fingerprint] = entry
        rule = R.RULES[rule_id]
        return Finding(rule=rule.id, title=rule.title, remediation=rule.remediation,
                       redacted=redact(value), fingerprint=fingerprint, **where)

    def _candidates(self, data: bytes, config: bool) -> list[Candidate]:
        hits = self._prefilter.hits(data, config)
        if not hits:
            return []
        scan = BufferScan(data, config, self._nothing_at)
        scan.run(hits, self._prefilter.families)
        return select_candidates(scan.candidates)

    def _text_candidates(self, text: str) -> list[Candidate]:
        return self._candidates(text.encode("utf-8", "surrogateescape"), config=True)

    # -- entry points

    def scan_bytes(self, data: bytes, path: str) -> list[Finding]:
        """Findings in one text buffer; ``path`` labels them (and picks code vs config parsing)."""
        candidates = self._candidates(data, is_config(path))
        findings: list[Finding] = []
        line, counted_to = 1, 0
        # one candidate per value per line already (select_candidates): nothing to deduplicate here
        for c in sorted(candidates, key=lambda c: c.offset):
            line += data.count(b"\n", counted_to, c.offset)
            counted_to = c.offset
            if has_inline_marker(c.line_text):
                self.allowlisted += 1
                continue
            finding = self._finding(c.rule, c.value, path=path, line=line)
            if finding:
                findings.append(finding)
        return findings

    def scan_text(self, text: str, path: str) -> list[Finding]:
        """Findings in ``text``, each with ``path`` and a 1-based ``line``."""
        return self.scan_bytes(text.encode("utf-8", "surrogateescape"), path)

    def scan_environment(self, variables: Mapping[str, object]) -> list[Finding]:
        """Findings in a name -> value map (Lambda ``Environment.Variables``).

        JSON objects and arrays in values are parsed and their leaves scanned too.
        """
        findings: list[Finding] = []
        for name in sorted(variables):
            value = variables[name]
            value = value if isinstance(value, str) else json.dumps(value)
            seen: set[str] = set()
            for rule, leaf, json_key in environment_candidates(name, value, self._text_candidates):
                finding = self._finding(rule, leaf, variable=name, json_key=json_key)
                if finding and finding.fingerprint not in seen:
                    seen.add(finding.fingerprint)
                    findings.append(finding)
        return findings

    def scan_zip(self, data: bytes, label: str = "") -> ScanReport:
        """Scan an archive in memory, member by member, within :attr:`zip_limits`.

        Raises
        ------
        InputError
            ``data`` is not a readable zip archive.
        """
        before = self.allowlisted
        report = self._zips.report(data, label)
        report.allowlisted = self.allowlisted - before
        return attribute_third_party(report, scan_packages.archive_owners(data), f"{label}!" if label else "")

    def _scan_content(self, content: bytes, path: str, report: ScanReport) -> None:
        if is_binary(content):
            report.skip(path, "binary")
            return
        report.files_scanned += 1
        report.bytes_scanned += len(content)
        report.findings.extend(self.scan_bytes(content, path))

    def scan_path(self, path: str | Path, paths: PathFilter | None = None) -> ScanReport:
        """Scan a file, a directory (recursively) or a zip archive on disk.

        ``paths`` says what a folder scan leaves out (default: what its ``.gitignore`` files
        ignore); a left-out path is in the report's ``skipped`` with the file that said so.

        Raises
        ------
        InputError
            ``path`` does not exist or cannot be read.
        """
        root = Path(path)
        report = ScanReport()
        before = self.allowlisted
        paths = paths if paths is not None else PathFilter()
        if root.is_dir():
            owners = self._scan_folder(root, report, paths)
            attribute_third_party(report, owners, f"{root}{os.sep}")
        elif paths.excludes_named(root):
            report.skip(str(root), "excluded by --exclude")
        elif root.exists():
            self._scan_file(root, report, must_exist=True)
        else:
            raise InputError("path", f"{path} does not exist")
        report.allowlisted = self.allowlisted - before
        return report

    def _scan_folder(self, root: Path, report: ScanReport, paths: PathFilter) -> dict:
        """Scan the walk's entries into ``report`` (on every core when :attr:`workers` allows); the folder's owners."""
        sized = ((entry, _size(entry[0]) if entry[1] is None and self.workers != 1 else 0, entry[1] is None)
                 for entry in _walk(root, paths))
        start = self.allowlisted
        parts, owners = scan_pool.run_stream(self._scan_entries, sized, self.workers,
                                             meanwhile=lambda: scan_packages.folder_owners(root))
        for part, entries_of_findings in parts:  # in walk order, whichever process scanned them
            report.merge(part)
            self._entries.update(entries_of_findings)
        self.allowlisted = start + sum(part.allowlisted for part, _ in parts)
        return owners

    def _scan_entries(self, entries: list[tuple[str, str | None]]) -> tuple[ScanReport, dict[str, str]]:
        """One batch of the walk: its report (``allowlisted``: this batch's) and its findings' allowlist entries."""
        report = ScanReport()
        before = self.allowlisted
        opened = prefetch(path for path, why in entries if not why)
        try:
            for path, why in entries:
                if why:
                    report.skip(path, why)
                else:
                    self._scan_file(path, report, must_exist=False, fd=opened.pop(path, None))
        finally:
            for fd in opened.values():  # a batch stopped short: close what it did not read
                os.close(fd)
        report.allowlisted = self.allowlisted - before
        found = report.findings + [t.finding for t in report.third_party]
        return report, {f.fingerprint: self._entries[f.fingerprint] for f in found}

    def _scan_file(self, file: str | Path, report: ScanReport, must_exist: bool, fd: int | None = None) -> None:
        label = os.fspath(file)
        is_zip = os.path.splitext(label)[1].lower() in ZIP_SUFFIXES
        data = self._read_file(label, report, must_exist, is_zip, fd)
        if data is None:
            return
        if is_zip or data[:4] == ZIP_MAGIC:
            try:
                report.merge(attribute_third_party(self._zips.report(data, label),
                                                   scan_packages.archive_owners(data), f"{label}!"))
            except InputError:
                if must_exist:
                    raise
                report.skip(label, "not a readable zip archive")
            return
        self._scan_content(data, label, report)

    def _read_file(self, label: str, report: ScanReport, must_exist: bool, is_zip: bool,
                   fd: int | None = None) -> bytes | None:
        """The file's bytes, or ``None`` with the reason in the report (a named path must be readable).

        ``fd``: the file already opened by :func:`prefetch` (a regular file, no link followed); it is
        judged by ``fstat`` and read, and closed here whatever happens.
        """
        try:
            # one stat: a regular file (most) needs no other
            status = os.fstat(fd) if fd is not None else _status(label, follow=False)
            if status is not None and stat.S_ISLNK(status.st_mode):
                if not must_exist:
                    report.skip(label, "symbolic link (not followed)")
                    return None
                status = _status(label, follow=True)
            if status is None or not stat.S_ISREG(status.st_mode):
                report.skip(label, "not a regular file")
                return None
            size = status.st_size
            limit = self.zip_limits.max_total_bytes if is_zip else self.zip_limits.max_file_bytes
            if size > limit:
                report.skip(label, f"size {size} bytes exceeds the limit {limit}")
                return None
            with open(label, "rb") if fd is None else open(fd, "rb", closefd=False) as file:
                return file.read()
        except OSError as exc:
            if must_exist:
                raise InputError("path", f"cannot read {label}: {exc.strerror or type(exc).__name__}") from None
            report.skip(label, f"unreadable ({exc.strerror or type(exc).__name__})")
            return None
        finally:
            if fd is not None:
                os.close(fd)


def _walk(root: Path, paths: PathFilter) -> Iterator[tuple[str, str | None]]:
    """Every entry of a folder in walk order: ``(path, why it is left out)``, or ``(file, None)`` to scan.

    The order is :func:`os.walk`'s, top down, each folder's names sorted: its left-out folders,
    then its files; then its other folders, one after the other. Symbolic links to folders are
    not followed (nor listed); a folder that cannot be listed lists nothing. Paths are strings,
    as :class:`~pathlib.Path` would print them; a :class:`~pathlib.Path` is made only for a
    path that ``paths`` must judge.
    """
    pending = [os.fspath(root)]
    while pending:
        top = pending.pop()
        try:
            with os.scandir(top) as listing:
                entries = list(listing)
        except OSError:
            continue
        folders, files = _split_listing(entries)
        here = Path(top)
        paths.enter(here, names=[entry.name for entry in files])
        kept = []
        for entry in folders:
            path = _child(top, entry.name)
            why = "version-control metadata" if entry.name in SKIP_DIRS else (
                paths.reason(Path(path), root, True) if paths.judges else None)
            if why:
                yield path, why
            elif not _is_link(entry):
                kept.append(path)
        for entry in files:
            path = _child(top, entry.name)
            yield path, paths.reason(Path(path), root, False) if paths.judges else None
        pending.extend(reversed(kept))


def _split_listing(entries: list[os.DirEntry]) -> tuple[list[os.DirEntry], list[os.DirEntry]]:
    """(folders, everything else), each sorted by name; a link to a folder is a folder, as in os.walk."""
    folders, files = [], []
    for entry in entries:
        try:
            is_folder = entry.is_dir()
        except OSError:
            is_folder = False
        (folders if is_folder else files).append(entry)
    folders.sort(key=lambda e: e.name)
    files.sort(key=lambda e: e.name)
    return folders, files


def _is_link(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink()
    except OSError:  # as os.walk: not a link, so walked into (a folder that cannot be listed lists nothing)
        return False


def _child(folder: str, name: str) -> str:
    """``folder/name`` as ``Path(folder) / name`` prints it (``.`` adds nothing)."""
    return name if folder == "." else os.path.join(folder, name)


def prefetch(paths: Iterable[str]) -> dict[str, int]:
    """Open these regular files and ask the kernel to start reading them now: ``{path: fd}``.

    With a cold page cache a batch's files are then read from the disk together instead of one
    after the other as the scan reaches them (``posix_fadvise(POSIX_FADV_WILLNEED)`` starts the
    reads and returns). Only regular files are opened (a FIFO or a device never is), without
    following a symbolic link; whatever cannot be opened is left to the scan to judge and report.
    The caller reads from and closes each descriptor. Where the platform has no ``posix_fadvise``
    nothing is opened.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:  # pragma: no cover - not Linux
        return {}
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    opened: dict[str, int] = {}
    for path in paths:
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            fd = os.open(path, flags)
        except (OSError, ValueError):
            continue
        opened[path] = fd
        try:
            advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:  # the read itself still works: only the head start is lost
            pass
    return opened


#: ``stat`` errors that mean "no such file" (``Path.is_file()`` is ``False`` on them; others are raised).
_MISSING = {errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP}


def _status(path: str, follow: bool) -> os.stat_result | None:
    """``stat`` (``lstat`` unless ``follow``), or ``None`` when there is no such file."""
    try:
        return os.stat(path, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in _MISSING:
            return None
        raise
    except ValueError:  # a NUL in the name
        return None


def _size(path: str) -> int:
    """Bytes of a file for balancing the workers' batches (0 when it cannot be told: it is judged when read)."""
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def attribute_third_party(report: ScanReport, owners: dict, prefix: str) -> ScanReport:
    """Move the findings in unmodified dependency files (``owners``: member path -> package) to ``third_party``."""
    first = []
    for finding in report.findings:
        path = finding.path or ""
        package = owners.get(path[len(prefix):]) if path.startswith(prefix) else None
        if package is None:
            first.append(finding)
        else:
            report.third_party.append(ThirdPartyFinding(finding, package))
    report.findings = first
    return report


def scan_many(scanner: Scanner, paths: Iterable[str | Path]) -> ScanReport:
    """One report over several paths."""
    report = ScanReport()
    for path in paths:
        report.merge(scanner.scan_path(path))
    return report
