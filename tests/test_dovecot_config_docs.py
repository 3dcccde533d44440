"""docs/operations.md shows the Dovecot 2.4 files as `mailbook dovecot install` writes them;
MAILBOOK_WRITE_EXPECTED=1 rewrites the block, and the test fails whenever they drift apart."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mailbook.dovecot import LmtpSetup, dovecot_files

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
BEGIN, END = "<!-- dovecot-2.4 begin -->\n", "<!-- dovecot-2.4 end -->"


def generated() -> str:
    files = dovecot_files(Path("/etc/dovecot/dovecot-sql.conf.ext"), Path("/etc/dovecot/conf.d"),
                          "host=127.0.0.1 port=5432 dbname=mail user=mailauth password=********", "/home/mail",
                          LmtpSetup("host=127.0.0.1 port=5432 dbname=mail user=mailquota password=********"), 900, "2.4")
    out = []
    for name in ("/etc/dovecot/conf.d/99-mailbook.conf", "/etc/dovecot/dovecot-sql.conf.ext"):
        out.append(f"`{name}`:\n\n```\n{files[Path(name)]}```\n")
    return "\n".join(out)


def test_operations_shows_the_24_files():
    """The 2.4 block in docs/operations.md is what `dovecot install` writes today."""
    text = DOC.read_text()
    block = re.search(re.escape(BEGIN) + r"(.*?)" + re.escape(END), text, re.S)
    assert block, "docs/operations.md lost its dovecot-2.4 markers"
    want = generated()
    if os.environ.get("MAILBOOK_WRITE_EXPECTED") and block.group(1) != want:
        DOC.write_text(text[:block.start(1)] + want + text[block.end(1):])
        return
    assert block.group(1) == want, "docs/operations.md: rerun with MAILBOOK_WRITE_EXPECTED=1"
