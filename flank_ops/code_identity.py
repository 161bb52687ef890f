"""Which flank code made a kept answer (a validated flank.yml, an up-to-date decision): its
version and the size and mtime of the modules that computed it, so an upgrade — or an edit of
those modules in a development checkout — never reuses what older code decided."""

from __future__ import annotations

import os
from types import ModuleType

from flank_ops import __version__


def code_identity(*modules: ModuleType, folders: tuple[ModuleType, ...] = ()) -> list[str]:
    """`modules` by their own file; `folders`: every module beside each of these (a package's rules)."""
    identity = [__version__]
    for module in modules:
        st = os.stat(str(module.__file__))
        identity.append(f"{st.st_size}:{st.st_mtime_ns}")
    for beside in folders:
        with os.scandir(os.path.dirname(str(beside.__file__))) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.endswith(".py"):
                    st = entry.stat()
                    identity.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return identity
