"""Labels of the report variants that the docs print."""

from __future__ import annotations

from recbole_faerec.report.tables import variant_label


def test_variant_labels_of_the_text_prior():
    assert variant_label("SASRec", "base") == "SASRec"
    assert variant_label("SASRec", "base+prior") == "SASRec + text prior"
    assert variant_label("SASRec", "faerec") == "FAERec"
    assert variant_label("SASRec", "faerec+prior") == "FAERec + text prior"
    assert variant_label("SASRec", "w/o ILA") == "FAERec w/o ILA"
