"""Age, gender and expression from the shipped nets and mesh geometry."""
from __future__ import annotations

import numpy as np

from conftest import centre_face, lfw_image
from edge.analysis import expression as expr

MEN = ["Aaron_Sorkin", "Bill_Kollar", "Soenarno", "Takaloo", "Tom_Hanks", "Alan_Jackson"]
WOMEN = ["Laurel_Clark", "Tamara_Mowry", "Camryn_Manheim", "Tamika_Catchings", "Lisa_Girman", "Alicia_Keys"]


def attrs(analyser, name):
    return centre_face(analyser, lfw_image(name, 1), stages=("landmarks", "attributes"))


def test_gender_of_known_people(analyser):
    right = sum(attrs(analyser, n).gender == "male" for n in MEN)
    right += sum(attrs(analyser, n).gender == "female" for n in WOMEN)
    assert right >= 11  # of 12
    for n in MEN + WOMEN:
        f = attrs(analyser, n)
        assert 0.5 <= f.gender_probability <= 1.0


def test_age_is_an_adult_age_for_adults(analyser):
    ages = [attrs(analyser, n).age for n in MEN + WOMEN]
    assert all(15 <= a <= 80 for a in ages), ages


def test_expression_and_faceshape_are_well_formed(analyser):
    for n in MEN + WOMEN:
        f = attrs(analyser, n)
        assert f.expression in (0, 1, 2) and 0 <= f.expression_probability <= 1
        shapes = f.faceshape
        assert [s["type"] for s in shapes] == list(expr.SHAPES)
        assert abs(sum(s["probability"] for s in shapes) - 1.0) < 1e-6


def test_smile_reads_higher_than_a_neutral_mouth(analyser):
    # Raising the mouth corners of a real mesh (a smile's geometry) raises the smile
    # measure and flips a neutral reading to smile.
    f = attrs(analyser, "Aaron_Sorkin")
    mesh = f.mesh.copy()
    lift0, _ = expr.mouth_measures(mesh)
    iod = np.linalg.norm(mesh[263, :2] - mesh[33, :2])
    mesh[[61, 291], 1] -= 0.12 * iod
    lift1, _ = expr.mouth_measures(mesh)
    assert lift1 > lift0 + 0.1
    assert expr.expression(mesh)[0] in (1, 2)
