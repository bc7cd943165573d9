"""dataset_prep.amazon: formats, cleaning, filters, errors and the shared Beauty figures."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from dataset_prep import amazon
from dataset_prep.common import PrepError, clean_text, parse_price, parse_rank

SHARED_BEAUTY = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-beauty-5core"


def write_lines(path: Path, lines: list[str], compress: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def read_atomic(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)


def quiet(_: str) -> None:
    return None


def test_shared_beauty_defaults(tmp_path: Path) -> None:
    if not (SHARED_BEAUTY / "reviews_Beauty_5core.json.gz").is_file():
        pytest.skip(f"shared Beauty data not found at {SHARED_BEAUTY} (clone shared/ beside repo)")
    result = amazon.convert_amazon(
        SHARED_BEAUTY / "reviews_Beauty_5core.json.gz",
        SHARED_BEAUTY / "meta_Beauty_5core.json.gz",
        "amazon-beauty",
        tmp_path,
        log=quiet,
    )
    assert (result.after.users, result.after.items, result.after.interactions) == (
        22363,
        12101,
        198502,
    )
    assert result.before == result.after
    inter = read_atomic(result.inter_path)
    assert list(inter.columns) == ["user_id:token", "item_id:token", "timestamp:float"]
    assert len(inter) == 198502
    assert inter["user_id:token"].nunique() == 22363
    assert inter["user_id:token"].is_monotonic_increasing
    item = read_atomic(result.item_path)
    assert list(item.columns) == [
        "item_id:token",
        "title:token_seq",
        "brand:token",
        "price:float",
        "categories:token_seq",
        "sales_rank:float",
    ]
    assert len(item) == 12101
    filled = (item != "").sum()
    assert filled["title:token_seq"] == 12094
    assert filled["brand:token"] == 10003
    assert filled["price:float"] == 11516
    assert filled["categories:token_seq"] == 12101
    assert filled["sales_rank:float"] == 11815
    first = item.set_index("item_id:token").loc["7806397051"]
    assert first["categories:token_seq"] == "Beauty, Makeup, Face, Concealers & Neutralizers"
    assert first["price:float"] == "5.04"
    assert first["sales_rank:float"] == "10486"
    assert result.items_without_text == 0


REVIEWS_2014 = [
    json.dumps({"reviewerID": "U1", "asin": "A1", "unixReviewTime": 300, "overall": 5.0}),
    json.dumps({"reviewerID": "U1", "asin": "A2", "unixReviewTime": 100, "overall": 4.0}),
    json.dumps({"reviewerID": "U2", "asin": "A1", "unixReviewTime": 200, "overall": 3.0}),
    json.dumps({"reviewerID": "U2", "asin": "A2", "unixReviewTime": 250, "overall": 2.0}),
]
META_2014 = [
    "{'asin': 'A1', 'title': 'Tom &amp; Jerry\\tSoap\\n 12\" bar', 'price': 12.5, "
    "'brand': 'Acme', 'categories': [['Beauty', 'Bath &amp; Body'], ['Beauty', 'Soaps']], "
    "'salesRank': {'Beauty': 1234}, 'description': 'Line one.\\r\\nLine two.'}",
    "{'asin': 'A2', 'categories': [['Beauty']], 'related': {'also_bought': ['A1']}}",
]


@pytest.mark.parametrize("compress", [True, False])
def test_2014_reviews_and_literal_meta(tmp_path: Path, compress: bool) -> None:
    # Names deliberately disagree with the content: detection is by magic bytes.
    reviews = write_lines(tmp_path / "reviews.json", REVIEWS_2014, compress)
    meta = write_lines(tmp_path / "meta.json.gz", META_2014, not compress)
    result = amazon.convert_amazon(
        reviews, meta, "b14", tmp_path / "out", min_user_inter=2, min_item_inter=2, log=quiet
    )
    assert result.inter_path.read_text().splitlines() == [
        "user_id:token\titem_id:token\ttimestamp:float\trating:float",
        "U1\tA2\t100\t4",
        "U1\tA1\t300\t5",
        "U2\tA1\t200\t3",
        "U2\tA2\t250\t2",
    ]
    assert result.item_path.read_text().splitlines() == [
        "item_id:token\ttitle:token_seq\tbrand:token\tprice:float\tcategories:token_seq"
        "\tdescription:token_seq\tsales_rank:float",
        "A1\tTom & Jerry Soap 12'' bar\tAcme\t12.5\tBeauty, Bath & Body, Soaps"
        "\tLine one. Line two.\t1234",
        "A2\t\t\t\tBeauty\t\t",
    ]


def test_2018_format(tmp_path: Path) -> None:
    reviews = write_lines(
        tmp_path / "r.json",
        [
            json.dumps(
                {"overall": 5.0, "reviewerID": u, "asin": i, "unixReviewTime": t, "vote": "2"}
            )
            for u, i, t in [("U1", "B1", 10), ("U1", "B2", 20), ("U2", "B1", 30), ("U2", "B2", 5)]
        ],
        compress=True,
    )
    meta = write_lines(
        tmp_path / "m.json",
        [
            json.dumps(
                {
                    "asin": "B1",
                    "title": "Shampoo",
                    "category": ["All Beauty", "Hair", "All Beauty"],
                    "description": ["Gentle &amp; mild.", "", "For\tall hair."],
                    "rank": "2,938,573 in Beauty & Personal Care (",
                    "brand": "Suave",
                    "price": "$1,012.99",
                }
            ),
            json.dumps(
                {
                    "asin": "B2",
                    "title": "Brush",
                    "category": [],
                    "description": "One brush",
                    "rank": [">#12,345 in Beauty (See Top 100)", ">#3 in Brushes"],
                    "price": "$3.99 - $5.99",
                }
            ),
        ],
    )
    result = amazon.convert_amazon(
        reviews, meta, "b18", tmp_path, min_user_inter=2, min_item_inter=2, log=quiet
    )
    item = read_atomic(result.item_path).set_index("item_id:token")
    assert item.loc["B1"].tolist() == [
        "Shampoo",
        "Suave",
        "1012.99",
        "All Beauty, Hair",
        "Gentle & mild. For all hair.",
        "2938573",
    ]
    assert item.loc["B2"].tolist() == ["Brush", "", "", "", "One brush", "12345"]


def test_2023_format(tmp_path: Path) -> None:
    rows = [("AG1", "P1", "X1", 1588687728923), ("AG1", "P2", "X2", 1588687729000)]
    rows += [("AG2", "P2", "X2", 1600000000000), ("AG2", "P1", "X9", 1600000001000)]
    reviews = write_lines(
        tmp_path / "All_Beauty.jsonl",
        [
            json.dumps(
                {
                    "rating": 4.0,
                    "title": "ok",
                    "asin": a,
                    "parent_asin": p,
                    "user_id": u,
                    "timestamp": ts,
                    "verified_purchase": True,
                }
            )
            for u, p, a, ts in rows
        ],
    )
    meta = write_lines(
        tmp_path / "meta_All_Beauty.jsonl",
        [
            json.dumps(
                {
                    "main_category": "All Beauty",
                    "title": "Lip balm",
                    "price": None,
                    "store": "Burt's Bees",
                    "categories": ["Beauty", "Lips"],
                    "description": ["Moisturising.", "Natural."],
                    "parent_asin": "P1",
                }
            ),
            json.dumps(
                {
                    "main_category": "All Beauty",
                    "title": "Nail file",
                    "price": 6.5,
                    "store": None,
                    "categories": [],
                    "description": [],
                    "parent_asin": "P2",
                }
            ),
        ],
        compress=True,
    )
    result = amazon.convert_amazon(
        reviews, meta, "b23", tmp_path, min_user_inter=2, min_item_inter=2, log=quiet
    )
    assert result.inter_path.read_text().splitlines()[1:] == [
        "AG1\tP1\t1588687728.923\t4",
        "AG1\tP2\t1588687729\t4",
        "AG2\tP2\t1600000000\t4",
        "AG2\tP1\t1600000001\t4",
    ]
    assert result.item_path.read_text().splitlines() == [
        "item_id:token\ttitle:token_seq\tbrand:token\tprice:float\tcategories:token_seq"
        "\tdescription:token_seq",
        "P1\tLip balm\tBurt's Bees\t\tAll Beauty, Beauty, Lips\tMoisturising. Natural.",
        "P2\tNail file\t\t6.5\tAll Beauty\t",
    ]


def sequences(users_items: dict[str, list[str]]) -> list[str]:
    return [
        json.dumps({"reviewerID": user, "asin": item, "unixReviewTime": 1000 + position})
        for user, items in users_items.items()
        for position, item in enumerate(items)
    ]


def meta_for(items: list[str]) -> list[str]:
    return [json.dumps({"asin": item, "title": f"Item {item}"}) for item in items]


def test_duplicates_keep_earliest_and_sort(tmp_path: Path) -> None:
    lines = [
        json.dumps({"reviewerID": "UB", "asin": "I1", "unixReviewTime": 50}),
        json.dumps({"reviewerID": "UA", "asin": "I2", "unixReviewTime": 90}),
        json.dumps({"reviewerID": "UA", "asin": "I1", "unixReviewTime": 70}),
        json.dumps({"reviewerID": "UA", "asin": "I2", "unixReviewTime": 10}),
        json.dumps({"reviewerID": "UB", "asin": "I2", "unixReviewTime": 50}),
    ]
    reviews = write_lines(tmp_path / "r.json", lines)
    meta = write_lines(tmp_path / "m.json", meta_for(["I1", "I2"]))
    result = amazon.convert_amazon(
        reviews, meta, "d", tmp_path, min_user_inter=1, min_item_inter=1, log=quiet
    )
    assert result.before.interactions == 5
    assert result.inter_path.read_text().splitlines()[1:] == [
        "UA\tI2\t10",
        "UA\tI1\t70",
        "UB\tI1\t50",
        "UB\tI2\t50",
    ]


def test_single_pass_versus_kcore(tmp_path: Path) -> None:
    # Dropping item Z (1 interaction) leaves U3 with 1 interaction: single keeps U3, kcore drops it.
    data = {"U1": ["X", "Y"], "U2": ["X", "Y"], "U3": ["X", "Z"]}
    reviews = write_lines(tmp_path / "r.json", sequences(data))
    meta = write_lines(tmp_path / "m.json", meta_for(["X", "Y", "Z"]))
    single = amazon.convert_amazon(
        reviews, meta, "s", tmp_path, min_user_inter=2, min_item_inter=2, log=quiet
    )
    assert (single.after.users, single.after.items, single.after.interactions) == (3, 2, 5)
    kcore = amazon.convert_amazon(
        reviews,
        meta,
        "k",
        tmp_path,
        min_user_inter=2,
        min_item_inter=2,
        filter_mode="kcore",
        log=quiet,
    )
    assert (kcore.after.users, kcore.after.items, kcore.after.interactions) == (2, 2, 4)
    assert read_atomic(kcore.item_path)["item_id:token"].tolist() == ["X", "Y"]


def test_min_rating(tmp_path: Path) -> None:
    reviews = write_lines(tmp_path / "r.json", REVIEWS_2014)
    meta = write_lines(tmp_path / "m.json", META_2014)
    result = amazon.convert_amazon(
        reviews, meta, "r", tmp_path, min_user_inter=1, min_item_inter=1, min_rating=4, log=quiet
    )
    assert result.inter_path.read_text().splitlines()[1:] == ["U1\tA2\t100\t4", "U1\tA1\t300\t5"]
    unrated = write_lines(tmp_path / "u.json", sequences({"U1": ["A1"]}))
    with pytest.raises(PrepError, match="no line carries a rating; drop --min-rating"):
        amazon.convert_amazon(unrated, meta, "r", tmp_path, min_rating=4, log=quiet)


def test_text_survives_round_trip(tmp_path: Path) -> None:
    nasty = '"Quoted" start\twith tab\nnewline\r\nCR &amp; entity &#39;x&#39;  and  spaces '
    reviews = write_lines(tmp_path / "r.json", sequences({"U1": ["Q1", "Q2"]}))
    meta = write_lines(
        tmp_path / "m.json",
        [
            json.dumps({"asin": "Q1", "title": nasty, "brand": '"NA"', "categories": [[nasty]]}),
            json.dumps({"asin": "Q2", "title": "plain", "description": ['say "hi"', "\t"]}),
        ],
    )
    result = amazon.convert_amazon(
        reviews, meta, "t", tmp_path, min_user_inter=1, min_item_inter=1, log=quiet
    )
    expected_title = "''Quoted'' start with tab newline CR & entity 'x' and spaces"
    strict = read_atomic(result.item_path)
    # RecBole reads with pandas' default quoting and the python engine.
    recbole_like = pd.read_csv(
        result.item_path, sep="\t", engine="python", dtype=str, keep_default_na=False
    )
    for frame in (strict, recbole_like):
        assert frame.shape == (2, 5)
        assert frame["title:token_seq"].tolist() == [expected_title, "plain"]
        assert frame["brand:token"].tolist() == ["''NA''", ""]
        assert frame["categories:token_seq"].tolist() == [expected_title, ""]
        assert frame["description:token_seq"].tolist() == ["", "say ''hi''"]
    assert clean_text(["a\u00a0b", None, "&lt;c&gt;"]) == "a b <c>"


def test_value_parsers() -> None:
    assert parse_price("$12.99") == 12.99
    assert parse_price(" $1,299 ") == 1299.0
    assert parse_price("$3.99 - $5.99") is None
    assert parse_price(".a-box-inner{background-color:#fff}") is None
    assert parse_price(float("nan")) is None
    assert parse_price(True) is None
    assert parse_rank({"Beauty": 10486}) == 10486.0
    assert parse_rank({}) is None
    assert parse_rank("1,234 in Beauty") == 1234.0
    assert parse_rank(["no rank", ">#56 in Hair"]) == 56.0


def test_malformed_line_reports_line_number(tmp_path: Path) -> None:
    lines = sequences({"U1": ["A1", "A2"]})
    lines.insert(1, '{"reviewerID": "U1", "asin": "A3", unixReviewTime: 3}')
    reviews = write_lines(tmp_path / "bad.json", lines, compress=True)
    meta = write_lines(tmp_path / "m.json", meta_for(["A1", "A2"]))
    with pytest.raises(PrepError, match=r"bad\.json:2: malformed line.*Fix or remove that line"):
        amazon.convert_amazon(reviews, meta, "e", tmp_path, log=quiet)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"reviewerID": "U1", "unixReviewTime": 1}, "'parent_asin' or 'asin'"),
        ({"asin": "A1", "unixReviewTime": 1}, "'reviewerID' or 'user_id'"),
        ({"reviewerID": "U1", "asin": "A1"}, "'unixReviewTime' or 'timestamp' or 'reviewTime'"),
    ],
)
def test_missing_review_field(tmp_path: Path, record: dict, field: str) -> None:
    lines = sequences({"U1": ["A1"]}) + [json.dumps(record)]
    reviews = write_lines(tmp_path / "r.json", lines)
    meta = write_lines(tmp_path / "m.json", meta_for(["A1"]))
    with pytest.raises(PrepError, match=rf"r\.json:2: missing field {field}"):
        amazon.convert_amazon(reviews, meta, "e", tmp_path, log=quiet)


def test_missing_meta_asin(tmp_path: Path) -> None:
    reviews = write_lines(tmp_path / "r.json", sequences({"U1": ["A1"]}))
    meta = write_lines(tmp_path / "m.json", meta_for(["A1"]) + ["{'title': 'no id'}"])
    with pytest.raises(PrepError, match=r"m\.json:2: missing field 'parent_asin' or 'asin'"):
        amazon.convert_amazon(
            reviews, meta, "e", tmp_path, min_user_inter=1, min_item_inter=1, log=quiet
        )


def test_filter_leaving_nothing_names_the_threshold(tmp_path: Path) -> None:
    reviews = write_lines(tmp_path / "r.json", sequences({"U1": ["A1", "A2"], "U2": ["A3", "A4"]}))
    meta = write_lines(tmp_path / "m.json", meta_for(["A1", "A2", "A3", "A4"]))
    with pytest.raises(PrepError, match=r"lower --min-user-inter \(to at most 2\)"):
        amazon.convert_amazon(reviews, meta, "e", tmp_path, log=quiet)
    with pytest.raises(PrepError, match=r"lower --min-item-inter \(to at most 1\)"):
        amazon.convert_amazon(
            reviews, meta, "e", tmp_path, min_user_inter=2, min_item_inter=2, log=quiet
        )
    assert not (tmp_path / "e").exists()


def test_items_without_text(tmp_path: Path) -> None:
    reviews = write_lines(tmp_path / "r.json", sequences({"U1": ["A1", "A2", "A3"]}))
    meta = write_lines(
        tmp_path / "m.json",
        [json.dumps({"asin": "A1", "title": "Soap"}), json.dumps({"asin": "A2", "price": 3.0})],
    )
    messages: list[str] = []
    result = amazon.convert_amazon(
        reviews, meta, "w", tmp_path, min_user_inter=1, min_item_inter=1, log=messages.append
    )
    assert result.items_without_text == 2
    assert any("warning: 2 of 3 items have no text" in message for message in messages)
    assert read_atomic(result.item_path).values.tolist() == [
        ["A1", "Soap", ""],
        ["A2", "", "3"],
        ["A3", "", ""],
    ]
    empty = write_lines(tmp_path / "empty.json", [json.dumps({"asin": "A1", "price": 1.0})])
    with pytest.raises(PrepError, match="none of the 3 items has any text.*1 of their ids"):
        amazon.convert_amazon(
            reviews, empty, "w2", tmp_path, min_user_inter=1, min_item_inter=1, log=quiet
        )


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reviews = write_lines(tmp_path / "r.json", sequences({"U1": ["A1", "A2"], "U2": ["A1"]}))
    meta = write_lines(tmp_path / "m.json", meta_for(["A1", "A2"]))
    args = ["--reviews", str(reviews), "--meta", str(meta), "--name", "cli", "--out", str(tmp_path)]
    assert amazon.main(args + ["--min-user-inter", "1", "--min-item-inter", "1"]) == 0
    out = capsys.readouterr().out
    assert "read:   2 users, 2 items, 3 interactions, sparsity 25.0000%" in out
    assert "avg sequence length 1.50" in out
    assert (tmp_path / "cli" / "cli.inter").read_text().count("\n") == 4
    assert amazon.main(args) == 2
    assert "lower --min-user-inter" in capsys.readouterr().err
