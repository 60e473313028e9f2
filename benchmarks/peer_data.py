"""A labelled test set built from peers' own examples, at pinned commits.

Two peers publish labelled examples with their rules:

* **gitleaks** (MIT): each rule function in ``cmd/generate/config/rules/*.go`` validates
  itself against ``tps`` (must be found) and ``fps`` (must not be). Many ``tps`` are built
  with ``utils.GenerateSampleSecrets(id, secret)``, which writes one secret in some thirty
  syntaxes (INI, JSON, XML, YAML, Go, Java, C#, PHP, Python, Makefile, ...); the secret is
  often ``secrets.NewSecret(regex)``, random. :mod:`go_values` evaluates those Go
  expressions, with a seeded generator, so the set is the same on every build.
* **Kingfisher** (Apache-2.0): each rule in ``data/rules/*.yml`` has ``examples`` (must
  be found) and often ``negative_examples``.

Only rules of the families this project's scanner is meant to cover (:data:`GITLEAKS_FAMILY`,
:data:`KINGFISHER_FAMILY`) are kept; the others are counted as out of scope. Each example
becomes one file; its labels are per line:

* a **positive** line holds the secret: the line of the secret written by
  ``GenerateSampleSecrets``, or of the rule's own pattern's match in the example; when
  neither can be located (a pattern Python cannot compile), the whole example is one
  unit: found when any of its lines is reported;
* every line of a ``fps`` / ``negative_examples`` entry is **negative**;
* the other lines of a positive example are context, **not scored** (the peers label only
  the secret of their rule; a username line beside it is neither).

Files get the extension of their syntax (``.go``, ``.py``, ``.json``, ``.ini``, ``Makefile``,
...) where gitleaks names it, ``.txt`` otherwise.

Held-out part: whole rules, chosen by a hash of ``source:rule id`` (:func:`held_out`), about
three in ten. Tuning looks at the development part only.

The built set is kept in this repository as data (:func:`export`, ``benchmarks/data/peers/``,
their licences in its ``NOTICE.md``) and written out as files for a run (:func:`materialize`);
it can be built again from the peers' git history (``--gitleaks DIR`` / ``--kingfisher DIR``,
a clone or bare git directory). :data:`PINNED` says which commits.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import go_values as G

#: The commits the set is built from, and the peers' licences (their examples are kept under :data:`DATA`).
PINNED = {
    "gitleaks": {"repo": "gitleaks/gitleaks", "commit": "b58d3f102cf3a2c84cb7f923d05c25c9b1aed84b",
                 "licence": "MIT", "paths": "cmd/generate/config/rules/*.go, cmd/generate/config/utils/*.go"},
    "kingfisher": {"repo": "mongodb/kingfisher", "commit": "ee7c0db3ef87575768f817820c24736249ffcdef",
                   "licence": "Apache-2.0", "paths": "data/rules/*.yml"},
}

#: gitleaks rule id (prefix) -> family. Rules of other vendors are out of scope.
GITLEAKS_FAMILY = {
    "aws-": "aws", "azure-": "azure", "github-": "github", "gitlab-": "gitlab", "slack-": "slack",
    "stripe-": "stripe", "gcp-": "google", "sendgrid-": "sendgrid", "twilio-": "twilio", "npm-": "npm",
    "pypi-": "pypi", "openai-": "openai", "anthropic-": "anthropic", "mailgun-": "mailgun",
    "mailchimp-": "mailchimp", "shopify-": "shopify", "jwt": "jwt", "private-key": "private-key",
    "curl-auth-": "authorization", "generic-api-key": "generic",
}
#: Kingfisher rule file -> family.
KINGFISHER_FAMILY = {
    "aws": "aws", "azure": "azure", "azuredevops": "azure", "azurestorage": "azure", "github": "github",
    "gitlab": "gitlab", "slack": "slack", "stripe": "stripe", "gcp": "google", "google": "google",
    "googleoauth2": "google", "sendgrid": "sendgrid", "twilio": "twilio", "npm": "npm", "pypi": "pypi",
    "openai": "openai", "anthropic": "anthropic", "mailgun": "mailgun", "mailchimp": "mailchimp",
    "shopify": "shopify", "jwt": "jwt", "pem": "private-key", "privkey": "private-key",
    "credentials": "connection-string", "uri": "connection-string", "postgres": "connection-string",
    "mongodb": "connection-string", "odbc": "connection-string", "mysql.yaml": "connection-string",
    "generic": "generic", "netrc": "generic",
}
#: File name per GenerateSampleSecrets syntax (by the first word of its label).
SYNTAX_FILE = {
    "ini": "config.ini", "json": "config.json", "xml": "config.xml", "yaml": "config.yaml", "c#": "Config.cs",
    "go": "config.go", "java": "Config.java", "kotlin": "Config.kt", "php": "config.php",
    "python": "config.py", "misc": "Config.java", "logstash": "logstash.conf", "make": "Makefile",
}
HELD_OUT_TENTHS = 3


def held_out(source: str, rule: str) -> bool:
    """Whether a rule's examples are in the held-out part (about three rules in ten)."""
    return int(hashlib.sha256(f"{source}:{rule}".encode()).hexdigest(), 16) % 10 < HELD_OUT_TENTHS


