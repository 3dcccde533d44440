"""The peer sources people move in from, for the move-in tests and benchmarks/movein.py: the
real tools (PostfixAdmin's upgrade.php and postfixadmin-cli, vmm's create_tables.pgsql and
vmm command) building their databases, and a replay of Postfix's recipient lookups through
`postmap -q` against any set of pgsql: map files, so the source's documented maps and
mailbook's can be compared."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg

from mailbook.files import write_private

from .process import require_program, run

PFA_TREE = Path("/usr/share/postfixadmin")  # Debian's postfixadmin package
VMM_SCHEMA = Path("/usr/share/doc/vmm/examples/pgsql/create_tables.pgsql")  # Debian's vmm package
SYSTEM_PYTHON = "/usr/bin/python3"  # vmm's own interpreter (its #! line)


def source_database(cluster, name: str, owner: str, password: str) -> None:
    """An empty database owned by a login role, as the tool's installer would make it."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {owner}")
        conn.execute(f"CREATE ROLE {owner} LOGIN PASSWORD '{password}'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {owner}')


def drop_source(cluster, name: str, owner: str) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {owner}")


# -- PostfixAdmin ------------------------------------------------------------------------

def copy_tree_keeping_links(source: Path, target: Path, ignore=None) -> None:
    """source copied to target with its symbolic links as links that still reach what they
    reached: a relative link to something outside source (Debian 13's PostfixAdmin has
    lib/smarty/libs -> ../../../php/smarty4) becomes an absolute one, a link inside the tree
    and an absolute link stay as they are. Following the links instead copied whole
    libraries, and a link whose target is missing was silently dropped."""
    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    for directory, dirs, files in os.walk(target):
        for name in dirs + files:
            link = Path(directory) / name
            if not link.is_symlink() or os.path.isabs(os.readlink(link)):
                continue
            reached = Path(os.path.normpath(source / link.parent.relative_to(target) / os.readlink(link)))
            if not reached.is_relative_to(source):
                link.unlink()
                link.symlink_to(reached)


class PostfixAdmin:
    """Debian's PostfixAdmin tree, copied unchanged, with our dbconfig.inc.php and
    config.local.php beside its config.inc.php (which loads both from its own directory:
    the package's copies live in /etc/postfixadmin and are left alone)."""

    def __init__(self, root: Path, port: int, dbname: str, user: str, password: str):
        require_program("php")
        if not (PFA_TREE / "public" / "upgrade.php").is_file():
            raise AssertionError("PostfixAdmin is not installed (Debian: apt-get install postfixadmin)")
        self.tree = root / "postfixadmin"
        copy_tree_keeping_links(PFA_TREE, self.tree,
                                ignore=shutil.ignore_patterns("templates_c", "config.local.php", "config.inc.php"))
        shutil.copy(PFA_TREE / "config.inc.php", self.tree / "config.inc.php")  # through Debian's /etc symlink
        (self.tree / "templates_c").mkdir()
        write_private(self.tree / "dbconfig.inc.php",
                      f"<?php\n$dbuser='{user}';\n$dbpass='{password}';\n$basepath='';\n$dbname='{dbname}';\n"
                      f"$dbserver='127.0.0.1';\n$dbport='{port}';\n$dbtype='pgsql';\n")
        self.set_encrypt("md5crypt")

    def set_encrypt(self, scheme: str) -> None:
        """PostfixAdmin's password scheme is one global setting: $CONF['encrypt']."""
        write_private(self.tree / "config.local.php",
                      "<?php\n$CONF['configured'] = true;\n"
                      "$CONF['database_port'] = $dbport;\n"  # dbconfig's port: config.inc.php leaves it out
                      f"$CONF['encrypt'] = '{scheme}';\n"
                      "$CONF['quota'] = 'YES';\n$CONF['domain_quota'] = 'YES';\n$CONF['transport'] = 'YES';\n"
                      "$CONF['transport_options'] = array('virtual', 'relay', 'smtp:[mx.backup.example]');\n"
                      "$CONF['vacation'] = 'YES';\n$CONF['fetchmail'] = 'YES';\n"
                      "$CONF['emailcheck_resolve_domain'] = 'NO';\n")

    def upgrade(self) -> str:
        r = run(["php", "upgrade.php"], cwd=self.tree / "public")
        assert r.returncode == 0 and "updating to version" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
        return r.stdout

    def cli(self, *args: str) -> str:
        """postfixadmin-cli MODULE TASK ...; fails the test unless PostfixAdmin says it worked."""
        r = run(["bash", str(self.tree / "scripts" / "postfixadmin-cli"), *args])
        out = r.stdout + r.stderr
        assert r.returncode == 0 and "Error" not in out, f"postfixadmin-cli {' '.join(args)}: {out}"
        return out


# -- vmm ---------------------------------------------------------------------------------

# Debian 12's vmm 0.7 uses collections.Callable (gone since Python 3.10): give the name
# back. Debian 13's vmm 0.7 on Python 3.13 also calls ConfigParser.readfp (gone in 3.12;
# read_file is the same) and imports crypt.crypt (the module is gone in 3.13): give it
# libxcrypt's crypt(3) through ctypes, the function the module wrapped. Then point vmm's
# fixed config directory (/etc/vmm) at ours; vmm's own command line runs unchanged
VMM_MAIN = """\
import collections, collections.abc, configparser, sys
collections.Callable = collections.abc.Callable
if not hasattr(configparser.RawConfigParser, "readfp"):
    configparser.RawConfigParser.readfp = configparser.RawConfigParser.read_file
try:
    import crypt
except ModuleNotFoundError:
    import ctypes, types
    libcrypt = ctypes.CDLL("libcrypt.so.1")
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libcrypt.crypt.restype = ctypes.c_char_p
    def _crypt(word, salt):
        made = libcrypt.crypt(word.encode(), salt.encode())
        return made.decode() if made else None
    sys.modules["crypt"] = types.ModuleType("crypt")
    sys.modules["crypt"].crypt = _crypt
import VirtualMailManager.handler
VirtualMailManager.handler.CFG_PATH = sys.argv.pop(1)
from VirtualMailManager.cli.main import run
sys.exit(run(sys.argv))
"""

VMM_CFG = """\
[database]
host = 127.0.0.1
port = {port}
sslmode = prefer
user = {user}
pass = {password}
name = {dbname}
[mailbox]
format = maildir
folders = Drafts:Sent:Trash
root = Maildir
subscribe = true
[domain]
auto_postmaster = false
delete_directory = false
directory_mode = 504
force_deletion = false
smtp = true
pop3 = true
imap = true
sieve = true
quota_bytes = 0
quota_messages = 0
transport = lmtp:unix:private/dovecot-lmtp
[account]
delete_directory = false
directory_mode = 448
disk_usage = false
random_password = false
password_length = 8
[bin]
doveadm = /usr/bin/doveadm
du = /usr/bin/du
postconf = /usr/sbin/postconf
[misc]
base_directory = {base}
crypt_blowfish_rounds = 5
crypt_sha256_rounds = 5000
crypt_sha512_rounds = 5000
dovecot_version = 2.3.19
password_scheme = SHA512-CRYPT
"""


class Vmm:
    def __init__(self, root: Path, port: int, dbname: str, user: str, password: str, base: Path):
        if not Path("/usr/sbin/vmm").is_file() or not VMM_SCHEMA.is_file():
            raise AssertionError("vmm is not installed (Debian: apt-get install vmm)")
        self.root, self.base = root, base
        self.etc = root / "vmm-etc"
        self.etc.mkdir()
        cfg = self.etc / "vmm.cfg"
        cfg.write_text(VMM_CFG.format(port=port, user=user, password=password, dbname=dbname, base=base))
        os.chmod(cfg, 0o640)  # vmm insists
        self.main = root / "vmm-main.py"
        self.main.write_text(VMM_MAIN)
        # vmm asks postconf for Postfix settings: a Postfix configuration of its own
        self.postfix = root / "vmm-postfix"
        self.postfix.mkdir()
        (self.postfix / "main.cf").write_text("")
        (self.postfix / "master.cf").write_text("")
        r = run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", dbname,
                 "-f", str(VMM_SCHEMA)], env={**os.environ, "PGPASSWORD": password})
        # the file's CREATE LANGUAGE plpgsql fails (PostgreSQL has it built in); the rest loads
        assert "ERROR" not in r.stderr.replace('ERROR:  extension "plpgsql" already exists', ""), r.stderr

    def __call__(self, *args: str) -> str:
        r = run([SYSTEM_PYTHON, str(self.main), str(self.etc), *args], cwd="/",
                env={**os.environ, "MAIL_CONFIG": str(self.postfix)})
        assert r.returncode == 0 and "Error" not in r.stderr, f"vmm {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout


