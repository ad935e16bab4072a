"""Helpers of the fast tier (tests/unit): a masterless minion with this checkout's
formula and extensions, the lab pillar read from its files, and plain imports of
pgha's loader modules for the functions that decide."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# The lab pillar and the formula's defaults, as files (no lab needed to read them).
LAB_PILLAR_FILES = [REPO_ROOT / "pillar" / "pgha.sls",
                    *sorted((REPO_ROOT / "pillar" / "pgha_secrets").glob("*.sls"))]


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def lab_pillar() -> dict:
    """The lab's pgha: pillar (cluster and every secret), without the generated TLS part."""
    data: dict = {}
    for path in LAB_PILLAR_FILES:
        data = merge(data, yaml.safe_load(path.read_text())["pgha"])
    return data


def load_file(relpath: str, **dunders):
    """Import one of pgha's loader modules straight from its file, with Salt's dunders
    set to what the test gives: for the plain functions that decide (plans, verdicts,
    trust rules), which need no loader at all."""
    path = REPO_ROOT / relpath
    name = "pgha_unit_" + relpath.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    for key, value in dunders.items():
        setattr(module, key, value)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class Minion:
    """A masterless minion with this checkout's formula and extensions: `.modules`,
    `.states`, `.render(sls)`. Building one costs seconds (grains, Salt's modules), so
    one is built per minion id and test session; `.use(pillar, grains)` then swaps the
    pillar and grains in place for each test."""

    def __init__(self, root: Path, minion_id: str = "pg-01"):
        import salt.config
        from saltfactories.utils.functional import Loaders
        pillar_dir = self.pillar_dir = root / "pillar"
        pillar_dir.mkdir(parents=True, exist_ok=True)
        (pillar_dir / "top.sls").write_text("base: {}\n")
        opts = salt.config.minion_config(None)
        opts.update({
            "id": minion_id, "file_client": "local", "cachedir": str(root / "cache"),
            "pki_dir": str(root / "pki"), "extension_modules": str(root / "extmods"),
            "file_roots": {"base": [str(REPO_ROOT / "salt")]},
            "pillar_roots": {"base": [str(pillar_dir)]},
            "module_dirs": [str(REPO_ROOT / "_modules")], "states_dirs": [str(REPO_ROOT / "_states")],
            "utils_dirs": [str(REPO_ROOT / "_utils")], "beacons_dirs": [str(REPO_ROOT / "_beacons")],
        })
        self.loaders = Loaders(opts)
        self._real_grains = dict(self.loaders.grains)

    def use(self, pillar: dict, grains: dict | None = None) -> "Minion":
        """Make *pillar* (the whole pillar, e.g. {"pgha": ...}) and the real grains with
        *grains* over them this minion's. Each loader holds its own pillar and grains
        dicts (``__pillar__``, ``__grains__``): they are swapped in place, so the loaded
        modules stay loaded."""
        grains = dict(self._real_grains, **(grains or {}))
        for loader in (self.loaders.utils, self.loaders.modules, self.loaders.states):
            for key, value in (("__pillar__", pillar), ("__grains__", grains)):
                held = loader.pack.get(key)
                if isinstance(held, dict):
                    held.clear()
                    held.update(value)
        self.loaders.opts["pillar"] = pillar
        self.loaders.opts["grains"] = grains
        self.loaders.context.clear()
        return self

    @property
    def modules(self):
        return self.loaders.modules

    @property
    def states(self):
        return self.loaders.states

    def render(self, sls: str) -> dict:
        """The high data of *sls*, rendered as this minion would."""
        high = self.loaders.modules.state.show_sls(sls)
        assert isinstance(high, dict), high
        return high


def fake_module(**functions) -> types.SimpleNamespace:
    return types.SimpleNamespace(**functions)
