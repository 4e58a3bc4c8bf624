"""Kubernetes' name and label rules (apimachinery's validation), in their one home."""

from components.manifests.names import dns1123_label_problem, label_value_problem


def test_a_trailing_newline_is_not_part_of_a_valid_name_or_value() -> None:
    assert label_value_problem("abc") is None and label_value_problem("") is None
    assert label_value_problem("abc\n") is not None
    assert dns1123_label_problem("chat\n") is not None