# -- Postfix's recipient lookups, replayed through postmap -q -----------------------------

def map_file(path: Path, port: int, user: str, password: str, dbname: str, query: str) -> Path:
    write_private(path, f"hosts = 127.0.0.1:{port}\nuser = {user}\npassword = {password}\ndbname = {dbname}\n"
                        f"query = {query}\n")
    return path


class Missing(Exception):
    """A lookup whose answer is not fetched yet (Lookups.answers() fetches and retries)."""


class Lookups:
    """What Postfix answers for a recipient, given the map files of each main.cf parameter
    (each a list, tried in turn as Postfix does): whether the domain is accepted, the
    final addresses after virtual alias expansion (key user@domain, then @domain; an
    address mapped to itself stays), and for each final address in a hosted domain its
    maildir and transport (or unknown), in a relay domain its transport, else remote.

    Every answer comes from Postfix's own pgsql client, `postmap -q -`, fed all the keys a
    round needs in one process per map file: answers() works out every recipient as far
    as the keys fetched so far allow, collects the keys it lacks, fetches them (in every
    map of the parameter at once), and goes again until nothing is missing."""

    def __init__(self, config_dir: Path, domains: list[Path], relay: list[Path], aliases: list[Path],
                 mailboxes: list[Path], transport: list[Path], maildir_prefix: str = ""):
        self.config_dir = config_dir
        self.domains, self.relay, self.aliases = domains, relay, aliases
        self.mailboxes, self.transport, self.prefix = mailboxes, transport, maildir_prefix
        self.postmap = require_program("/usr/sbin/postmap")
        self.known: dict[Path, dict[str, str | None]] = {}  # map file -> key -> answer (None: not found)
        self.wanted: dict[Path, set[str]] = {}
        self.processes = 0  # postmap runs, for the curious

    def fetch(self) -> None:
        for m, keys in self.wanted.items():
            keys = sorted(keys - self.known.setdefault(m, {}).keys())
            if not keys:
                continue
            r = run([self.postmap, "-c", str(self.config_dir), "-q", "-", f"pgsql:{m}"], input="\n".join(keys) + "\n")
            self.processes += 1
            assert r.returncode in (0, 1) and "warning" not in r.stderr and "fatal" not in r.stderr, (m, r.stderr)
            found = dict(line.split("\t", 1) for line in r.stdout.splitlines())
            self.known[m].update({k: found.get(k) for k in keys})
        self.wanted = {}

    def first(self, maps: list[Path], key: str) -> str | None:
        for m in maps:
            if key not in self.known.get(m, {}):
                for each in maps:  # the whole parameter's maps in this round: the next ones are likely asked
                    self.wanted.setdefault(each, set()).add(key)
                raise Missing(key)
            if self.known[m][key] is not None:
                return self.known[m][key]
        return None

    def answers(self, recipients: list[str]) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        while len(out) < len(recipients):
            for recipient in recipients:
                if recipient not in out:
                    try:
                        out[recipient] = self.answer(recipient)
                    except Missing:
                        pass
            if len(out) < len(recipients):
                assert self.wanted, "no answer and nothing to fetch"
                self.fetch()
        return out

    def domain_class(self, domain: str) -> str:
        if self.first(self.domains, domain):
            return "virtual"
        return "relay" if self.first(self.relay, domain) else "other"

    def expand(self, address: str, depth: int = 0) -> list[str]:
        found = self.first(self.aliases, address)
        if found is None and not address.startswith("@"):
            found = self.first(self.aliases, "@" + address.rpartition("@")[2])
        if found is None or depth > 5:
            return [address]
        out: list[str] = []
        for dest in sorted({d.strip() for line in found.splitlines() for d in line.split(",") if d.strip()}):
            out += [dest] if dest == address else self.expand(dest, depth + 1)
        return out

    def transport_of(self, address: str) -> str | None:
        t = self.first(self.transport, address) or self.first(self.transport, address.rpartition("@")[2])
        return None if t is None else t if ":" in t else t + ":"  # `virtual` is `virtual:` (transport(5))

    def answer(self, recipient: str) -> tuple:
        cls = self.domain_class(recipient.rpartition("@")[2])
        if cls == "other":
            return ("relay access denied",)
        finals = []
        for final in sorted(set(self.expand(recipient))):
            fcls = self.domain_class(final.rpartition("@")[2])
            if fcls == "virtual":
                maildir = self.first(self.mailboxes, final)
                # where the mail ends up: a maildir, whichever name of the domain led there
                # a mailbox domain's transport "virtual:" is what virtual_transport does when
                # the map answers nothing (mailbook's transport.cf leaves it unanswered)
                transport = self.transport_of(final)
                finals.append(("unknown", final) if maildir is None else
                              ("maildir", self.prefix + maildir, None if transport == "virtual:" else transport))
            elif fcls == "relay":
                finals.append((final, "relay", self.transport_of(final)))
            else:
                finals.append((final, "remote"))
        return (cls, tuple(finals))


