"""Which flank code made a kept answer (a validated flank.yml, an up-to-date decision): its
version and the size and mtime of the modules that computed it, so an upgrade — or an edit of
those modules in a development checkout — never reuses what older code decided."""

from __future__ import annotations

import os
from types import ModuleType

from flank_ops import __version__


def code_identity(*modules: ModuleType) -> list[str]:
    identity = [__version__]
    for module in modules:
        st = os.stat(str(module.__file__))
        identity.append(f"{st.st_size}:{st.st_mtime_ns}")
    return identity
