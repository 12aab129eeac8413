"""The mirror-and-register plane fit itself: known planes, and the accelerated iteration against the plain one.

Truth: the bundled template is exactly mirror-symmetric about x = 0, so after a
known rigid motion its symmetry plane is known exactly. On a real face (natural
asymmetry, no known plane) the Anderson-accelerated iteration must reach the
plain fixed-point iteration's plane to within the stopping tolerance (the steps each takes
are logged; the speed is benchmarked, not tested).
"""

import logging

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hemiface import datasets
from hemiface.scan._distance import SurfaceQuery
from hemiface.scan._symmetry import fit_symmetry_plane, sample_surface

log = logging.getLogger(__name__)


def _samples(vertices, faces):
    centre = vertices[:, :2].mean(axis=0)
    r = np.linalg.norm((vertices[:, :2] - centre) / [55.0, 70.0], axis=1)
    inside = (r < 1.0)[faces].all(axis=1)
    query = SurfaceQuery(vertices, faces)
    points, normals = sample_surface(vertices, faces, inside, query=query)
    return query, points, normals


def _angle_deg(a, b):
    return float(np.degrees(np.arccos(np.clip(abs(a @ b), -1, 1))))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_known_plane_is_found_after_a_known_motion(seed):
    scan = datasets.load_sample("template")
    rng = np.random.default_rng(seed)
    rot = Rotation.from_euler("xyz", rng.uniform(-4, 4, 3), degrees=True).as_matrix()
    trans = rng.uniform(-3, 3, 3)
    v = scan.vertices_mm @ rot.T + trans
    true_normal = rot @ np.array([1.0, 0.0, 0.0])
    true_offset = float(true_normal @ trans)  # the plane x = 0 moved
    query, points, normals = _samples(v, scan.faces)
    for accelerate in (False, True):
        plane = fit_symmetry_plane(query, points, normals, accelerate=accelerate)
        angle = _angle_deg(plane.normal, true_normal)
        log.info("template, seed %d, accelerate=%s: %d steps, plane off by %.5f deg and %.4f mm",
                 seed, accelerate, plane.iterations, angle, plane.offset_mm - true_offset)
        assert plane.converged
        assert angle < 0.01
        assert abs(plane.offset_mm - true_offset) < 0.01


@pytest.mark.parametrize("name", ["demoface", "james"])
def test_the_accelerated_fit_reaches_the_plain_iterations_plane(name):
    scan = datasets.load_sample(name)
    query, points, normals = _samples(scan.vertices_mm - scan.vertices_mm.mean(axis=0), scan.faces)
    plain = fit_symmetry_plane(query, points, normals, accelerate=False)
    fast = fit_symmetry_plane(query, points, normals, accelerate=True)
    # A refit from the plain plane without a 40 mm block of one cheek, as the jackknife does (no annealing).
    centre = np.median(points, axis=0)
    block = (np.abs(points[:, 0] - centre[0] - 35) < 20) & (np.abs(points[:, 1] - centre[1] + 10) < 20)
    keep = ~block
    kw = dict(initial_normal=plain.normal, initial_offset_mm=plain.offset_mm, initial_scale_mm=1.5)
    plain_sub = fit_symmetry_plane(query, points[keep], normals[keep], accelerate=False, **kw)
    fast_sub = fit_symmetry_plane(query, points[keep], normals[keep], accelerate=True, **kw)
    for what, a, b in (("full fit", plain, fast), ("refit without a cheek block", plain_sub, fast_sub)):
        log.info("%s, %s: plain %d steps, accelerated %d; planes %.5f deg and %.4f mm apart", name, what,
                 a.iterations, b.iterations, _angle_deg(a.normal, b.normal), b.offset_mm - a.offset_mm)
        assert a.converged and b.converged
        # The plain iteration stops within about 2e-5 rad / (1 - 0.65) of its fixed point: 0.004 deg.
        assert _angle_deg(a.normal, b.normal) < 0.008
        assert abs(a.offset_mm - b.offset_mm) < 0.01
