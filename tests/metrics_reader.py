"""Reading /metrics in tests with prometheus_client's own parser of the text format, as a
Prometheus server would, plus the checks that every family is typed and documented."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample, keyed by its name (counters' with ``_total``) and labels."""
    assert text.endswith("\n")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.type in ("gauge", "counter", "histogram"), (family.name, family.type)
        assert family.documentation, family.name
        for s in family.samples:
            assert not s.name.endswith("_created"), s.name  # only the counts, no creation times
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, key
            samples[key] = s.value
    return samples


def sample(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def types(text: str) -> dict[str, str]:
    """Each family's type, by the family's name (a counter's without ``_total``)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