def postfix_config(root: Path) -> Path:
    """postmap -c DIR: a main.cf of its own (postmap reads it for the pgsql map type)."""
    d = root / "postmap-etc"
    d.mkdir(exist_ok=True)
    (d / "main.cf").write_text("compatibility_level = 3.6\n")
    (d / "master.cf").write_text("")
    return d


def mailbook_lookups(config_dir: Path, maps: Path, prefix: str = "") -> Lookups:
    return Lookups(config_dir, [maps / "domains.cf"], [maps / "relay-domains.cf"], [maps / "virtual.cf"],
                   [maps / "mailboxes.cf"], [maps / "transport.cf"], prefix)


def deliver_file(maildir: Path, name: str, subject: str, uid: int, gid: int) -> None:
    """A message placed in a maildir's new/ as the old server's delivery left it."""
    new = maildir / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / name).write_text(f"From: someone@elsewhere.example\r\nSubject: {subject}\r\n\r\nbefore the move\r\n")
    for p in (maildir, *(maildir.rglob("*"))):
        os.chown(p, uid, gid)


def imap_subjects(port: int, user: str, password: str) -> list[str]:
    import imaplib
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(user, password)
        imap.select("INBOX")
        _, data = imap.fetch("1:*", "(BODY[HEADER.FIELDS (SUBJECT)])")
        return [part[1].decode().strip().removeprefix("Subject: ") for part in data if isinstance(part, tuple)]
    finally:
        imap.logout()
