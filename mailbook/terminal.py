"""Text from the database or another tool, made safe to print on a terminal (issue 28).

A realname, an audit key, a PostgreSQL error message or a line of another tool's data is
written by someone other than the admin who reads it. Printed as it is, an ESC or OSC
sequence in it moves the cursor, rewrites the screen or the window title, or hides what
comes before a carriage return; through rich, "[/]" or "[bold]" is markup (a MarkupError
ends the command). Everything such text goes through on its way out is here:

- printable(): C0 and C1 control characters and DEL as "?", as SQL's quoted() shows them
  (a newline kept only where a value may span lines: a table cell);
- cell(): a rich Text, never parsed as markup nor highlighted;
- json_text(): json.dumps, which escapes every control character but DEL; DEL too here;
- quoted(): a value in double quotes for a one-line message, like SQL's quoted().

Shell commands printed for pasting are built with shlex.quote/shlex.join where they are
made; what cannot be quoted away (a path that a shell command and Dovecot both use) is
refused by the importers (mailbook.importers.unsafe_path).
"""

from __future__ import annotations

import json
import re

from rich.text import Text

# C0 (U+0000-U+001F), DEL (U+007F), C1 (U+0080-U+009F): ESC, CSI, OSC, BEL, CR, BS ...
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def printable(text: object, keep_newlines: bool = False) -> str:
    """str(text) with every control character shown as "?" (newlines kept if asked)."""
    return (_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL).sub("?", str(text))


def cell(text: object) -> Text:
    """A table cell for rich: literal text (no markup, no highlighting), controls as "?";
    a multi-line value (a vacation reply) keeps its lines."""
    return Text(printable(text, keep_newlines=True))


def json_text(value: object) -> str:
    """JSON for --json: exact (it parses back to the same values); json.dumps escapes
    every control character except DEL, which is escaped here (it can only occur inside a
    string, so the text stays valid JSON)."""
    return json.dumps(value, default=str, indent=2).replace("\x7f", "\\u007f")


def quoted(value: str, limit: int = 80) -> str:
    """A value in double quotes for a one-line message: controls as "?", cut after limit
    characters, as SQL's public.quoted() does."""
    return '"' + printable(value[:limit]) + ('..."' if len(value) > limit else '"')
