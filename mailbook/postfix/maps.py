"""The Postfix map files in postfix-maps/: reading them, filling in their connection
lines, and expanding their query for a key the way pgsql_table(5) does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailbook import data_dir
from mailbook.files import parse_settings

CONNECTION_KEYS = ("hosts", "user", "password", "dbname")


@dataclass
class MapFile:
    name: str  # e.g. mailboxes.cf
    text: str

    @property
    def settings(self) -> dict[str, str]:
        return parse_settings(self.text)

    @property
    def query(self) -> str:
        return self.settings["query"]

    @property
    def parameter(self) -> str:
        """The main.cf parameter that uses this map, from its header comment."""
        m = re.search(r"^# Used by main\.cf:\s*(\w+)", self.text, re.M)
        return m.group(1) if m else ""

    def with_connection(self, values: dict[str, str]) -> str:
        """The file with its connection lines set; every other line stays as it is."""
        def replace(m: re.Match) -> str:
            key = m.group(1)
            return f"{key} = {values[key]}" if key in values else m.group(0)
        pattern = r"^(" + "|".join(CONNECTION_KEYS) + r")[ \t]*=.*$"
        return re.sub(pattern, replace, self.text, flags=re.M)


def map_files() -> list[MapFile]:
    return [MapFile(p.name, p.read_text()) for p in sorted(data_dir("postfix-maps").glob("*.cf"))]


def expand(query: str, key: str) -> str | None:
    """The SQL Postfix sends for `key`, or None where Postfix sends nothing (%u with an
    empty local part, %d for a key without a domain). The value is quoted as Postfix
    quotes it: inside the template's own quotes, with quotes doubled. Postfix folds
    the key to lower case first, and so does this."""
    key = key.lower()
    local, at, domain = key.rpartition("@")
    values = {"%s": key, "%u": local if at else key, "%d": domain if at else None, "%%": "%"}
    if at and not local and "%u" in query:
        return None
    out = []
    for piece in re.split(r"(%[%sud])", query):
        if piece in values:
            if values[piece] is None:
                return None
            out.append(values[piece] if piece == "%%" else values[piece].replace("'", "''"))
        else:
            out.append(piece)
    return "".join(out)
