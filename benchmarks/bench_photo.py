"""Speed of `photo analyze` per photo, after the models are loaded (target: < 1 s on 2 cores).

Run with `make bench`. Makes a 12-megapixel and a 1-megapixel JPEG by upscaling a
bundled test photo, loads the MediaPipe models once, then times analyze_photo
(reading the file included, writing outputs excluded) and, separately, save().
Prints figures; asserts nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "data" / "photos" / "face_recognition_obama.jpg"  # 910 x 1137
SIZES = {"12 MP": (3100, 3873), "1 MP": (895, 1118)}
REPEATS = 5


def main() -> None:
    from hemiface.photo import analyze_photo
    from hemiface._face_mesh import load_models

    t0 = time.perf_counter()
    load_models()
    print(f"model load: {time.perf_counter() - t0:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (w, h) in SIZES.items():
            path = Path(tmp) / f"photo_{label.replace(' ', '')}.jpg"
            Image.open(SOURCE).convert("RGB").resize((w, h), Image.LANCZOS).save(path, quality=92)
            analyze_photo(path, affected="auto")  # warm-up (first-call allocations)
            times, result = [], None
            for _ in range(REPEATS):
                t = time.perf_counter()
                result = analyze_photo(path, affected="auto")
                times.append(time.perf_counter() - t)
            t = time.perf_counter()
            result.save(Path(tmp) / f"out_{label.replace(' ', '')}", overwrite=True)
            save_s = time.perf_counter() - t
            print(
                f"{label:6s} {w}x{h} ({path.stat().st_size / 1e6:.1f} MB JPEG): analyze median "
                f"{statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f}, n={REPEATS}); "
                f"save {save_s:.3f} s; symmetry ratio {result.symmetry_ratio_percent:.2f} % "
                f"(pose-compensated {result.symmetry_ratio_pose_compensated_percent:.2f} %)"
            )


if __name__ == "__main__":
    main()
