"""Fixtures of the cluster tests: one cluster (tests/cluster/harness.py) for the whole session,
three nodes behind HAProxy on PostgreSQL and a private Redis; each test gets it whole, with
whatever the previous test stopped running again.

Another test module that needs other settings (a short CONSULT_PROCESS_DEAD_AFTER, say) starts
its own with ``harness.running_cluster(directory, size, settings)``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from tests import backends
from tests.cluster.harness import HAPROXY, REDIS_SERVER, Cluster, running_cluster
from tests.cluster.people import Http


@pytest.fixture(scope="session")
def cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if "postgresql" not in backends.BACKENDS:  # CONSULT_TEST_BACKENDS=sqlite
        pytest.skip("PostgreSQL not selected")
    for binary in (HAPROXY, REDIS_SERVER):
        if shutil.which(binary) is None:  # CI has both (scripts/test installs haproxy)
            pytest.fail(f"{binary} is not installed")
    with running_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
async def cluster(cluster_session: Cluster) -> AsyncIterator[Cluster]:
    """The session's cluster, whole: every node running and in service, Redis up. After the
    test, no node logged an error or a traceback meanwhile (a failed push, sweep or event is
    only ever logged), unless the test set ``cluster.errors_expected``."""
    await cluster_session.heal()
    cluster_session.errors_expected = False
    offsets = cluster_session.log_offsets()
    yield cluster_session
    problems = cluster_session.log_lines_since(offsets, " ERROR ", "Traceback")
    assert cluster_session.errors_expected or not problems, "\n".join(problems[:20])


@pytest.fixture
async def http(cluster: Cluster) -> AsyncIterator[Http]:
    client = Http(cluster.url)
    yield client
    await client.close()
