"""What /metrics shows, parsed the way Prometheus does, by sample name and labels."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition, by name and sorted labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def scrape(client: TestClient[Any, Any]) -> Samples:
    """Every sample /metrics shows, by name and labels, parsed the way Prometheus does."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(await response.text())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[f"aiohttp_chat_{name}", tuple(sorted(labels.items()))]
