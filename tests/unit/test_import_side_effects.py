"""Importing consult computes nothing and touches nothing: every module of the package is
imported in a fresh interpreter, which then reports what the import did.

A timing budget would be flaky on a shared machine, so the checks name the work instead:
- no file opened, no directory listed, no socket, no process started by consult's own code at
  import, directly or through the standard library (an audit hook sees each; what a library
  does on its own account, or while being imported, is its business);
- no argon2 hash (the dummy hash is made at the first login);
- nothing registered in prometheus_client's global registry, and its global switches as the
  library sets them (the app's ``Metrics`` turns the ``*_created`` series off when built);
- no thread started.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import consult

ROOT = Path(consult.__file__).parent
REPO = ROOT.parent

# Alembic runs the migrations inside its own context; they are not imported as modules.
SKIPPED = ("storage/migrations/",)

_PROBE = r"""
import json
import sys
import threading
from pathlib import Path

root = Path(sys.argv[1]).resolve()
modules = json.loads(sys.argv[2])

WATCHED = ("open", "os.listdir", "os.scandir", "glob.glob", "subprocess.Popen", "os.system",
           "os.exec", "os.posix_spawn", "os.fork", "shutil.copyfile")
touched = []


def ours(filename):
    try:
        return Path(filename).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def hook(event, args):
    if not (event in WATCHED or event.startswith("socket.")):
        return
    # Who asked: walk out through the standard library (Path.read_text, socket, ...) to the
    # first frame that is not in it. consult's code: reported. A library's (pydantic loading
    # its plugins when consult defines a model) or the import machinery's: their business.
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith("<frozen importlib") or "site-packages" in name:
            return
        if ours(name):
            where = f"{Path(name).resolve().relative_to(root)}:{frame.f_lineno}"
            touched.append(f"{where}: {event} {args[0] if args else ''}")
            return
        frame = frame.f_back


import argon2  # noqa: E402
import prometheus_client  # noqa: E402
from prometheus_client import metrics as prometheus_metrics  # noqa: E402

hashes = []
_hash = argon2.PasswordHasher.hash


def counting_hash(self, *args, **kwargs):
    hashes.append(1)
    return _hash(self, *args, **kwargs)


argon2.PasswordHasher.hash = counting_hash
created_before = prometheus_metrics._use_created
collectors_before = set(prometheus_client.REGISTRY._collector_to_names)
threads_before = threading.active_count()

sys.addaudithook(hook)
for module in modules:
    __import__(module)

print(json.dumps({
    "touched": touched,
    "hashes": len(hashes),
    "created_series_switch_changed": prometheus_metrics._use_created != created_before,
    "new_global_metrics": sorted(
        name
        for collector, names in prometheus_client.REGISTRY._collector_to_names.items()
        if collector not in collectors_before
        for name in names
    ),
    "new_threads": threading.active_count() - threads_before,
}))
"""


def _modules() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(SKIPPED):
            continue
        parts = ["consult", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found.append(".".join(parts))
    return found


def _import_everything() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT), json.dumps(_modules())],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_importing_every_module_computes_and_touches_nothing() -> None:
    report = _import_everything()
    assert report == {
        "touched": [],
        "hashes": 0,
        "created_series_switch_changed": False,
        "new_global_metrics": [],
        "new_threads": 0,
    }


def test_every_module_is_imported() -> None:
    modules = _modules()
    assert {"consult.app", "consult.http.metrics", "consult.accounts.passwords"} <= set(modules)
    assert not any("migrations" in m for m in modules)
