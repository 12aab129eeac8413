"""Import open3d on machines without the system libusb.

open3d's wheel links against ``libusb-1.0.so.0``, which a fresh Debian machine
lacks. The ``libusb-package`` wheel ships the library; loading it globally
before the import satisfies the link (harmless where the system has one).
"""

from __future__ import annotations

import ctypes
import functools


@functools.lru_cache(maxsize=None)
def open3d():
    try:
        import libusb_package

        ctypes.CDLL(str(libusb_package.get_library_path()), mode=ctypes.RTLD_GLOBAL)
    except (ImportError, OSError, TypeError):  # the system library may still be there
        pass
    import open3d as o3d

    return o3d
