"""Loading scans: formats, units and refusals."""

import numpy as np
import pytest
import trimesh

from hemiface import datasets
from hemiface._errors import HemifaceError, InputFileError, UnitsError
from hemiface.scan import load_scan, scan_from_arrays


@pytest.fixture(scope="module")
def template():
    return datasets.load_sample("template")


@pytest.mark.parametrize("suffix", [".ply", ".stl", ".obj", ".off", ".glb"])
def test_formats_round_trip(tmp_path, template, suffix):
    path = tmp_path / f"face{suffix}"
    trimesh.Trimesh(template.vertices_mm, template.faces, process=False).export(path)
    loaded = load_scan(path)
    assert len(loaded.faces) == len(template.faces)
    assert np.allclose(np.sort(loaded.vertices_mm, axis=0), np.sort(template.vertices_mm, axis=0), atol=1e-4)
    assert len(loaded.sha256) == 64


def test_textured_obj_with_seams_is_merged():
    scan = datasets.load_sample("james")
    assert scan.has_texture
    # Texture seams split vertices in the file; the loaded surface has no seam borders.
    assert len(scan.vertices_mm) <= 6393


@pytest.mark.parametrize("units,factor", [("cm", 0.1), ("m", 0.001)])
def test_units_convert_to_mm(tmp_path, template, units, factor):
    path = tmp_path / "face.ply"
    trimesh.Trimesh(template.vertices_mm * factor, template.faces, process=False).export(path)
    loaded = load_scan(path, units=units)
    assert np.allclose(np.ptp(loaded.vertices_mm, axis=0), np.ptp(template.vertices_mm, axis=0), rtol=1e-5)


@pytest.mark.parametrize("factor,looks_like", [(0.001, "metres: pass --units m"), (0.1, "centimetres: pass --units cm")])
def test_implausible_size_names_the_likely_units(tmp_path, template, factor, looks_like):
    path = tmp_path / "face.ply"
    trimesh.Trimesh(template.vertices_mm * factor, template.faces, process=False).export(path)
    with pytest.raises(UnitsError, match=looks_like) as info:
        load_scan(path)
    assert "face.ply" in str(info.value)


def test_too_large_in_stated_units(tmp_path, template):
    path = tmp_path / "face.ply"
    trimesh.Trimesh(template.vertices_mm, template.faces, process=False).export(path)
    with pytest.raises(UnitsError, match="millimetres: pass --units mm"):
        load_scan(path, units="m")


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        load_scan(tmp_path / "absent.ply")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.stl"
    path.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        load_scan(path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1000\nproperty float x\nend_header\n\x00\x01")
    with pytest.raises(InputFileError, match="corrupt.ply"):
        load_scan(path)


def test_text_that_is_not_a_mesh(tmp_path):
    path = tmp_path / "notes.obj"
    path.write_text("this is a clinic letter, not a mesh\n")
    with pytest.raises(InputFileError, match="notes.obj"):
        load_scan(path)


def test_point_cloud_only(tmp_path, template):
    path = tmp_path / "cloud.ply"
    trimesh.PointCloud(template.vertices_mm).export(path)
    with pytest.raises(InputFileError, match="point cloud"):
        load_scan(path)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "face.xyz"
    path.write_text("1 2 3\n")
    with pytest.raises(InputFileError, match="unsupported format"):
        load_scan(path)


def test_non_finite_vertices():
    v = np.array([[0, 0, 0], [100, 0, 0], [0, np.nan, 0]], float)
    with pytest.raises(InputFileError, match="non-finite"):
        scan_from_arrays(v, [[0, 1, 2]])


def test_errors_are_hemiface_errors_and_builtins():
    assert issubclass(InputFileError, HemifaceError) and issubclass(InputFileError, ValueError)


def test_source_is_never_modified(tmp_path, template):
    path = tmp_path / "face.ply"
    trimesh.Trimesh(template.vertices_mm, template.faces, process=False).export(path)
    before = path.read_bytes()
    from hemiface.scan import analyze_scan

    analyze_scan(path).save(tmp_path / "out")
    assert path.read_bytes() == before


def test_absurdly_large_files_are_refused_before_reading(tmp_path, template, monkeypatch):
    import hemiface.scan._io as io

    path = tmp_path / "face.ply"
    trimesh.Trimesh(template.vertices_mm, template.faces, process=False).export(path)
    monkeypatch.setattr(io, "MAX_FILE_BYTES", 1000)
    with pytest.raises(InputFileError, match="larger than"):
        load_scan(path)
    monkeypatch.setattr(io, "MAX_FILE_BYTES", 2 * 1024**3)
    monkeypatch.setattr(io, "MAX_VERTICES", 1000)
    with pytest.raises(InputFileError, match="more than the 1,000 limit"):
        load_scan(path)
