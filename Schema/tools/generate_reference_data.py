#!/usr/bin/env python3
"""Generate Schema/0002_reference_data.sql from the reference CSV files.

Usage:
    python3 Schema/tools/generate_reference_data.py [DATA_DIR]

DATA_DIR defaults to ../shared/data relative to the repository root (the
repository root is two levels above this script). The output is written to
Schema/0002_reference_data.sql and is deterministic: the same input files give
byte-identical output. Python 3 standard library only.

Source files (see DATA_DIR/README.md):
  countries.csv     lukes/ISO-3166-Countries-with-Regional-Codes v10.0, CC BY-SA 4.0
  isced-f-2013.csv  EuropeanUniversityFoundation/isced_php (derived), MIT
  languages.csv     datasets/language-codes (derived), ODC-PDDL-1.0
"""

import csv
import os
import re
import sys

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(SCRIPT_DIR))
DEFAULT_DATA_DIR = os.path.join(REPO_ROOT, "..", "shared", "data")
OUTPUT = os.path.join(REPO_ROOT, "Schema", "0002_reference_data.sql")

# ISCED-F 2013: the CSV's `level` column holds 'broad' / 'narrow' / 'detailed'
# and must agree with the code length (2 / 3 / 4 digits).
ISCED_LEVEL_BY_LENGTH = {2: "broad", 3: "narrow", 4: "detailed"}

CEFR_LEVELS = [("A1", 1), ("A2", 2), ("B1", 3), ("B2", 4), ("C1", 5), ("C2", 6)]


def fail(msg):
    sys.exit("generate_reference_data: " + msg)


def read_csv(data_dir, name, expected_header):
    path = os.path.join(data_dir, name)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        fail("cannot read %s: %s" % (path, e))
    if not rows or rows[0] != expected_header:
        fail("%s: unexpected header %r" % (name, rows[0] if rows else None))
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(expected_header):
            fail("%s line %d: %d fields, expected %d" % (name, lineno, len(row), len(expected_header)))
        rec = dict(zip(expected_header, row))
        for k, v in rec.items():
            if v != v.strip():
                fail("%s line %d: leading/trailing whitespace in %s" % (name, lineno, k))
        out.append(rec)
    return out


def lit(value):
    """SQL literal: empty string -> NULL, else a standard-conforming quoted string."""
    if value is None or value == "":
        return "NULL"
    if "\x00" in value:
        fail("NUL character in value %r" % value)
    return "'" + value.replace("'", "''") + "'"


def insert(table, columns, rows):
    lines = ["INSERT INTO %s (%s) VALUES" % (table, ", ".join(columns))]
    values = ["    (" + ", ".join(row) + ")" for row in rows]
    lines.append(",\n".join(values) + ";")
    return "\n".join(lines)


def unique(rows, key, name):
    seen = set()
    for r in rows:
        if r[key] in seen:
            fail("%s: duplicate %s %r" % (name, key, r[key]))
        seen.add(r[key])


def countries_sql(data_dir):
    header = ["name", "alpha-2", "alpha-3", "country-code", "iso_3166-2", "region",
              "sub-region", "intermediate-region", "region-code", "sub-region-code",
              "intermediate-region-code"]
    rows = read_csv(data_dir, "countries.csv", header)
    for r in rows:
        if not re.fullmatch(r"[A-Z]{2}", r["alpha-2"]):
            fail("countries.csv: bad alpha-2 %r" % r["alpha-2"])
        if not re.fullmatch(r"[A-Z]{3}", r["alpha-3"]):
            fail("countries.csv: bad alpha-3 %r" % r["alpha-3"])
        if not re.fullmatch(r"[0-9]{3}", r["country-code"]):
            fail("countries.csv: bad numeric code %r" % r["country-code"])
        if not r["name"]:
            fail("countries.csv: empty name for %s" % r["alpha-2"])
    unique(rows, "alpha-2", "countries.csv")
    unique(rows, "alpha-3", "countries.csv")
    rows.sort(key=lambda r: r["alpha-2"])
    values = [[lit(r["alpha-2"]), lit(r["alpha-3"]), lit(r["country-code"]), lit(r["name"]),
               lit(r["region"]), lit(r["sub-region"]), lit(r["intermediate-region"]),
               lit(r["region-code"]), lit(r["sub-region-code"]),
               lit(r["intermediate-region-code"])] for r in rows]
    return len(rows), insert(
        "countries",
        ["code", "alpha3", "numeric_code", "name", "region", "sub_region",
         "intermediate_region", "region_code", "sub_region_code", "intermediate_region_code"],
        values)


