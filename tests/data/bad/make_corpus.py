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
import zipfile
from pathlib import Path

import pandas as pd

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


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def corpus() -> dict[str, tuple[bytes, dict]]:
    """``name -> (content, expectation)``."""
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
