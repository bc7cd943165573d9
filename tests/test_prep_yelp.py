"""dataset_prep.yelp on lines written in the real Yelp Open Dataset format."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest

from dataset_prep import yelp
from dataset_prep.common import PrepError

REVIEWS = [
    ("r1", "u1", "b1", 5.0, "2018-07-07 22:09:11"),
    ("r2", "u1", "b2", 2.0, "2018-07-08 10:00:00"),
    ("r3", "u2", "b1", 4.0, "2019-01-01 00:00:00"),
    ("r4", "u2", "b2", 3.0, "2017-12-31 23:59:59"),
    ("r5", "u3", "b3", 5.0, "2019-06-30 12:00:00"),
]
BUSINESSES = [
    {
        "business_id": "b1",
        "name": "Joe's Pizza &amp; Pasta",
        "address": "1 Main St",
        "city": "Las Vegas",
        "state": "NV",
        "stars": 4.5,
        "categories": "Restaurants, Pizza, Restaurants",
    },
    {
        "business_id": "b2",
        "name": 'The "Best"\tBurgers',
        "city": "Phoenix",
        "state": "AZ",
        "categories": None,
    },
    {"business_id": "b3", "name": "Nail Spa", "city": "Toronto", "categories": "Beauty & Spas"},
]


def write_files(tmp_path: Path, compress: bool = False) -> tuple[Path, Path]:
    review_lines = [
        json.dumps(
            {
                "review_id": rid,
                "user_id": user,
                "business_id": business,
                "stars": stars,
                "useful": 0,
                "text": "Great!\nReally.",
                "date": when,
            }
        )
        for rid, user, business, stars, when in REVIEWS
    ]
    business_lines = [json.dumps(record) for record in BUSINESSES]
    reviews = tmp_path / "yelp_academic_dataset_review.json"
    business = tmp_path / "yelp_academic_dataset_business.json"
    for path, lines in ((reviews, review_lines), (business, business_lines)):
        data = ("\n".join(lines) + "\n").encode("utf-8")
        path.write_bytes(gzip.compress(data) if compress else data)
    return reviews, business


def quiet(_: str) -> None:
    return None


@pytest.mark.parametrize("compress", [False, True])
def test_convert_yelp(tmp_path: Path, compress: bool) -> None:
    reviews, business = write_files(tmp_path, compress)
    result = yelp.convert_yelp(
        reviews, business, "yelp", tmp_path / "out", min_user_inter=2, min_item_inter=2, log=quiet
    )
    assert (result.after.users, result.after.items, result.after.interactions) == (2, 2, 4)
    assert result.inter_path == tmp_path / "out" / "yelp" / "yelp.inter"
    assert result.inter_path.read_text().splitlines() == [
        "user_id:token\titem_id:token\ttimestamp:float\trating:float",
        "u1\tb1\t1531001351\t5",
        "u1\tb2\t1531044000\t2",
        "u2\tb2\t1514764799\t3",
        "u2\tb1\t1546300800\t4",
    ]
    assert result.item_path.read_text().splitlines() == [
        "item_id:token\ttitle:token_seq\tcategories:token_seq\tcity:token",
        "b1\tJoe's Pizza & Pasta\tRestaurants, Pizza\tLas Vegas",
        "b2\tThe ''Best'' Burgers\t\tPhoenix",
    ]


def test_date_window_and_min_rating(tmp_path: Path) -> None:
    reviews, business = write_files(tmp_path)
    result = yelp.convert_yelp(
        reviews,
        business,
        "win",
        tmp_path,
        start_date=date(2018, 1, 1),
        end_date=date(2019, 1, 1),
        min_user_inter=1,
        min_item_inter=1,
        min_rating=4,
        log=quiet,
    )
    # r4 is before the window, r5 after it (end day inclusive keeps r3), r2 is rated 2.
    assert result.inter_path.read_text().splitlines()[1:] == [
        "u1\tb1\t1531001351\t5",
        "u2\tb1\t1546300800\t4",
    ]
    with pytest.raises(PrepError, match="widen the date window"):
        yelp.convert_yelp(reviews, business, "x", tmp_path, start_date=date(2030, 1, 1), log=quiet)
    with pytest.raises(PrepError, match="is after --end-date"):
        yelp.convert_yelp(
            reviews,
            business,
            "x",
            tmp_path,
            start_date=date(2019, 1, 2),
            end_date=date(2019, 1, 1),
            log=quiet,
        )


def test_kcore_and_errors(tmp_path: Path) -> None:
    reviews, business = write_files(tmp_path)
    kcore = yelp.convert_yelp(
        reviews,
        business,
        "k",
        tmp_path,
        min_user_inter=2,
        min_item_inter=2,
        filter_mode="kcore",
        log=quiet,
    )
    assert kcore.after.interactions == 4
    with pytest.raises(PrepError, match="lower --min-user-inter"):
        yelp.convert_yelp(reviews, business, "k", tmp_path, log=quiet)
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"review_id": "r", "user_id": "u", "stars": 1, "date": "2018"}) + "\n"
    )
    with pytest.raises(PrepError, match=r"bad\.json:1: missing field 'business_id'"):
        yelp.convert_yelp(bad, business, "k", tmp_path, log=quiet)
    bad.write_text(json.dumps({"user_id": "u", "business_id": "b", "date": "07/07/2018"}) + "\n")
    with pytest.raises(PrepError, match=r"bad\.json:1: field 'date' is not like"):
        yelp.convert_yelp(bad, business, "k", tmp_path, log=quiet)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reviews, business = write_files(tmp_path)
    code = yelp.main(
        [
            "--reviews",
            str(reviews),
            "--business",
            str(business),
            "--name",
            "y",
            "--out",
            str(tmp_path),
            "--start-date",
            "2018-01-01",
            "--min-user-inter",
            "2",
            "--min-item-inter",
            "1",
            "--filter",
            "kcore",
        ]
    )
    assert code == 0
    assert (
        "after kcore filter (users >= 2, items >= 1): 1 users, 2 items" in capsys.readouterr().out
    )
    with pytest.raises(SystemExit):
        yelp.main(
            [
                "--reviews",
                "r",
                "--business",
                "b",
                "--name",
                "y",
                "--out",
                "o",
                "--start-date",
                "2018/01/01",
            ]
        )