def family_of(table: dict[str, str], key: str, prefix: bool) -> str | None:
    if not prefix:
        return table.get(key)
    return next((f for p, f in table.items() if key.startswith(p)), None)


class Sample(str):
    """An example string that knows its secret and its syntax (from ``GenerateSampleSecrets``)."""

    secret: str | None = None
    syntax: str | None = None

    @classmethod
    def of(cls, text: str, secret: str | None, syntax: str | None) -> "Sample":
        s = cls(text)
        s.secret, s.syntax = secret, syntax
        return s


@dataclass
class Example:
    source: str
    rule: str
    family: str
    positive: bool
    text: str
    secret: str | None = None  # where it is known
    syntax: str | None = None
    pattern: str | None = None  # the rule's pattern, to locate the secret's line
    held_out: bool = False


@dataclass
class Extraction:
    examples: list[Example] = field(default_factory=list)
    out_of_scope_rules: int = 0
    unevaluated: list[str] = field(default_factory=list)


def git_show(git_dir: Path, commit: str, path: str) -> str:
    return subprocess.run(["git", "-C", str(git_dir), "show", f"{commit}:{path}"],
                          capture_output=True, text=True, check=True).stdout


def git_ls(git_dir: Path, commit: str, folder: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(git_dir), "ls-tree", "--name-only", f"{commit}:{folder}"],
                         capture_output=True, text=True, check=True).stdout
    return [f"{folder}/{name}" for name in out.split()]


# ------------------------------------------------------------------ gitleaks

def _sprintf(fmt: str, *args) -> str:
    values = iter(args)
    return re.sub(r"%[sdvq%]", lambda m: "%" if m.group() == "%%" else
                  (json.dumps(next(values)) if m.group() == "%q" else str(next(values))), fmt)


def gitleaks_helpers(sources: dict[str, str], rng_box: list) -> dict:
    """Calls the rule functions make, in Python: the utils package's own functions run as written."""
    utils_funcs: dict[str, G.Function] = {}
    for path, text in sources.items():
        if "/utils/" in path:
            utils_funcs.update(G.functions(G.tokenize(text)))
    samples_fn = utils_funcs["GenerateSampleSecrets"]
    templates: dict[str, str] = {}
    for stmt in G.statements(samples_fn.body):
        if stmt[0].text == "samples":
            templates = G.Evaluator({}, random.Random(0)).value(stmt[2:], {})

    def sample_secrets(identifier: str, secret: str) -> list[str]:
        out = []
        for label, template in sorted(templates.items()):
            text = template.replace("{i}", identifier).replace("{I}", identifier.upper()).replace("{s}", secret)
            out.append(Sample.of(text, secret, label))
        return out

    def sample_secret(identifier: str, secret: str) -> str:
        return Sample.of(f'{identifier}_api_token = "{secret}"', secret, "python")

    def new_secret(pattern: str) -> str:
        return G.random_match(pattern, rng_box[0])

    def plausible_secret(pattern: str) -> str:
        for _ in range(100):  # gitleaks retries until the secret has a digit
            secret = new_secret(pattern)
            if re.search(r"[1-9]", secret):
                return secret
        raise G.Unknown("no plausible secret")

    helpers = {"secrets.NewSecret": new_secret, "utils.GenerateSampleSecrets": sample_secrets,
               "utils.GenerateSampleSecret": sample_secret, "fmt.Sprintf": _sprintf,
               "newPlausibleSecret": plausible_secret, "strings.Repeat": lambda s, n: s * int(n)}
    evaluator = G.Evaluator(helpers, random.Random(0))
    for name in ("Numeric", "Hex", "AlphaNumeric", "AlphaNumericExtendedShort", "AlphaNumericExtended",
                 "AlphaNumericExtendedLong", "Hex8_4_4_4_12"):
        fn = utils_funcs[name]
        helpers[f"utils.{name}"] = (lambda fn: lambda *args: evaluator.run(fn, dict(zip(fn.params, args)))["<return>"])(fn)
    return helpers