def isced_sql(data_dir):
    rows = read_csv(data_dir, "isced-f-2013.csv", ["code", "level", "name", "parent"])
    unique(rows, "code", "isced-f-2013.csv")
    codes = {r["code"] for r in rows}
    for r in rows:
        code = r["code"]
        if not re.fullmatch(r"[0-9]{2,4}", code):
            fail("isced-f-2013.csv: bad code %r" % code)
        if r["level"] != ISCED_LEVEL_BY_LENGTH[len(code)]:
            fail("isced-f-2013.csv: level %r does not match code %s" % (r["level"], code))
        expected_parent = "" if len(code) == 2 else code[:-1]
        if r["parent"] != expected_parent:
            fail("isced-f-2013.csv: parent %r of %s, expected %r" % (r["parent"], code, expected_parent))
        if expected_parent and expected_parent not in codes:
            fail("isced-f-2013.csv: parent %s of %s is missing" % (expected_parent, code))
        if not r["name"]:
            fail("isced-f-2013.csv: empty name for %s" % code)
    # Parents before children, so the self-referencing foreign key holds.
    rows.sort(key=lambda r: (len(r["code"]), r["code"]))
    values = [[lit(r["code"]), lit(r["level"]), lit(r["name"]), lit(r["parent"])] for r in rows]
    return len(rows), insert("isced_fields", ["code", "level", "name", "parent"], values)


def languages_sql(data_dir):
    rows = read_csv(data_dir, "languages.csv", ["alpha2", "alpha3_b", "alpha3_t", "name_en", "name_fr"])
    unique(rows, "alpha2", "languages.csv")
    for r in rows:
        if not re.fullmatch(r"[a-z]{2}", r["alpha2"]):
            fail("languages.csv: bad alpha2 %r" % r["alpha2"])
        if not re.fullmatch(r"[a-z]{3}", r["alpha3_b"]):
            fail("languages.csv: bad alpha3_b %r" % r["alpha3_b"])
        if r["alpha3_t"] and not re.fullmatch(r"[a-z]{3}", r["alpha3_t"]):
            fail("languages.csv: bad alpha3_t %r" % r["alpha3_t"])
        if not r["name_en"]:
            fail("languages.csv: empty name_en for %s" % r["alpha2"])
    rows.sort(key=lambda r: r["alpha2"])
    values = [[lit(r["alpha2"]), lit(r["alpha3_b"]), lit(r["alpha3_t"]), lit(r["name_en"]),
               lit(r["name_fr"])] for r in rows]
    return len(rows), insert("languages", ["code", "alpha3_b", "alpha3_t", "name_en", "name_fr"], values)


HEADER = """\
-- 0002_reference_data.sql: reference vocabulary tables (countries, ISCED-F 2013
-- fields of education, ISO 639-1 languages, CEFR levels).
--
-- GENERATED FILE, DO NOT EDIT BY HAND.
-- Generated by Schema/tools/generate_reference_data.py from the CSV files in
-- shared/data (see shared/data/README.md). Re-run the script to change it:
--     python3 Schema/tools/generate_reference_data.py [DATA_DIR]
--
-- Runs inside a transaction as the schema owner role accord_owner; the
-- application role accord_app is granted SELECT. These tables are network-wide
-- reference data, so no row-level security is enabled on them.
--
-- Sources and licences:
--   countries     countries.csv, from lukes/ISO-3166-Countries-with-Regional-Codes
--                 v10.0 (all/all.csv, commit 145f1ad3caff212ed25f42b0ee2c8b92a75af895).
--                 Licence: CC BY-SA 4.0 (attribution + ShareAlike). Not authoritative
--                 per upstream. {n_countries} rows.
--   isced_fields  isced-f-2013.csv, derived from EuropeanUniversityFoundation/isced_php
--                 (data/isced.php, commit ac5056ab82c6383a6b50cbb3101e0a94d24e5272),
--                 built from the EU ISCED-F 2013 SKOS vocabulary. Licence: MIT
--                 (c) 2025 European University Foundation. {n_isced} rows.
--                 level: 'broad' (2-digit code), 'narrow' (3), 'detailed' (4), taken
--                 from the CSV's level column and checked against the code length;
--                 parent is the code minus its last digit (NULL for broad fields).
--   languages     languages.csv, derived from datasets/language-codes
--                 (data/language-codes-full.csv, commit 2787e945225a6daaa75d9f3812a977c9f89c61bc),
--                 rows with an ISO 639-1 code. Licence: ODC-PDDL-1.0. {n_languages} rows.
--                 alpha3_t is NULL unless the terminologic code differs from alpha3_b.
--   cefr_levels   CEFR levels A1..C2 with their rank (1..6), written by the generator.
--
-- String literals assume standard_conforming_strings = on (the default).

SET LOCAL standard_conforming_strings = on;
"""

