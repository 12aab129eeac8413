"""The JPEG bytes of the photographs a page showed last, kept for the next request (both photo routes use it)."""

from __future__ import annotations

import io
import threading
from typing import Callable


class JpegCache:
    """At most ``size`` encoded photos by key (a photo's SHA-256), the oldest dropped first; safe across threads.

    ``make`` runs outside the lock, so a slow encode holds up no other request; two requests for
    the same new photo may both encode it, and the second stores the same bytes.
    """

    def __init__(self, size: int):
        self.size = size
        self._items: dict[str, bytes] = {}  # insertion order: oldest first
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            data = self._items.get(key)
        if data is None:
            data = make()
            with self._lock:
                self._items[key] = data
                while len(self._items) > self.size:
                    self._items.pop(next(iter(self._items)))
        return data


def jpeg_bytes(image) -> bytes:
    """A PIL image as a fresh JPEG file: no camera metadata, no name."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()
