"""Normalisation: turn one inspected value into the few canonical views the rules match.

Attackers hide payloads behind encodings the backend (or the model) will undo: `%27`,
`&#39;`, `\\u0027`, fullwidth letters, zero-width joiners, bidi overrides, base64 blobs. Rules
are written once, against lower-case, decoded, NFKC text; this module produces that text.

Everything here is bounded so the cost per request is linear in the inspected bytes:
- each value is cut to `max_chars` before any work (the cap on inspected bytes per target);
- decoding (percent, HTML entities, `\\u`/`\\x` escapes) repeats at most `depth` times,
  stopping early when a pass changes nothing (`%2527` → `%27` → `'` needs two);
- base64 and hex runs are decoded once (never recursively) and at most `MAX_BLOBS` of them,
  and their text is added as an extra view instead of replacing the original.

Fast paths skip a decoder when its trigger character is absent, which is the common case for
prose prompts: most of a benign prompt's cost is `casefold` and one whitespace pass.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
from dataclasses import dataclass
from html.entities import html5 as html5_entities
from urllib.parse import unquote, unquote_plus

__all__ = ["MAX_BLOBS", "Views", "cmdline_view", "code_view", "normalize"]

# Zero-width characters, bidi embeddings/overrides/isolates, BOM and soft hyphen: invisible
# in a rendered prompt, so only an attacker has a reason to put them inside a keyword.
_INVISIBLE = dict.fromkeys(
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x200B, 0x200C, 0x200D,
     0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2060, 0x2061, 0x2062, 0x2063,
     0x2064, 0x2066, 0x2067, 0x2068, 0x2069, 0x206A, 0x206B, 0x206C, 0x206D, 0x206E, 0x206F,
     0x3164, 0xFEFF, 0xFFA0]
)
# Control characters become spaces (a NUL or vertical tab must not glue two words together
# nor split one), except the whitespace that whitespace folding handles anyway.
_CONTROLS = {code: " " for code in range(0x20) if chr(code) not in "\t\n\r"}
_CONTROLS[0x7F] = " "
_TRANSLATE = {**_INVISIBLE, **_CONTROLS}
# str.translate is fast on ASCII text only (about 1 ns a character, against 70 on any other
# text, where each character is a dict lookup): non-ASCII text is searched for the characters
# once, and only a text holding some (rare in a real prompt) pays for removing them.
_INVISIBLE_RUN = re.compile("[" + "".join(map(chr, _INVISIBLE)) + "]{1,4096}")
_CONTROL_CHAR = re.compile("[" + re.escape("".join(map(chr, _CONTROLS))) + "]")
_HIDDEN_CHAR = re.compile(_CONTROL_CHAR.pattern[:-1] + "".join(map(chr, _INVISIBLE)) + "]")

_ESCAPE = re.compile(r"\\(?:u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2}))")
_SPACE_RUN = re.compile(r"\s{2,}|[\t\n\r\f\v]")
# A base64 run long enough to hide a sentence (24 chars → 18 bytes), or a hex run of 16+
# digits (8 bytes). Single character classes with one quantifier: linear by construction.
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{24,4096}={0,2}")
_HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{16,4096}")

_HEX_ONLY = re.compile(r"[0-9a-fA-F]{0,8192}")  # runs are at most 4098 long

MAX_BLOBS = 4


@dataclass(frozen=True, slots=True)
class Views:
    """The canonical forms of one value: `text` always, decoded blobs when there were any."""

    text: str
    decoded: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return (self.text, *self.decoded)


def _unescape_codepoints(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        digits = match.group(1) or match.group(2) or match.group(3)
        code = int(digits, 16)
        return chr(code) if code <= 0x10FFFF else ""

    return _ESCAPE.sub(replace, text)


# HTML5 entity names are case-sensitive, but filters that lower-case first (and some
# browsers' legacy parsing) see `&TAB;` or `&newline;` too: map any case to the character.
_ENTITIES_ANY_CASE = {
    name.lower(): char for name, char in reversed(list(html5_entities.items()))
    if name.endswith(";")
}
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31};)")
_PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")
# UTF-7 shifted runs: `+ADw-script+AD4-` is `<script>` to a UTF-7-sniffing reader.
_UTF7_RUN = re.compile(r"\+[A-Za-z0-9+/]{2,64}-")


def _entity_any_case(match: re.Match[str]) -> str:
    return _ENTITIES_ANY_CASE.get(match.group(1).lower(), match.group(0))


def _utf7(match: re.Match[str]) -> str:
    try:
        return match.group(0).encode("ascii").decode("utf-7")
    except UnicodeDecodeError:
        return match.group(0)


def _decode_layers(text: str, depth: int, form: bool) -> str:
    """Undoes percent (also IIS `%uXXXX`), entity, escape and UTF-7 encodings, up to `depth`
    rounds."""
    for round_ in range(depth):
        before = text
        if "%" in text or (form and round_ == 0 and "+" in text):
            if "%u" in text or "%U" in text:
                text = _PERCENT_U.sub(lambda m: chr(int(m.group(1), 16)), text)
            # `+` means space only in the first, form-encoded layer.
            text = unquote_plus(text) if form and round_ == 0 else unquote(text)
        if "&" in text:
            text = html.unescape(text)
            if "&" in text:
                text = _ENTITY.sub(_entity_any_case, text)
        if "\\" in text:
            text = _unescape_codepoints(text)
        if "+a" in text or "+A" in text:
            text = _UTF7_RUN.sub(_utf7, text)
        if text == before:
            break
    return text


def _canonical(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    # split() folds every whitespace run (Unicode spaces included) in C: several times
    # cheaper than a regex substitution over the whole text. Folded, not stripped: a value
    # ending in a newline ("visudo\n") keeps one space, as a shell-bound value would.
    if text.isascii():
        folded = text.translate(_TRANSLATE).casefold()
    elif _HIDDEN_CHAR.search(text):
        folded = _CONTROL_CHAR.sub(" ", _INVISIBLE_RUN.sub("", text)).casefold()
    else:
        folded = text.casefold()
    joined = " ".join(folded.split())
    if folded[:1].isspace() and joined:
        joined = " " + joined
    if folded[-1:].isspace() and joined.strip():
        joined += " "
    return joined


def _printable_ratio(text: str) -> float:
    if not text:
        return 0.0
    if text.isprintable():  # the common case, in C
        return 1.0
    printable = sum(1 for char in text if char.isprintable() or char in "\n\t")
    return printable / len(text)


def _decode_blob(run: str) -> str | None:
    """Decodes a base64 or hex run; None unless the result is mostly readable text."""
    raw: bytes | None = None
    try:
        if len(run) % 2 == 0 and _HEX_ONLY.fullmatch(run):
            raw = binascii.unhexlify(run)
        else:
            padded = run.rstrip("=")
            padded += "=" * (-len(padded) % 4)
            alphabet = base64.urlsafe_b64decode if ("-" in run or "_" in run) else base64.b64decode
            raw = alphabet(padded)
    except (binascii.Error, ValueError):
        return None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if len(decoded) >= 6 and _printable_ratio(decoded) >= 0.9 else None


def normalize(value: str, *, max_chars: int, depth: int = 2, form: bool = False) -> Views:
    """All views of `value` a rule may match; see the module docstring for the bounds."""
    text = value[:max_chars]
    if "%" in text or "&" in text or "\\" in text or "+" in text:
        text = _decode_layers(text, depth, form)
    decoded: list[str] = []
    # Blobs hide in long whitespace-free tokens: only those are searched for runs.
    tokens = text.split()
    if tokens and max(map(len, tokens)) < 16:  # the usual prose: no token to look into
        tokens = []
    for token in [token for token in tokens if len(token) >= 16]:
        for pattern in (_B64_RUN, _HEX_RUN):
            for match in pattern.finditer(token):
                if len(decoded) >= MAX_BLOBS:
                    break
                blob = _decode_blob(match.group(0))
                if blob is not None:
                    view = _canonical(_decode_layers(blob, 1, False))
                    if view not in decoded:  # a hex run is also a base64-alphabet run
                        decoded.append(view)
    return Views(_canonical(text), tuple(decoded))


_CMD_DELETE = str.maketrans("", "", "\\\"'^")
_CMD_DELETE_RUN = re.compile(r"[\\\"'^]{1,4096}")
# `$@`, `$*` and an unset `$xx` glued to a word expand to nothing: `c$@at`, `sh$xx -c`.
_EMPTY_EXPANSION = re.compile(r"\$[@*]|(?<=[a-z])\$(?:\{[a-z_]{1,16}\}|[a-z_][a-z0-9_]{0,15})")


def cmdline_view(text: str) -> str:
    """The shell's view of a canonical text: quoting and escaping evasions removed.

    `c''at /e\\tc/pa"ss"wd`, `c^a^t`, `c$@at` and `sh$x` run the same program as `cat /etc/passwd`,
    so command rules match this view (ModSecurity's `t:cmdLine` does much the same). Command
    separators are kept: rules need them to tell `; id` from the word "id".
    """
    if "$" in text:
        text = _EMPTY_EXPANSION.sub("", text)
    # translate on ASCII text, a regex on any other (see _INVISIBLE_RUN).
    return text.translate(_CMD_DELETE) if text.isascii() else _CMD_DELETE_RUN.sub("", text)


_COMMENT = re.compile(r"/\*[^*]{0,256}\*/|<!--[^>]{0,256}-->")


def code_view(text: str) -> str:
    """The text as a SQL or JavaScript parser reads it: `/* ... */` (and `<!-- -->`)
    comments become one space, so `union/**/select` and `document/*x*/.cookie` match their rules.
    Comments longer than 256 characters are left alone (bounded work per position)."""
    if "/*" not in text and "<!--" not in text:
        return text
    return _SPACE_RUN.sub(" ", _COMMENT.sub(" ", text))