DDL_COUNTRIES = """\
CREATE TABLE countries (
    code                     char(2) PRIMARY KEY CHECK (code ~ '^[A-Z]{2}$'),
    alpha3                   char(3) NOT NULL UNIQUE,
    numeric_code             text    NOT NULL,
    name                     text    NOT NULL,
    region                   text,
    sub_region               text,
    intermediate_region      text,
    region_code              text,
    sub_region_code          text,
    intermediate_region_code text
);

COMMENT ON TABLE countries IS
    'ISO 3166-1 countries with UN M49 regions. Source: lukes/ISO-3166-Countries-with-Regional-Codes v10.0 (all/all.csv). Licence: CC BY-SA 4.0 (attribution and ShareAlike required). Region is NULL for AQ and TW.';
"""

DDL_ISCED = """\
CREATE TABLE isced_fields (
    code   text PRIMARY KEY CHECK (code ~ '^[0-9]{2,4}$'),
    level  text NOT NULL CHECK (level IN ('broad', 'narrow', 'detailed')),
    name   text NOT NULL,
    parent text REFERENCES isced_fields (code),
    CHECK (level = CASE length(code) WHEN 2 THEN 'broad' WHEN 3 THEN 'narrow' ELSE 'detailed' END),
    CHECK ((length(code) = 2 AND parent IS NULL)
        OR (length(code) > 2 AND parent = left(code, length(code) - 1)))
);

CREATE INDEX isced_fields_parent_idx ON isced_fields (parent);

COMMENT ON TABLE isced_fields IS
    'ISCED-F 2013 fields of education and training (broad = 2-digit, narrow = 3-digit, detailed = 4-digit code). Source: EuropeanUniversityFoundation/isced_php data/isced.php (from the EU ISCED-F SKOS vocabulary). Licence: MIT, (c) 2025 European University Foundation.';
"""

DDL_LANGUAGES = """\
CREATE TABLE languages (
    code     char(2) PRIMARY KEY CHECK (code ~ '^[a-z]{2}$'),
    alpha3_b char(3) NOT NULL,
    alpha3_t char(3),
    name_en  text    NOT NULL,
    name_fr  text
);

COMMENT ON TABLE languages IS
    'ISO 639-1 languages with ISO 639-2 bibliographic/terminologic codes and English/French names. Source: datasets/language-codes data/language-codes-full.csv (Library of Congress, Unicode CLDR). Licence: ODC-PDDL-1.0.';
"""

DDL_CEFR = """\
CREATE TABLE cefr_levels (
    code text     PRIMARY KEY,
    rank smallint NOT NULL UNIQUE
);

COMMENT ON TABLE cefr_levels IS
    'CEFR language proficiency levels A1..C2; rank orders them (A1 = 1 .. C2 = 6) for minimum-level comparisons. Source: Council of Europe CEFR level names (facts, no licence needed).';
"""


def main(argv):
    if len(argv) > 2:
        fail("usage: generate_reference_data.py [DATA_DIR]")
    data_dir = argv[1] if len(argv) == 2 else DEFAULT_DATA_DIR

    n_countries, ins_countries = countries_sql(data_dir)
    n_isced, ins_isced = isced_sql(data_dir)
    n_languages, ins_languages = languages_sql(data_dir)
    ins_cefr = insert("cefr_levels", ["code", "rank"],
                      [[lit(c), str(r)] for c, r in CEFR_LEVELS])

    parts = [
        HEADER.format(n_countries=n_countries, n_isced=n_isced, n_languages=n_languages),
        DDL_COUNTRIES, ins_countries + "\n",
        DDL_ISCED, ins_isced + "\n",
        DDL_LANGUAGES, ins_languages + "\n",
        DDL_CEFR, ins_cefr + "\n",
        "GRANT SELECT ON countries, isced_fields, languages, cefr_levels TO accord_app;\n",
    ]
    text = "\n".join(parts)

    tmp = OUTPUT + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, OUTPUT)
    print("wrote %s (%d countries, %d ISCED fields, %d languages, %d CEFR levels)"
          % (os.path.relpath(OUTPUT, REPO_ROOT), n_countries, n_isced, n_languages, len(CEFR_LEVELS)))


if __name__ == "__main__":
    main(sys.argv)