def _rule_fields(body: list[G.Token], evaluator: G.Evaluator) -> tuple[str | None, str | None]:
    """RuleID and, where it is a plain ``regexp.MustCompile`` or a generated token regex, the pattern."""
    texts = [t.text for t in body]
    rule_id = pattern = None
    for i, t in enumerate(texts):
        if t == "RuleID" and texts[i + 1] == ":" and body[i + 2].kind == "str":
            rule_id = G.go_string(body[i + 2].text)
        if t == "Regex" and texts[i + 1] == ":" and pattern is None:
            call = texts[i + 2:i + 6]
            start = i + 2 + (3 if call[:3] == ["regexp", ".", "MustCompile"] else 0)
            if call[:3] == ["utils", ".", "GenerateUniqueTokenRegex"] or call[:3] == ["utils", ".", "GenerateSemiGenericRegex"]:
                start = i + 5
            if start > i + 2 and texts[start] == "(":
                close = G.matching(body, start)
                args = G.split_commas(body[start + 1:close])
                arg = args[1] if call[2] == "GenerateSemiGenericRegex" else args[0]
                try:
                    pattern = evaluator.value(arg, {})
                    if call[2] != "MustCompile" and args[-1][0].text == "true":
                        pattern = "(?i)" + pattern
                except G.Unknown:
                    pattern = None
    return rule_id, pattern


def gitleaks_examples(git_dir: Path, commit: str) -> Extraction:
    paths = [p for p in git_ls(git_dir, commit, "cmd/generate/config/rules") if p.endswith(".go")]
    paths += [p for p in git_ls(git_dir, commit, "cmd/generate/config/utils") if p.endswith(".go")]
    sources = {p: git_show(git_dir, commit, p) for p in paths}
    rng_box = [random.Random(0)]
    helpers = gitleaks_helpers(sources, rng_box)
    out = Extraction()
    for path, text in sorted(sources.items()):
        if "/rules/" not in path:
            continue
        for name, fn in sorted(G.functions(G.tokenize(text)).items()):
            rng_box[0] = random.Random(f"gitleaks:{name}")
            evaluator = G.Evaluator(helpers, rng_box[0])
            rule_id, pattern = _rule_fields(fn.body, evaluator)
            if rule_id is None:
                continue
            family = family_of(GITLEAKS_FAMILY, rule_id, prefix=True)
            if family is None:
                out.out_of_scope_rules += 1
                continue
            env = evaluator.run(fn)
            ret = env.get("<return>")
            tokens = ret.tokens if isinstance(ret, G.Deferred) else []
            texts = [t.text for t in tokens]
            if texts[:4] != ["utils", ".", "Validate", "("]:
                out.unevaluated.append(f"gitleaks {rule_id}: returns {''.join(texts[:4])}")
                continue
            args = G.split_commas(tokens[4:G.matching(tokens, 3)])
            for positive, arg in ((True, args[1]), (False, args[2])):
                try:
                    items = evaluator.value(arg, env) or []
                except G.Unknown as exc:
                    out.unevaluated.append(f"gitleaks {rule_id}: {'tps' if positive else 'fps'}: {exc}")
                    continue
                for item in items:
                    out.examples.append(Example(
                        "gitleaks", rule_id, family, positive, str(item), getattr(item, "secret", None),
                        getattr(item, "syntax", None), pattern, held_out("gitleaks", rule_id)))
            out.unevaluated.extend(f"gitleaks {rule_id}: {reason}" for reason in evaluator.failures)
    return out


# ------------------------------------------------------------------ Kingfisher

def kingfisher_examples(git_dir: Path, commit: str) -> Extraction:
    import yaml

    out = Extraction()
    for path in sorted(git_ls(git_dir, commit, "data/rules")):
        stem = Path(path).name.removesuffix(".yml")
        doc = yaml.safe_load(git_show(git_dir, commit, path)) or {}
        rules = doc.get("rules", [])
        family = family_of(KINGFISHER_FAMILY, stem, prefix=False)
        if family is None:
            out.out_of_scope_rules += len(rules)
            continue
        companions = {dep.get("rule_id") for r in rules for dep in r.get("depends_on_rule") or []}
        for rule in rules:
            rule_id = rule["id"]
            # identifiers that another rule needs for validation (an account id, a key's name): not secrets
            if rule.get("visible") is False or rule_id in companions:
                out.out_of_scope_rules += 1
                continue
            for positive, key in ((True, "examples"), (False, "negative_examples")):
                for text in rule.get(key) or []:
                    out.examples.append(Example("kingfisher", rule_id, family, positive, str(text).rstrip("\n"),
                                                pattern=rule.get("pattern"), held_out=held_out("kingfisher", rule_id)))
    return out


# ------------------------------------------------------------------ labelled files

def rust_to_python(pattern: str) -> str:
    """The few syntax differences of Rust/Go regexes from Python's that the peers' patterns use."""
    return pattern.replace(r"\z", r"\Z").replace("(?-u:", "(?:").replace("(?s-u:", "(?s:")


