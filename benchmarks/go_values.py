"""The string values a Go source file builds, read without running Go.

gitleaks keeps its labelled examples in Go (``tps`` and ``fps`` of each rule function in
``cmd/generate/config/rules/*.go``), built from string literals, ``+``, ``[]string{…}``,
``append`` and a few helpers (``secrets.NewSecret(regex)``, ``utils.AlphaNumeric("20")``,
``utils.GenerateSampleSecrets(id, secret)``, ``fmt.Sprintf``). This module tokenizes Go,
splits function bodies into statements (Go's automatic semicolons), and evaluates those
expressions into Python values. What it cannot evaluate it reports as :class:`Unknown`;
the caller counts and skips such items, nothing is guessed.

Random parts (``secrets.NewSecret``) come from a seeded generator over the regex's own
syntax tree (:func:`random_match`), so a build is the same every time.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

try:  # the regex parser of the standard library (re._parser from 3.11)
    import re._parser as sre_parse
    import re._constants as sre_constants
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants
    import sre_parse


class Unknown(Exception):
    """An expression this evaluator does not know how to compute."""


# ------------------------------------------------------------------ tokens

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<raw>`[^`]*`)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<rune>'(?:[^'\\\n]|\\.)+')
  | (?P<num>\d[\w.]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\.\.|:=|==|!=|<=|>=|&&|\|\||\+=|-=|\+\+|--|<-|[-+*/%&|^<>=!(){}\[\],;.:])
""", re.VERBOSE | re.DOTALL)

#: After these tokens a newline ends the statement (the Go specification's semicolon rule).
_ENDS_LINE = {"ident", "num", "str", "raw", "rune"}
_ENDS_LINE_OPS = {")", "]", "}", "++", "--"}


@dataclass
class Token:
    kind: str
    text: str


def go_string(text: str) -> str:
    """The value of a Go string literal (interpreted ``"…"`` or raw ```…```)."""
    if text.startswith("`"):
        return text[1:-1].replace("\r", "")
    body, out, i = text[1:-1], [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
              "f": "\f", "v": "\v"}
    raw_bytes = bytearray()

    def flush():
        if raw_bytes:
            out.append(raw_bytes.decode("utf-8", "replace"))
            raw_bytes.clear()

    while i < len(body):
        c = body[i]
        if c != "\\":
            flush()
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n in simple:
            flush()
            out.append(simple[n])
            i += 2
        elif n == "x":
            raw_bytes.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif n in "01234567":
            raw_bytes.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif n in "uU":
            width = 4 if n == "u" else 8
            flush()
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
        else:
            raise Unknown(f"escape \\{n}")
    flush()
    return "".join(out)


