"""Payload models of the catalogues' search as the doctor types: products and ICD-10."""

from __future__ import annotations

from pydantic import Field

from consult.outcome.products import SEARCH_LIMIT, SEARCH_MAX, Product
from consult.outcome.validity import Category
from consult.schemas import In, Out


class SearchQuery(In):
    q: str = Field(default="", max_length=100, description="What the doctor typed.")
    limit: int = Field(default=SEARCH_LIMIT, ge=1, le=SEARCH_MAX)


class ProductOut(Out):
    id: int
    name: str
    substance: str
    strength: str
    form: str
    pack_sizes: list[int]
    category: Category = Field(description="Decides the default validity.")
    long_term_eligible: bool

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(
            id=product.id,
            name=product.name,
            substance=product.substance,
            strength=product.strength,
            form=product.form,
            pack_sizes=list(product.pack_sizes),
            category=product.category,
            long_term_eligible=product.long_term_eligible,
        )


class ProductsOut(Out):
    products: list[ProductOut]


class DiagnosisFoundOut(Out):
    code: str
    title: str


class DiagnosesOut(Out):
    diagnoses: list[DiagnosisFoundOut]


class PeselIn(In):
    pesel: str = Field(min_length=1, max_length=20, description="11 digits.")


class PeselOut(Out):
    pesel: str | None


class CancelIn(In):
    reason: str = Field(min_length=1, max_length=500)
