"""Shared test helpers: the SDK on the path, example modules by path, built components."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[1]
REPO = SDK.parents[1]
EXAMPLES = REPO / "example-hooks" / "python"
SAMPLES = REPO / "example-hooks" / "samples"
#: The WIT the components are built against: $HOOKHOST_WIT, else the repository's own `wit/`.
WIT = Path(os.environ.get("HOOKHOST_WIT", Path(__file__).resolve().parents[3] / "wit"))

# The tests run on plain CPython too, without `pip install`.
sys.path.insert(0, str(SDK / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hookhost import _hook  # noqa: E402

HOOKS = {
    "text_stats": EXAMPLES / "text_stats",
    "file_profile": EXAMPLES / "file_profile",
    **{
        name: EXAMPLES / "hostile" / name
        for name in (
            "loop_forever",
            "alloc_forever",
            "raise_error",
            "deep_recursion",
            "swap_indices",
            "drop_outcome",
            "contract_loop",
        )
    },
}


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Each test registers its own hooks: the module-wide registry starts empty."""
    saved = list(_hook._REGISTERED)
    _hook._REGISTERED.clear()
    yield
    _hook._REGISTERED[:] = saved


def load_example(name: str):
    """Imports an example's ``app.py`` under a unique module name (they are all ``app``)."""
    path = HOOKS[name] / "app.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def components(tmp_path_factory) -> dict[str, Path]:
    """Every example and fixture, built once per session with componentize-py.

    With ``HOOKHOST_TEST_COMPONENTS=DIR`` the components already built into DIR (by
    ``make -C sdk/python hooks``) are used instead, and the build test checks those.
    """
    prebuilt = os.environ.get("HOOKHOST_TEST_COMPONENTS")
    if prebuilt:
        return {name: Path(prebuilt) / f"{name}.wasm" for name in HOOKS}
    # Never skipped: a missing tool or WIT is a failure that says how to get it.
    try:
        import componentize_py  # noqa: F401
    except ImportError:
        pytest.fail("componentize-py is missing: run the tests in the venv (make -C sdk/python venv)")
    if not WIT.exists():
        pytest.fail(f"no WIT at {WIT} (set HOOKHOST_WIT)")
    from hookhost._build import build

    out = tmp_path_factory.mktemp("components")
    return {name: build(project, WIT, out / f"{name}.wasm") for name, project in HOOKS.items()}
