"""Which paths a folder scan leaves out: ``.gitignore`` files and ``--exclude`` patterns.

A folder is scanned the way git sees it: every ``.gitignore`` in the folder and below it
applies to the paths under its own directory, with git's pattern rules (read by
:mod:`pathspec`'s ``GitIgnoreSpec``). ``--exclude`` patterns use the same syntax, relative
to the scanned folder (or matched against a named file's path as given). One limit: a
``!pattern`` re-includes only what its own file excluded, not what a parent's did.

Examples
--------
>>> rules = PathFilter(exclude=["*.min.js", "vendor/"])
>>> rules.reason(Path("site/app.min.js"), Path("site"), is_dir=False)
'excluded by --exclude'
>>> rules.reason(Path("site/app.js"), Path("site"), is_dir=False) is None
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection, Iterable

GITIGNORE = ".gitignore"


def _spec(lines: list[str]):
    """A ``pathspec.GitIgnoreSpec``; pathspec is imported only by a scan that has patterns (start-up time)."""
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


class PathFilter:
    """``.gitignore`` files met on the walk, and the user's ``--exclude`` patterns.

    Parameters
    ----------
    exclude:
        gitignore-style patterns, relative to the scanned folder.
    gitignore:
        Read each folder's ``.gitignore`` (default); ``False`` scans everything.
    """

    def __init__(self, exclude: Iterable[str] = (), gitignore: bool = True):
        patterns = list(exclude)
        self.exclude = _spec(patterns) if patterns else None
        self.gitignore = gitignore
        # only the folders whose .gitignore holds a pattern: a path looks up its own ancestors here
        self._ignores: dict[Path, object] = {}
        self._entered: set[Path] = set()

    def __repr__(self) -> str:
        return f"PathFilter(gitignore={self.gitignore}, exclude={len(self.exclude.patterns if self.exclude else ())}" \
               " pattern(s))"

    @property
    def ignore_files(self) -> list[Path]:
        """The ``.gitignore`` files met so far that hold a pattern (the only ones a path is judged by)."""
        return [base / GITIGNORE for base in self._ignores]

    @property
    def judges(self) -> bool:
        """Whether :meth:`reason` can leave a path out yet: an ``--exclude`` pattern, or a ``.gitignore`` met."""
        return self.exclude is not None or bool(self._ignores)

    def enter(self, directory: Path, names: Collection[str] | None = None) -> None:
        """Load ``directory/.gitignore`` (once) before its entries are judged.

        ``names``: the directory's entries, when the caller has listed them; without a ``.gitignore``
        among them there is nothing to read (no ``stat`` of it).
        """
        if not self.gitignore or directory in self._entered:
            return
        self._entered.add(directory)
        if names is not None and GITIGNORE not in names:
            return
        file = directory / GITIGNORE
        try:
            lines = file.read_text(encoding="utf-8", errors="replace").splitlines() if file.is_file() else []
        except OSError:  # an unreadable .gitignore excludes nothing: the files are scanned
            lines = []
        if not any(line.strip() for line in lines):
            return
        spec = _spec(lines)
        if spec.patterns:
            self._ignores[directory] = spec

    def reason(self, path: Path, root: Path, is_dir: bool) -> str | None:
        """Why ``path`` (under the scanned folder ``root``) is left out, or ``None``."""
        suffix = "/" if is_dir else ""
        if self.exclude is not None and self.exclude.match_file(_relative(path, root) + suffix):
            return "excluded by --exclude"
        if not self._ignores:
            return None
        for base in reversed(path.parents):  # outermost first: the reason names the highest .gitignore
            spec = self._ignores.get(base)
            if spec is not None and spec.match_file(_relative(path, base) + suffix):
                return f"ignored by {(base / GITIGNORE).as_posix()}"
        return None

    def excludes_named(self, path: Path) -> bool:
        """A file named on the command line matches an ``--exclude`` pattern (as given)."""
        return self.exclude is not None and self.exclude.match_file(Path(path).as_posix())


def _is_under(path: Path, base: Path) -> bool:
    return path != base and base in path.parents


def _relative(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix() if _is_under(path, base) else path.as_posix()
