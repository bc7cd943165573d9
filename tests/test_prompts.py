"""Item prompts: template rendering, missing fields, built-in and custom templates, bad input."""

from __future__ import annotations

import pytest
from conftest import AMAZON_HEADER, write_item

from recbole_faerec.embeddings.prompts import (
    PromptTemplate,
    build_prompts,
    default_domain,
    resolve_template,
)


def render(values, template=None, dataset="amazon-beauty", columns=None, domain=None):
    tpl, _ = resolve_template(template, dataset, columns or list(values), domain)
    return tpl.render(values)


FULL = {
    "title": "Rose Lip Balm",
    "brand": "Acme",
    "price": "5.5",
    "categories": "Beauty, Makeup, Lips",
    "description": "A soft balm.",
}


def test_amazon_template_full_item():
    assert render(FULL) == (
        "The beauty item has the following attributes: name is Rose Lip Balm; brand is Acme; "
        "price is 5.5. The item has following features: Beauty, Makeup, Lips. "
        "The item has following descriptions: A soft balm."
    )


@pytest.mark.parametrize(
    "missing, expected",
    [
        (
            ["brand"],
            "The beauty item has the following attributes: name is Rose Lip Balm; price is 5.5. "
            "The item has following features: Beauty, Makeup, Lips. "
            "The item has following descriptions: A soft balm.",
        ),
        (
            ["title"],
            "The beauty item has the following attributes: brand is Acme; price is 5.5. "
            "The item has following features: Beauty, Makeup, Lips. "
            "The item has following descriptions: A soft balm.",
        ),
        (
            ["title", "brand", "price"],
            "The item has following features: Beauty, Makeup, Lips. "
            "The item has following descriptions: A soft balm.",
        ),
        (
            ["categories", "description"],
            "The beauty item has the following attributes: name is Rose Lip Balm; brand is Acme; "
            "price is 5.5.",
        ),
        (
            ["title", "brand", "price", "categories"],
            "The item has following descriptions: A soft balm.",
        ),
    ],
)
def test_amazon_template_drops_missing_clauses_and_sentences(missing, expected):
    values = {k: ("" if k in missing else v) for k, v in FULL.items()}
    assert render(values, columns=list(FULL)) == expected
    assert "unknown" not in expected


def test_absent_column_is_missing():
    values = {"title": "Gel", "categories": "Hair Care"}
    assert render(values) == (
        "The beauty item has the following attributes: name is Gel. "
        "The item has following features: Hair Care."
    )


def test_yelp_template_is_picked_by_city_column_and_by_name():
    values = {"title": "Joe's Pizza", "categories": "Pizza, Restaurants", "city": "Phoenix"}
    expected = (
        "The business has the following attributes: name is Joe's Pizza; city is Phoenix. "
        "The business has following categories: Pizza, Restaurants."
    )
    assert render(values, dataset="anything") == expected
    assert render({"title": "Joe's Pizza", "categories": "Pizza"}, dataset="yelp2018") == (
        "The business has the following attributes: name is Joe's Pizza. "
        "The business has following categories: Pizza."
    )
    assert render({**values, "city": ""}, template="yelp").startswith(
        "The business has the following attributes: name is Joe's Pizza. "
    )


def test_custom_template_string_domain_and_escapes():
    tpl = PromptTemplate(r"\[{domain}\] [{title}][, by {brand}][ costs \{{price}\}]", "toys")
    assert (
        tpl.render({"title": "Ball", "brand": "B", "price": "3"}) == "[toys] Ball, by B costs {3}"
    )
    assert tpl.render({"title": "", "brand": "B", "price": ""}) == "[toys] by B"
    assert tpl.fields == ["domain", "title", "brand", "price"]


def test_nested_segment_dropped_when_all_children_dropped():
    tpl = PromptTemplate("[Intro {domain}: [a={a}][; b={b}].] End.", "d")
    assert tpl.render({"a": "", "b": ""}) == "End."
    assert tpl.render({"a": "", "b": "2"}) == "Intro d: b=2. End."