def secret_lines(example: Example) -> set[int] | None:
    """1-based lines holding the secret, or ``None`` when it cannot be located."""
    lines = example.text.split("\n")
    if example.secret:
        found = {i for i, line in enumerate(lines, 1) if example.secret in line}
        if found:
            return {min(found)}
    if len(lines) == 1:
        return {1}
    if example.pattern:
        try:
            regex = re.compile(rust_to_python(example.pattern))
        except re.error:
            return None
        m = regex.search(example.text)
        if m:
            group = next((g for g in ("TOKEN", "SECRET") if g in regex.groupindex), 1 if regex.groups else 0)
            start = m.start(group) if m.start(group) >= 0 else m.start()
            return {example.text.count("\n", 0, start) + 1}
    return None


def file_name(example: Example) -> str:
    if example.syntax:
        return SYNTAX_FILE.get(example.syntax.split()[0].lower(), "example.txt")
    return "example.txt"


@dataclass
class LabelledFile:
    rel: str
    source: str
    rule: str
    family: str
    held_out: bool
    positive_lines: list[int]
    negative_lines: list[int]
    unit: bool  # True: a positive example whose secret line is unknown, scored as a whole


def build(dest: Path, gitleaks_dir: Path | None, kingfisher_dir: Path | None) -> dict:
    """Write every example as a file under ``dest/files`` and the labels as ``dest/labels.json``."""
    extractions = {}
    if gitleaks_dir:
        extractions["gitleaks"] = gitleaks_examples(gitleaks_dir, PINNED["gitleaks"]["commit"])
    if kingfisher_dir:
        extractions["kingfisher"] = kingfisher_examples(kingfisher_dir, PINNED["kingfisher"]["commit"])
    files: list[dict] = []
    digest = hashlib.sha256()
    seen: set[tuple[str, str, bool]] = set()
    for source, extraction in extractions.items():
        for n, ex in enumerate(extraction.examples):
            if (ex.rule, ex.text, ex.positive) in seen or not ex.text.strip():
                continue
            seen.add((ex.rule, ex.text, ex.positive))
            rel = f"{source}/{ex.family}/{ex.rule}/{n:05d}-{'tp' if ex.positive else 'fp'}/{file_name(ex)}"
            target = dest / "files" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(ex.text + "\n", encoding="utf-8")
            digest.update(rel.encode() + b"\0" + ex.text.encode() + b"\0")
            count = ex.text.count("\n") + 1
            lines = secret_lines(ex) if ex.positive else None
            files.append(asdict(LabelledFile(
                rel, source, ex.rule, ex.family, ex.held_out,
                sorted(lines or []), [] if ex.positive else list(range(1, count + 1)),
                ex.positive and lines is None)))
    labels = {"pinned": {s: PINNED[s] for s in extractions}, "sha256": digest.hexdigest(), "files": files,
              "out_of_scope_rules": {s: e.out_of_scope_rules for s, e in extractions.items()},
              "unevaluated": {s: e.unevaluated for s, e in extractions.items()}}
    (dest / "labels.json").write_text(json.dumps(labels, indent=1), encoding="utf-8")
    return labels


#: Where the built set is kept in this repository (one JSON line per example, text included).
DATA = Path(__file__).resolve().parent / "data" / "peers"


def export(dest: Path, data: Path = DATA) -> None:
    """Keep a built set (``dest``, from :func:`build`) as data: ``<source>.jsonl`` and ``set.json``."""
    doc = json.loads((dest / "labels.json").read_text(encoding="utf-8"))
    data.mkdir(parents=True, exist_ok=True)
    for source in doc["pinned"]:
        rows = [dict(f, text=(dest / "files" / f["rel"]).read_text(encoding="utf-8")[:-1])
                for f in doc["files"] if f["source"] == source]
        (data / f"{source}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    meta = {k: v for k, v in doc.items() if k != "files"}
    (data / "set.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def materialize(dest: Path, data: Path = DATA) -> dict:
    """Write the kept set's examples as files under ``dest/files``; the labels as :func:`build` gives them.

    The examples' digest must be the one ``set.json`` records (the data were not edited by hand).
    """
    meta = json.loads((data / "set.json").read_text(encoding="utf-8"))
    files, digest = [], hashlib.sha256()
    for source in meta["pinned"]:
        for row in (data / f"{source}.jsonl").read_text(encoding="utf-8").splitlines():
            f = json.loads(row)
            text = f.pop("text")
            target = dest / "files" / f["rel"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n", encoding="utf-8")
            digest.update(f["rel"].encode() + b"\0" + text.encode() + b"\0")
            files.append(f)
    if digest.hexdigest() != meta["sha256"]:
        raise ValueError(f"{data}: the examples' sha256 is not the one set.json records: rebuild the set")
    return dict(meta, files=files)
