"""Write the bad-input corpus: ``python -m tests.data.bad.make_corpus`` (byte-identical reruns).

Every file is small enough to commit except the 200 MB one, which ``big_repeated_line``
writes at test time. ``MANIFEST.json`` says what the engine must answer for each file:
``{"error": fragment}`` (one ``DataError`` sentence containing it) or ``{"kept": n}`` (it
loads, keeping ``n`` ratings, and the load report accounts for every other row).
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
GOOD = "user_id,item_id,rating\n" + "".join(
    f"u{u},i{i},{(u * 3 + i) % 5 + 1}\n" for u in range(1, 9) for i in range(1, 7) if (u + i) % 3
)
GOOD_ROWS = GOOD.count("\n") - 1


def _zip(entries: dict[str, bytes | str], compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = method
            archive.writestr(info, content)
    return buffer.getvalue()


def _parquet_table(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _xlsx(frame: pd.DataFrame, extra_sheet: bool = False, stray_cell: bool = False) -> bytes:
    """An Excel workbook whose bytes do not depend on the time it was written."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        if extra_sheet:
            notes = pd.DataFrame({"note": ["exported by hand"]})
            notes.to_excel(writer, sheet_name="notes", index=False)
        frame.to_excel(writer, sheet_name="ratings", index=False)
        if stray_cell:  # one value at the sheet's last cell: a 1,048,576 x 16,384 grid
            writer.book["ratings"]["XFD1048576"] = "x"
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as book:
        entries = {name: book.read(name) for name in book.namelist()}
    stamp = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")
    entries["docProps/core.xml"] = stamp.sub(
        rb"\g<1>2026-01-01T00:00:00Z\g<3>", entries["docProps/core.xml"]
    )
    return _zip(entries)


def _encrypted(content: bytes) -> bytes:
    """Set the 'encrypted' flag of every entry (what a password-protected zip declares)."""
    data = bytearray(content)
    for magic, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(magic)
        while start >= 0:
            data[start + offset] |= 1
            start = data.find(magic, start + 4)
    return bytes(data)


def _rows(n: int, seed: int, users: int = 40, items: int = 60) -> list[tuple[str, str, int]]:
    """``n`` distinct (user, item, rating) triples with ratings 1-5."""
    rng = random.Random(seed)
    pairs = rng.sample([(u, i) for u in range(1, users + 1) for i in range(1, items + 1)], n)
    return [(f"u{u}", f"i{i}", rng.randint(1, 5)) for u, i in pairs]