def tokenize(source: str) -> list[Token]:
    """Tokens with ``;`` inserted where Go inserts them; comments dropped."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m:
            raise Unknown(f"cannot tokenize at offset {pos}")
        pos = m.end()
        kind = m.lastgroup
        text = m.group()
        newline = kind == "nl" or (kind == "comment" and "\n" in text)
        if newline:
            last = tokens[-1] if tokens else None
            if last and (last.kind in _ENDS_LINE or (last.kind == "op" and last.text in _ENDS_LINE_OPS)
                         or (last.kind == "ident" and last.text in ("return", "break", "continue"))):
                tokens.append(Token("op", ";"))
            continue
        if kind in ("ws", "comment"):
            continue
        tokens.append(Token(kind, text))
    return tokens


# ------------------------------------------------------------------ functions and statements

_OPEN, _CLOSE = {"(": ")", "[": "]", "{": "}"}, {")", "]", "}"}


def matching(tokens: list[Token], start: int) -> int:
    """Index of the bracket closing the one at ``start``."""
    depth = 0
    for i in range(start, len(tokens)):
        t = tokens[i]
        if t.kind == "op" and t.text in _OPEN:
            depth += 1
        elif t.kind == "op" and t.text in _CLOSE:
            depth -= 1
            if depth == 0:
                return i
    raise Unknown("unbalanced brackets")


@dataclass
class Function:
    name: str
    params: list[str]
    body: list[Token] = field(default_factory=list)


def functions(tokens: list[Token]) -> dict[str, Function]:
    """Top-level ``func name(params) result { body }`` of a file, by name."""
    out: dict[str, Function] = {}
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "ident" and t.text == "func" and i + 1 < len(tokens) and tokens[i + 1].kind == "ident":
            name = tokens[i + 1].text
            close = matching(tokens, i + 2)
            params = [tok.text for j, tok in enumerate(tokens[i + 3:close])
                      if tok.kind == "ident" and (j == 0 or tokens[i + 3 + j - 1].text == ",")]
            j = close + 1
            while not (tokens[j].kind == "op" and tokens[j].text == "{"):
                j += 1
            end = matching(tokens, j)
            out[name] = Function(name, params, tokens[j + 1:end])
            i = end + 1
            continue
        i += 1
    return out


def statements(body: list[Token]) -> list[list[Token]]:
    """The body split at ``;`` outside brackets (a ``for``/``if`` block stays one statement)."""
    out, current, depth = [], [], 0
    for t in body:
        if t.kind == "op" and t.text in _OPEN:
            depth += 1
        elif t.kind == "op" and t.text in _CLOSE:
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text == ";":
            if current:
                out.append(current)
            current = []
            continue
        current.append(t)
    if current:
        out.append(current)
    return out


# ------------------------------------------------------------------ random strings from a regex

def random_match(pattern: str, rng: random.Random, repeat_extra: int = 1) -> str:
    """A string matching ``pattern``; unbounded repeats go at most ``repeat_extra`` past their minimum."""
    return "".join(_emit(sre_parse.parse(pattern), rng, repeat_extra))


_CATEGORY = {
    sre_constants.CATEGORY_DIGIT: "0123456789",
    sre_constants.CATEGORY_WORD: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    sre_constants.CATEGORY_SPACE: " ",
}


def _class_chars(items) -> str:
    chars: list[str] = []
    negate = False
    for op, arg in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            chars.append(chr(arg))
        elif op is sre_constants.RANGE:
            chars.extend(chr(c) for c in range(arg[0], arg[1] + 1))
        elif op is sre_constants.CATEGORY and arg in _CATEGORY:
            chars.extend(_CATEGORY[arg])
        else:
            raise Unknown(f"character class item {op}")
    if negate:
        pool = [chr(c) for c in range(33, 127)]
        chars = [c for c in pool if c not in chars]
    return "".join(dict.fromkeys(chars))


def _emit(parsed, rng: random.Random, extra: int) -> list[str]:
    out: list[str] = []
    for op, arg in parsed:
        if op is sre_constants.LITERAL:
            out.append(chr(arg))
        elif op is sre_constants.IN:
            out.append(rng.choice(_class_chars(arg)))
        elif op is sre_constants.ANY:
            out.append(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789"))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, sub = arg
            if high == sre_constants.MAXREPEAT:
                high = low + extra
            for _ in range(rng.randint(low, high)):
                out.extend(_emit(sub, rng, extra))
        elif op is sre_constants.SUBPATTERN:
            out.extend(_emit(arg[-1], rng, extra))
        elif op is sre_constants.BRANCH:
            out.extend(_emit(rng.choice(arg[1]), rng, extra))
        elif op is sre_constants.AT:
            continue
        elif op is sre_constants.CATEGORY:
            out.append(rng.choice(_CATEGORY.get(arg, "a")))
        else:
            raise Unknown(f"regex operator {op}")
    return out


# ------------------------------------------------------------------ expressions

class Evaluator:
    """Evaluates the expressions of one package's rule functions.

    ``helpers`` are Python implementations of calls by name (``utils.AlphaNumeric``);
    ``locals`` maps names to values while a function body runs.
    """

    def __init__(self, helpers: dict, rng: random.Random):
        self.helpers = helpers
        self.rng = rng
        self.failures: list[str] = []  # one reason per example left out

    def run(self, function: Function, env: dict | None = None) -> dict:
        """Variables of ``function`` after its simple statements (assignments, appends, returns)."""
        env = dict(env or {})
        for stmt in statements(function.body):
            self.statement(stmt, env)
        return env

    def statement(self, stmt: list[Token], env: dict) -> None:
        texts = [t.text for t in stmt]
        if texts[0] == "return":
            env["<return>"] = self.lazy(stmt[1:], env)
            return
        if texts[0] == "var":
            name = texts[1]
            if "=" in texts:
                env[name] = self.lazy(stmt[texts.index("=") + 1:], env)
            elif texts[2:4] == ["[", "]"]:
                env[name] = []
            return
        if len(stmt) >= 3 and stmt[0].kind == "ident" and texts[1] in (":=", "="):
            env[name := texts[0]] = self.lazy(stmt[2:], env)
            return
        if len(stmt) >= 3 and stmt[0].kind == "ident" and texts[1] == "+=":
            try:
                env[texts[0]] = env[texts[0]] + self.value(stmt[2:], env)
            except (Unknown, KeyError, TypeError):
                env[texts[0]] = Unknown("+=")
            return
        # if/for blocks and other statements are not followed

    def lazy(self, tokens: list[Token], env: dict):
        try:
            return self.value(tokens, env)
        except Unknown as exc:
            return Deferred(tokens, exc)

    def value(self, tokens: list[Token], env: dict):
        parser = _Parser(tokens, self, env)
        result = parser.expression()
        if parser.pos != len(tokens):
            raise Unknown(f"trailing tokens at {tokens[parser.pos].text!r}")
        return result

    def elements(self, tokens: list[Token], env: dict) -> tuple[list, int]:
        """Each element of a ``[]string{…}`` or argument list evaluated on its own (failures counted)."""
        items, failed = [], 0
        for part in split_commas(tokens):
            try:
                got = self.value(part, env)
            except Unknown as exc:
                failed += 1
                self.failures.append(str(exc))
                continue
            items.append(got)
        return items, failed


@dataclass
class Deferred:
    """A variable whose expression could not be evaluated, kept with the reason."""

    tokens: list
    error: Exception


def split_commas(tokens: list[Token]) -> list[list[Token]]:
    parts, current, depth = [], [], 0
    for t in tokens:
        if t.kind == "op" and t.text in _OPEN:
            depth += 1
        elif t.kind == "op" and t.text in _CLOSE:
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text in (",", ";"):
            if current:
                parts.append(current)
            current = []
            continue
        current.append(t)
    if current:
        parts.append(current)
    return parts


class _Parser:
    """``expr := term ('+' term)*``; terms: literals, names, calls, composite literals, ``(expr)``."""

    def __init__(self, tokens: list[Token], evaluator: Evaluator, env: dict):
        self.tokens, self.ev, self.env, self.pos = tokens, evaluator, env, 0

    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def expression(self):
        value = self.term()
        while self.peek() and self.peek().text == "+":
            self.pos += 1
            right = self.term()
            if not isinstance(value, str) or not isinstance(right, str):
                raise Unknown("+ of non-strings")
            value += right
        return value

    def term(self):
        t = self.peek()
        if t is None:
            raise Unknown("empty expression")
        if t.kind in ("str", "raw"):
            self.pos += 1
            return go_string(t.text)
        if t.kind == "num":
            self.pos += 1
            return int(t.text) if t.text.isdigit() else t.text
        if t.text == "(":
            close = matching(self.tokens, self.pos)
            inner = self.ev.value(self.tokens[self.pos + 1:close], self.env)
            self.pos = close + 1
            return inner
        if t.text == "[" and self.peek(1) and self.peek(1).text == "]":
            return self.composite()
        if t.kind == "ident" and t.text == "map":
            return self.composite()
        if t.kind == "ident":
            return self.name_or_call()
        raise Unknown(f"term {t.text!r}")

    def composite(self):
        start = self.pos
        while self.peek() and self.peek().text != "{":
            self.pos += 1
        type_text = "".join(t.text for t in self.tokens[start:self.pos])
        close = matching(self.tokens, self.pos)
        inner = self.tokens[self.pos + 1:close]
        self.pos = close + 1
        if type_text == "[]string":
            items, _ = self.ev.elements(inner, self.env)
            return [i for i in items if isinstance(i, str)]
        if type_text == "map[string]string":
            out = {}
            for part in split_commas(inner):
                colon = next(i for i, tok in enumerate(part) if tok.text == ":")
                try:
                    out[self.ev.value(part[:colon], self.env)] = self.ev.value(part[colon + 1:], self.env)
                except Unknown:
                    continue
            return out
        raise Unknown(f"composite {type_text}")

    def name_or_call(self):
        name = self.peek().text
        self.pos += 1
        while self.peek() and self.peek().text == "." and self.peek(1) and self.peek(1).kind == "ident":
            name += "." + self.peek(1).text
            self.pos += 2
        if self.peek() and self.peek().text == "(":
            close = matching(self.tokens, self.pos)
            args_tokens = self.tokens[self.pos + 1:close]
            self.pos = close + 1
            return self.call(name, args_tokens)
        if name == "nil":
            return None
        if name in ("true", "false"):
            return name == "true"
        if name in self.env:
            value = self.env[name]
            if isinstance(value, Deferred):
                raise Unknown(f"{name}: {value.error}")
            return value
        raise Unknown(f"name {name}")

    def call(self, name: str, args_tokens: list[Token]):
        if name == "append":
            parts = split_commas(args_tokens)
            base = self.ev.value(parts[0], self.env)
            if not isinstance(base, list):
                raise Unknown("append to a non-list")
            result = list(base)
            for part in parts[1:]:
                spread = part and part[-1].text == "..."
                try:
                    got = self.ev.value(part[:-1] if spread else part, self.env)
                except Unknown as exc:
                    self.ev.failures.append(str(exc))
                    continue  # one example that cannot be built is left out, the others stay
                result.extend(got if spread else [got])
            return result
        helper = self.ev.helpers.get(name)
        if helper is None:
            raise Unknown(f"call {name}")
        args = [self.ev.value(part, self.env) for part in split_commas(args_tokens)]
        return helper(*args)
