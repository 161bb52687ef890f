"""Real thumbnails of kept images (issue 19): a run page showed each plot at full size (up to 805 KB
each, ~3 MB per page on a phone). A raster image bigger than SMALL_ENOUGH gets a WebP thumbnail at most
MAX_PX on its longer side, made once beside its published copy in the site (layout.url_thumbnail) and
kept while that copy is unchanged; the page shows the thumbnail and links the original.

Pillow is imported only when a thumbnail is made. An image Pillow cannot read (or a decompression
bomb) gets no thumbnail: the page then shows it as before, or links it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

MAX_PX = 480  # 1.5x the 320-px box of img.thumb: sharp enough on a dense screen, a third fewer bytes than 640
SMALL_ENOUGH = 96 * 1024  # an image this small is its own thumbnail
RASTER_TYPES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
WEBP_QUALITY = 75
WEBP_METHOD = 0  # the fastest encoder: 4 took 5x as long for 10% fewer bytes (measured on a 2400x1800 plot)


def thumbnail(image: Path, thumb: Path, twins: Iterable[tuple[Path, Path]] = ()) -> bool:
    """Make `thumb` from the published `image` unless it is there already and newer; True when there is one.

    `twins` are (image, thumbnail) pairs of other pages (the earlier runs' copies of the same file): when
    one is the very same file (an unchanged output is a hard link to the earlier run's copy), its
    thumbnail is linked instead of made again, so an up-to-date run of 66 plots costs no decoding."""
    if os.path.splitext(image.name)[1].lower() not in RASTER_TYPES:
        return False
    try:
        st = image.stat()
        if st.st_size <= SMALL_ENOUGH:
            return False
        try:
            if thumb.stat().st_mtime_ns >= st.st_mtime_ns:
                return True  # made already
        except FileNotFoundError:
            pass
        for other, other_thumb in twins:
            if _same_file(other, st) and _link(other_thumb, thumb):
                return True
        return _make(image, thumb)
    except OSError:
        return False


def _same_file(path: Path, st: os.stat_result) -> bool:
    try:
        return os.path.samestat(path.stat(), st)
    except OSError:
        return False


def _link(source: Path, thumb: Path) -> bool:
    tmp = thumb.with_name(f".{thumb.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, thumb)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False


def _make(image: Path, thumb: Path) -> bool:
    from PIL import Image

    from flank_ops.fileio import PUBLIC_FILE_MODE

    tmp = thumb.with_name(f".{thumb.name}.{os.getpid()}.tmp")
    try:
        with Image.open(image) as opened:
            opened.draft("RGB", (MAX_PX, MAX_PX))  # JPEG: decode at a reduced size, much faster
            opened.thumbnail((MAX_PX, MAX_PX))
            small: Image.Image = opened
            if small.mode not in ("RGB", "RGBA"):
                small = small.convert("RGBA" if "A" in small.getbands() or "transparency" in small.info else "RGB")
            small.save(tmp, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
        os.chmod(tmp, PUBLIC_FILE_MODE)
        os.replace(tmp, thumb)
        return True
    except Exception:  # noqa: BLE001 - an unreadable or hostile image gets no thumbnail, never a failed build
        tmp.unlink(missing_ok=True)
        return False