def round_two() -> dict[str, tuple[bytes, dict]]:
    """Cases of issue #14 (messy real exports); every one loads or gives one sentence."""
    rows = _rows(120, seed=1)
    n = len(rows)

    def csv(header: str, lines: list[str], sep: str = ",") -> bytes:
        return (header + "\n" + "".join(line + "\n" for line in lines)).encode()

    plain = [f"{u},{i},{r}" for u, i, r in rows]
    dated = [f"{line},2020-01-{k % 28 + 1:02d}" for k, line in enumerate(plain)]
    dated[3] = dated[3].rsplit(",", 1)[0] + ",9999-12-31"
    dated[7] = dated[7].rsplit(",", 1)[0] + ",0001-01-01"
    epoch = [f"{line},{1_600_000_000 + k}" for k, line in enumerate(plain)]
    for k, value in ((2, "inf"), (5, "1e30"), (9, "-1e25")):
        epoch[k] = epoch[k].rsplit(",", 1)[0] + "," + value
    mixed_units = [
        f"{line},{(1_600_000_000 + k) * (1000 if k % 10 == 0 else 1)}"
        for k, line in enumerate(plain)
    ]
    minutes = [f"{line},{k % 180 + 1}" for k, line in enumerate(plain)]
    review = [f'{line},"{"great " * 30_000 if k == 1 else "ok"}"' for k, line in enumerate(plain)]
    euro = [f"{u};{i};{r},5" if r < 5 else f"{u};{i};{r}" for u, i, r in rows]
    euro_mixed = [
        f"{u};{i};{r - 1},5" if k % 3 == 0 and r > 1 else f"{u};{i};{r}"
        for k, (u, i, r) in enumerate(rows)
    ]
    one_half = list(plain)
    one_half[0] = one_half[0].rsplit(",", 1)[0] + ",4.5"
    # headerless: user (u1..), item (40 values) and a rating; the item ids are numbers 1-40, on
    # the 0-100 scale too, so only the repeated-pair test tells the rating from the item
    big = _rows(600, seed=2, users=200, items=40)
    headerless = [f"{u[1:]},{i[1:]},{r}" for u, i, r in big]
    tiny = [f"{k % 4 + 1},{k % 5 + 1},{(k * 7) % 5 + 1}" for k in range(12)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    dates = pd.DataFrame({"timestamp": pd.to_datetime(["2020-01-01"] * n).as_unit("s")})
    dates.loc[0, "timestamp"] = pd.Timestamp("2500-01-01").as_unit("s")
    year_2500 = pd.concat([frame, dates], axis=1)
    items = sorted({i for _, i, _ in rows})
    list_genres = pd.DataFrame(
        {
            "item_id": items,
            "genres": [["Action", "Comedy"] if k % 2 else ["Drama"] for k in range(len(items))],
        }
    )
    records = [{"user": u, "item": i, "rating": r} for u, i, r in rows]
    jsonl = "".join(json.dumps(r) + "\n" for r in records[:50]) + "{not json\n"
    jsonl += "".join(json.dumps(r) + "\n" for r in records[50:])
    warned_kept = {"kept": n}
    thumbs = [f"{u},{i},{1 if r > 2 else -1}" for u, i, r in rows]
    one_each = [f"u{k},i{k % 30},{k % 5 + 1}" for k in range(90)]
    user_ids = sorted({u for u, _, _ in rows}, key=lambda u: int(u[1:]))
    users_named = "user_id,activity,popularity propensity,gender\n" + "".join(
        f"{u},{'high' if k % 3 else 'low'},{'mainstream' if k % 2 else 'niche'},{'FM'[k % 2]}\n"
        for k, u in enumerate(user_ids)
    )
    ages = [str(18 + k) for k in range(len(user_ids))]
    ages[0], ages[1] = "inf", "-inf"
    users_inf = "user_id,age\n" + "".join(f"{u},{a}\n" for u, a in zip(user_ids, ages, strict=True))
    users_one_value = "user_id,country,gender\n" + "".join(
        f"{u},NZ,{'FM'[k % 2]}\n" for k, u in enumerate(user_ids)
    )
    ratings_csv = csv("user_id,item_id,rating", plain)
    trailing = [line + "," for line in plain]
    thousands = [f'{u},{i},"{r},000"' for u, i, r in rows]
    binary = pa.table(
        {
            "user_id": pa.array([u.encode() for u, _, _ in rows], pa.binary()),
            "item_id": pa.array([b"\xff" + i.encode() for _, i, _ in rows], pa.binary()),
            "rating": pa.array([r for _, _, r in rows]),
        }
    )
    float_ids = frame.assign(item_id=[float(i[1:]) for i in frame["item_id"]])
    float_ids.loc[0, "item_id"] = 1.5
    twice = pa.Table.from_arrays(
        [pa.array(frame[c]) for c in ("user_id", "item_id", "rating", "rating")],
        names=["user_id", "item_id", "rating", "rating"],
    )
    return {
        "trailing_delimiter.csv": (
            csv("user_id,item_id,rating", trailing),
            {**warned_kept, "warning": "one field more than its header"},
        ),
        "thousands_separators.csv": (
            csv("user_id,item_id,rating", thousands),
            {"error": "120 ratings hold a comma, such as 1,000 or 3,5"},
        ),
        "stray_cell.xlsx": (_xlsx(frame, stray_cell=True), {"error": "is a stray cell far"}),
        "encrypted.zip": (
            _encrypted(_zip({"ratings.csv": ratings_csv})),
            {"error": "is encrypted (password-protected)"},
        ),
        "binary_ids.parquet": (_parquet_table(binary), warned_kept),
        "float_ids.parquet": (_parquet(float_ids), warned_kept),
        "duplicate_columns.parquet": (
            _parquet_table(twice),
            {"error": "not a readable Parquet file (ArrowInvalid: Multiple matches"},
        ),
        "thumbs_up_down.csv": (csv("user_id,item_id,rating", thumbs), warned_kept),
        "one_rating_per_user.csv": (csv("user_id,item_id,rating", one_each), {"kept": 90}),
        "users_named_like_derived_groups.zip": (
            _zip({"ratings.csv": ratings_csv, "users.csv": users_named}),
            warned_kept,
        ),
        "users_infinite_age.zip": (
            _zip({"ratings.csv": ratings_csv, "users.csv": users_inf}),
            warned_kept,
        ),
        "users_single_valued_attribute.zip": (
            _zip({"ratings.csv": ratings_csv, "users.csv": users_one_value}),
            warned_kept,
        ),
        "dates_out_of_range.csv": (
            csv("user_id,item_id,rating,date", dated),
            {**warned_kept, "warning": "lie outside 1900-2100 (e.g. '9999-12-31', '0001-01-01')"},
        ),
        "timestamps_not_finite.csv": (
            csv("user_id,item_id,rating,timestamp", epoch),
            {**warned_kept, "warning": "3 timestamps in timestamps_not_finite.csv"},
        ),
        "timestamps_mixed_units.csv": (
            csv("user_id,item_id,rating,timestamp", mixed_units),
            {**warned_kept, "warning": "108 as seconds, 12 as milliseconds"},
        ),
        "watch_time_minutes.csv": (
            csv("user_id,item_id,rating,watch_time_minutes", minutes),
            {**warned_kept, "warning": "watch_time_minutes of watch_time_minutes.csv was not used"},
        ),
        "year_2500.parquet": (
            _parquet(year_2500),
            {**warned_kept, "warning": "1 timestamps in year_2500.parquet"},
        ),
        "long_review_field.csv": (csv("user_id,item_id,rating,review", review), warned_kept),
        "european_decimal_comma.csv": (
            csv("user_id;item_id;rating", euro),
            {**warned_kept, "warning": "written with a decimal comma (e.g. 3,5) and were read"},
        ),
        "european_mixed_decimals.csv": (
            csv("user;item;rating", euro_mixed),
            {**warned_kept, "warning": "were read as decimals"},
        ),
        "one_half_star.csv": (
            csv("user_id,item_id,rating", one_half),
            {**warned_kept, "warning": "Only 1 of 120 ratings"},
        ),
        "headerless_few_items.csv": (
            csv(headerless[0], headerless[1:]),
            {"kept": len(big), "warning": "rating = column_3 (it leaves"},
        ),
        "headerless_two_readings.csv": (
            csv(tiny[0], tiny[1:]),
            {"error": "could each be the rating"},
        ),
        "ratings_bak_beside_csv.zip": (
            _zip(
                {"ratings.bak": b"garbage\x00", "ratings.csv": csv("user_id,item_id,rating", plain)}
            ),
            {**warned_kept, "warning": "ratings.bak was not read as the ratings"},
        ),
        "ratings_r_script.zip": (
            _zip({"ratings.R": "library(readr)\nx <- read_csv('r.csv')\n"}),
            {"error": "holds ratings.R but no ratings file with a data extension"},
        ),
        "two_rating_files.zip": (
            _zip(
                {
                    "ratings.csv": csv("user_id,item_id,rating", plain),
                    "ratings.tsv": csv(
                        "user_id\titem_id\trating", [p.replace(",", "\t") for p in plain]
                    ),
                }
            ),
            {"error": "holds 2 files that could be the ratings (ratings.csv, ratings.tsv)"},
        ),
        "list_genres.zip": (
            _zip(
                {
                    "ratings.csv": csv("user_id,item_id,rating", plain),
                    "items.parquet": _parquet(list_genres),
                }
            ),
            warned_kept,
        ),
        "ratings.xlsx": (_xlsx(frame, extra_sheet=True), {**warned_kept, "warning": "2 sheets"}),
        "legacy.xls": (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504,
            {"error": "legacy Excel .xls workbook"},
        ),
        "ratings.json": (json.dumps(records).encode(), warned_kept),
        "ratings_api_export.json": (json.dumps({"ratings": records}).encode(), warned_kept),
        "ratings.jsonl": (
            jsonl.encode(),
            {"kept": n, "rejected": {"malformed_row": 1}},
        ),
        "broken.json": (b'[{"user": 1, "item": 2, "rating": 3},', {"error": "not valid JSON"}),
        "deep.json": (b"[" * 100_000 + b"]" * 100_000, {"error": "nests JSON deeper"}),
    }


def corpus() -> dict[str, tuple[bytes, dict]]:
    """``name -> (content, expectation)``."""
    return {**round_one(), **round_two()}


def round_one() -> dict[str, tuple[bytes, dict]]:
    """The first corpus: malformed and hostile files."""
    rng = random.Random(0)
    lines = GOOD.splitlines()
    endings = ["\r\n", "\n", "\r"]
    mixed = "".join(line + endings[k % 3] for k, line in enumerate(lines))
    titles = "item_id,title,genres\n" + "".join(
        f'i{i},"{t}",Drama\n'
        for i, t in enumerate(
            [
                "<script>alert(1)</script>",
                '""><img src=x onerror=alert(1)>',
                "</title><svg onload=alert(2)>",
                '=HYPERLINK("http://x")',
                "@SUM(1+1)",
                "javascript:alert(3)",
            ],
            start=1,
        )
    )
    long_id = "u" + "9" * 10_000
    return {
        "empty.csv": (b"", {"error": "is empty"}),
        "blank_lines.csv": (b"\n\r\n  \n\t\n", {"error": "is empty"}),
        "header_only.csv": (b"user_id,item_id,rating\n", {"error": "holds only a header"}),
        "random_bytes.bin": (
            bytes(rng.randrange(256) for _ in range(8192)),
            {"error": "is binary"},
        ),
        "nul_bytes.csv": (GOOD.encode().replace(b"\n", b"\x00\n", 5), {"error": "is binary"}),
        "control_characters.csv": (bytes(range(1, 32)) * 64, {"error": "is binary"}),
        "one_column.csv": (b"user\nu1\nu2\nu3\n", {"error": "has only one column"}),
        "hash_separated.txt": (
            b"u1#i1#4\nu1#i2#3\nu2#i1#5\n",
            {"error": "separates its fields with '#'"},
        ),
        "no_rating_column.csv": (
            b"user,item\nu1,i1\nu2,i2\n",
            {"error": "no recognisable rating column"},
        ),
        "text_ratings.csv": (
            b"user,item,rating\nu1,i1,good\nu2,i2,bad\n",
            {"error": "no row with a user id, an item id and a numeric"},
        ),
        "implicit_only.csv": (
            b"user,item,rating\nu1,i1,1\nu1,i2,1\nu2,i1,1\nu3,i3,1\n",
            {"error": "looks like implicit feedback"},
        ),
        "single_user.csv": (
            b"user,item,rating\nu1,i1,1\nu1,i2,5\nu1,i3,3\n",
            {"error": "only 1 user"},
        ),
        "single_item.csv": (
            b"user,item,rating\nu1,i1,1\nu2,i1,5\nu3,i1,3\n",
            {"error": "only 1 item"},
        ),
        "unbalanced_quote.csv": (
            b'user,item,rating\nu1,"i1,4\n' + b"u2,i2,3\n" * 3,
            {"error": "quotes are balanced"},
        ),
        "ten_thousand_columns.csv": (
            (
                ",".join(f"c{k}" for k in range(10_000))
                + "\n"
                + "\n".join(",".join(str((r + k) % 5 + 1) for k in range(10_000)) for r in range(3))
                + "\n"
            ).encode(),
            {"error": "10,000 columns"},
        ),
        "zip_without_ratings.zip": (
            _zip({"notes.txt": "hello"}),
            {"error": "holds no recognisable ratings"},
        ),
        "zip_path_traversal.zip": (
            _zip({"ratings.csv": GOOD, "../../etc/evil.csv": GOOD}),
            {"error": "points outside the archive"},
        ),
        "zip_absolute_path.zip": (
            _zip({"ratings.csv": GOOD, "/etc/evil.csv": GOOD}),
            {"error": "points outside the archive"},
        ),
        "zip_bomb.zip": (_zip({"ratings.csv": b"0" * 60_000_000}), {"error": "likely zip bomb"}),
        "truncated.zip": (_zip({"ratings.csv": GOOD * 40})[:150], {"error": "not a readable zip"}),
        "excel_in_disguise.csv": (_zip({"xl/workbook.xml": "<x/>"}), {"error": "Excel workbook"}),
        "corrupt.parquet": (b"PAR1" + b"\x00garbage" * 40, {"error": "not a readable Parquet"}),
        "wrong_types.parquet": (
            _parquet(
                pd.DataFrame(
                    {
                        "user_id": [1.5, 2.5, 3.5],
                        "item_id": [True, False, True],
                        "rating": ["good", "bad", "fine"],
                    }
                )
            ),
            {"error": "no row with a user id, an item id and a numeric"},
        ),
        "corrupt.csv.gz": (b"\x1f\x8b\x08\x00" + b"\xff" * 64, {"error": "not a readable gzip"}),
        "gzip_bomb.csv.gz": (
            gzip.compress(b"u1,i1,5\n" * 40_000_000, mtime=0),
            {"error": "likely zip bomb"},
        ),
        "mixed_line_endings.csv": (mixed.encode(), {"kept": GOOD_ROWS}),
        "utf8_bom.csv": (b"\xef\xbb\xbf" + GOOD.encode(), {"kept": GOOD_ROWS}),
        "utf16_bom.csv": (GOOD.encode("utf-16"), {"kept": GOOD_ROWS}),
        "latin1.csv": (GOOD.replace("u1,", "Zoë,").encode("latin-1"), {"kept": GOOD_ROWS}),
        "long_ids.csv": (GOOD.replace("u1,", long_id + ",").encode(), {"kept": GOOD_ROWS}),
        "confusable_ids.csv": (
            (GOOD + "u１,i1,5\nu1\u200b,i2,4\nս1,i3,3\n").encode(),  # fullwidth 1, ZWSP, Armenian
            {"kept": GOOD_ROWS + 3, "warning": "differ only by Unicode width"},
        ),
        "formula_cells.csv": (
            (GOOD + "=cmd|' /C calc'!A0,i1,5\n+SUM(1),i2,4\n@x,i3,2\n-1,i4,3\n").encode(),
            {"kept": GOOD_ROWS + 4},
        ),
        "html_titles.zip": (_zip({"ratings.csv": GOOD, "items.csv": titles}), {"kept": GOOD_ROWS}),
        "bad_rows_counted.csv": (
            (GOOD + "u1,i9,\nu2,i9,NaN\n,i9,4\nu4,,4\nu1,i1,2\n").encode(),
            {
                "kept": GOOD_ROWS,
                "rejected": {
                    "non_numeric_rating": 2,
                    "missing_user_id": 1,
                    "missing_item_id": 1,
                    "duplicate": 1,
                },
            },
        ),
    }


def big_repeated_line(path: Path, megabytes: int = 200) -> Path:
    """Write ``megabytes`` MB of one repeated rating line (``u1,i1,5``) to ``path``."""
    line = b"u1,i1,5\n"
    block = line * (2**20 // len(line))
    with path.open("wb") as out:
        for _ in range(megabytes):
            out.write(block)
    return path


def main() -> None:
    """(Re)write the corpus files and ``MANIFEST.json`` next to this script."""
    manifest = {}
    for name, (content, expected) in corpus().items():
        (HERE / name).write_bytes(content)
        manifest[name] = expected
    manifest["big_repeated_line.csv (200 MB, written at test time)"] = {"error": "row limit"}
    (HERE / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