def test_template_from_yaml_file(tmp_path):
    file = tmp_path / "tpl.yaml"
    file.write_text(
        'template:\n  - "[A {domain} thing: [{title}].]"\n  - "[Brand: [{brand}].]"\n'
        "domain: gadget\n",
        encoding="utf-8",
    )
    assert (
        render({"title": "X", "brand": "Y"}, template=str(file)) == "A gadget thing: X. Brand: Y."
    )
    assert render({"title": "X", "brand": "Y"}, template=str(file), domain="car") == (
        "A car thing: X. Brand: Y."
    )


def test_template_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        resolve_template(str(tmp_path / "nope.yaml"), "d", [], None)
    empty = tmp_path / "empty.yaml"
    empty.write_text("domain: x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no 'template' key"):
        resolve_template(str(empty), "d", [], None)
    for bad in ["[unclosed {title}", "closed]", "{not a field}", "{title", "a}"]:
        with pytest.raises(ValueError, match="prompt template"):
            PromptTemplate(bad)


@pytest.mark.parametrize(
    "dataset, domain",
    [
        ("amazon-beauty", "beauty"),
        ("amazon-sports-outdoors", "sports outdoors"),
        ("Amazon_Toys_5core", "toys"),
        ("amazon-beauty-sample", "beauty sample"),
        ("yelp2018", "yelp2018"),
    ],
)
def test_default_domain(dataset, domain):
    assert default_domain(dataset) == domain


def test_build_prompts_from_item_file(tmp_path):
    path = write_item(
        tmp_path / "ds" / "ds.item",
        AMAZON_HEADER[:5],
        [["i1", "Lip Balm", "Acme", "", "Beauty, Lips"], ["i2", "Shampoo", "", "9.99", ""]],
    )
    tokens, prompts = build_prompts(path, "amazon-beauty", domain="")
    assert tokens == ["i1", "i2"]
    assert prompts == [
        "The item has the following attributes: name is Lip Balm; brand is Acme. "
        "The item has following features: Beauty, Lips.",
        "The item has the following attributes: name is Shampoo; price is 9.99.",
    ]


def test_items_without_text_are_a_clear_error(tmp_path):
    rows = [["ok", "Name", "", "", ""]] + [[f"e{i}", "", "", "", ""] for i in range(7)]
    path = write_item(tmp_path / "ds.item", AMAZON_HEADER[:5], rows)
    with pytest.raises(ValueError) as info:
        build_prompts(path, "amazon-beauty")
    message = str(info.value)
    assert str(path) in message and "7 item(s)" in message
    assert "'e0'" in message and "'e4'" in message and "'e5'" not in message
    assert "fix:" in message


def test_template_using_no_column_and_duplicates_are_errors(tmp_path):
    path = write_item(tmp_path / "a.item", ["item_id:token", "city:token"], [["1", "X"]])
    with pytest.raises(ValueError, match="uses none of the file's columns"):
        build_prompts(path, "amazon-beauty", template="amazon")
    dup = write_item(tmp_path / "b.item", AMAZON_HEADER[:2], [["1", "A"], ["1", "B"]])
    with pytest.raises(ValueError, match="more than one row"):
        build_prompts(dup, "amazon-beauty")
    no_id = write_item(tmp_path / "c.item", ["title:token_seq"], [["A"]])
    with pytest.raises(ValueError, match="no 'item_id' column"):
        build_prompts(no_id, "amazon-beauty")


def test_an_item_file_without_items_is_a_clear_error(tmp_path):
    path = write_item(tmp_path / "empty.item", AMAZON_HEADER[:5], [])
    with pytest.raises(ValueError, match=r"empty\.item: the item file has a header but no items"):
        build_prompts(path, "amazon-beauty")
