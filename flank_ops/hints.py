"""The flank commands flank prints as hints, written so that they work where they are printed.

On the VM a hint reads `flank logs demo nightly 5 model`. Run through `flank remote` from a
laptop clone, the same hint must read `flank remote logs nightly 5 model`: the laptop has no
project `demo` (typed there, the VM's command would offer to create one). `flank remote` says
which git remote it came through in FLANK_REMOTE (remote/ssh.py puts it in the VM-side command);
main.py takes it out of the environment at once, so runs and their tasks never inherit it.

And the other way round: `flank status demo` typed in a laptop clone whose project lives on a VM
(a `flank` git remote) is pointed at `flank remote status` (`laptop_hint`), not at `flank init`.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

REMOTE_ENV = "FLANK_REMOTE"
ADDRESS_ENV = "FLANK_SSH_ADDRESS"  # host[:port] ([v6]:port) of the laptop's git remote (remote/address.py)
DEFAULT_REMOTE = "flank"  # the git remote `flank init` tells the user to add
# The verbs `flank remote` forwards (commands/remote.py); a hint of another verb stays a VM command.
REMOTE_VERBS = frozenset({"status", "logs", "plan", "report", "run", "cancel", "secrets", "deploy", "backfill"})
# The VM-wide verbs (no project) `flank remote` forwards, with the actions it forwards of each.
REMOTE_VM_VERBS = {"doctor": frozenset({""}), "cost": frozenset({"plan", "prices"})}

_via_remote: str | None = None
_via_address: str | None = None


def take_remote_from_env() -> None:
    """Remember (and remove from the environment) the git remote `flank remote` came through."""
    global _via_remote, _via_address
    _via_remote = os.environ.pop(REMOTE_ENV, None) or None
    _via_address = os.environ.pop(ADDRESS_ENV, None) or None


def host_and_port(address: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]` or `[v6]:port` (FLANK_SSH_ADDRESS, remote/ssh.py host_port) -> (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, int(port) if port.isdigit() else None
    return address, None  # a bare IPv6 address, or a name


def via_address() -> str | None:
    """host[:port] of the git remote `flank remote` came through (None: not through it)."""
    return _via_address


def via_remote() -> str | None:
    """The laptop's git remote name when this flank runs for `flank remote`, else None."""
    return _via_remote


def flank_command(verb: str, project: str | None, *words: str, on_page: bool = False) -> str:
    """`flank VERB PROJECT WORDS…` as the user can type it where it is printed: on the VM, on the
    laptop through `flank remote` (no project: the clone's remote names it), or in a working copy
    (`project` None: `--local`). `verb` may be two words (`secrets set`). `on_page`: for a status
    page, which is the same whoever draws it: the VM's command (or the working copy's)."""
    verbs = verb.split()
    remote = None if on_page else via_remote()
    if project is None:
        argv = ["flank", *verbs, "--local", *words]
    elif remote is not None and verbs[0] in REMOTE_VERBS:
        argv = ["flank", "remote", *verbs, *words, *_remote_option(remote)]
    else:
        argv = ["flank", *verbs, project, *words]
    return shlex.join(argv)


def flank_vm_command(verb: str, *words: str) -> str:
    """`flank VERB WORDS…` of a VM-wide verb (no project: `cost prices`, `doctor`) as typed where it
    is printed: through `flank remote` the laptop's `flank remote VERB WORDS…` when it forwards it,
    else the VM's command saying that it is one (`cost apply` changes AWS: typed on the VM only)."""
    verbs = verb.split()
    remote = via_remote()
    if remote is None:
        return shlex.join(["flank", *verbs, *words])
    action = verbs[1] if len(verbs) > 1 else ""
    if action in REMOTE_VM_VERBS.get(verbs[0], ()):
        return shlex.join(["flank", "remote", *verbs, *words, *_remote_option(remote)])
    return f"{shlex.join(['flank', *verbs, *words])} on the VM"


def _remote_option(remote: str) -> list[str]:
    return ["--remote", remote] if remote != DEFAULT_REMOTE else []


def laptop_hint(argv: list[str], project: str) -> str | None:
    """For `flank VERB [PROJECT] …` typed in a clone whose git remote `flank` points at `project` on
    its VM: the `flank remote` command that does it there; None when there is none. The project
    typed is dropped (the remote names it); a word that is not it is kept (`flank status nightly`
    typed as if it were a `flank remote` command)."""
    if not argv or argv[0] not in REMOTE_VERBS:
        return None
    verb, rest = argv[0], argv[1:]
    skip = 1 if verb in ("secrets", "report") else 0  # `secrets ACTION PROJECT`, `report WHAT PROJECT`
    names = [i for i, word in enumerate(rest) if not word.startswith("-")]
    if len(names) > skip and rest[names[skip]] == project:
        rest = rest[: names[skip]] + rest[names[skip] + 1 :]
    return f"this clone's project lives on the VM of git remote {DEFAULT_REMOTE!r}: " + shlex.join(
        ["flank", "remote", verb, *rest]
    )


# Where `flank --help` sends readers: $FLANK_DOCS_URL, else the docs/ of the checkout flank runs from,
# else the published docs path of the repository.
DOCS_URL = "https://github.com/flank-ops/flank_ops/blob/main/docs/"


def docs_url(page: str, anchor: str = "") -> str:
    """The address of a docs page (and heading) for a reader on this machine."""
    base = os.environ.get("FLANK_DOCS_URL", "")
    if not base:
        local = Path(__file__).resolve().parents[1] / "docs"
        base = local.as_uri() if (local / "index.md").is_file() else DOCS_URL
    return f"{base.rstrip('/')}/{page}{'#' + anchor if anchor else ''}"


def docs_anchor(heading: str) -> str:
    """The anchor the docs site (mkdocs' toc) makes of a heading: `[notify.email]` -> `notifyemail`."""
    import re

    slug = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", slug)


def settings_docs(table: str) -> str:
    """The flank.toml reference's section of `table` (`[s3]`, `[executors.slurm]`): where a hint sends a reader."""
    return docs_url("reference/flank-toml.md", docs_anchor(table))
