"""Helpers of the fast tier (tests/unit): a masterless minion with this checkout's
formula and extensions, the lab pillar read from its files, and plain imports of
pgha's loader modules for the functions that decide."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import types
from pathlib import Path

from pgha_lab import labpillar
from pgha_lab.labpillar import merge  # noqa: F401  (re-exported for the tests)

REPO_ROOT = Path(__file__).resolve().parents[2]


# Stand-ins for the certificates pgha-lab issues (lab_tls.sls): validation looks for
# the PEM markers, and no test here connects to anything.
PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"


def lab_pillar() -> dict:
    """The lab's pgha: pillar (topology, cluster and every secret), with stand-ins for
    the TLS material pgha-lab generates: what pgha-lab's own tools read (no lab needed)."""
    return merge(labpillar.raw(), {
        "tls": {"enabled": True, "ca_cert": PEM_CERT, "cert": PEM_CERT, "key": PEM_KEY},
        "backup": {"tls": {"cert": PEM_CERT, "key": PEM_KEY}}})


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


# The systems the formula supports, as the grains its maps read. Every unit minion is one
# of them, whatever the machine running the tests is.
SYSTEMS = {
    "Debian-13": {"os": "Debian", "os_family": "Debian", "osfinger": "Debian-13", "oscodename": "trixie",
                  "osmajorrelease": 13},
    "Debian-12": {"os": "Debian", "os_family": "Debian", "osfinger": "Debian-12", "oscodename": "bookworm",
                  "osmajorrelease": 12},
    "Ubuntu-24.04": {"os": "Ubuntu", "os_family": "Debian", "osfinger": "Ubuntu-24.04", "oscodename": "noble",
                     "osmajorrelease": 24},
}


def _loaders_class():
    from saltfactories.utils.functional import Loaders

    class QuickLoaders(Loaders):
        """saltfactories' Loaders without the saltutil.sync_all it runs when built (3.5 of
        its 5 s): pgha's modules load straight from the checkout (module_dirs), so there
        is nothing to sync."""

        def __init__(self, opts, loaded_base_name):
            import salt.features
            self.opts = opts
            self.loaded_base_name = loaded_base_name
            self.context = {}
            self._cachedir = Path(opts["cachedir"])
            self._original_opts = copy.deepcopy(opts)
            self._reset_state_funcs = [self.context.clear, self._cleanup_cache]
            self._reload_all_funcs = [self.reset_state]
            self._grains = self._modules = self._pillar = self._serializers = None
            self._states = self._utils = None
            salt.features.setup_features(self.opts)
            self.reload_all()

    return QuickLoaders


class Minion:
    """A masterless minion with this checkout's formula and extensions: `.modules`,
    `.states`, `.render(sls)`. Its id and system are fixed (grains given as the minion
    config's static grains, so every loader, renderer and state run sees them). Building
    one costs seconds, so one is built per (id, system) and test session; `.use(pillar)`
    then swaps the pillar for each test."""

    def __init__(self, root: Path, minion_id: str = "pg-01", system: str = "Debian-13"):
        import salt.config
        pillar_dir = self.pillar_dir = root / "pillar"
        pillar_dir.mkdir(parents=True, exist_ok=True)
        (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - test_pillar\n")
        (pillar_dir / "test_pillar.sls").write_text("{}\n")
        # Static grains, as a minion config file gives them: salt.loader.grains reads them
        # from the file and lays them over the detected ones.
        conf_file = root / "minion"
        conf_file.write_text(json.dumps({"grains": SYSTEMS[system]}))
        opts = salt.config.minion_config(None)
        opts.update({
            "conf_file": str(conf_file),
            "id": minion_id, "file_client": "local", "cachedir": str(root / "cache"),
            "pki_dir": str(root / "pki"), "extension_modules": str(root / "extmods"),
            "file_roots": {"base": [str(REPO_ROOT / "salt")]},
            "pillar_roots": {"base": [str(pillar_dir)]},
            "module_dirs": [str(REPO_ROOT / "_modules")], "states_dirs": [str(REPO_ROOT / "_states")],
            "utils_dirs": [str(REPO_ROOT / "_utils")], "beacons_dirs": [str(REPO_ROOT / "_beacons")],
        })
        # A namespace of its own for the loaded modules: minions sharing one process would
        # otherwise share module objects, and a render saw another minion's grains.
        name = f"pgha_unit_{minion_id}_{system}".replace("-", "_").replace(".", "_")
        self.loaders = _loaders_class()(opts, loaded_base_name=name)

    def use(self, pillar: dict) -> "Minion":
        """Make *pillar* (the whole pillar, e.g. {"pgha": ...}) this minion's. Each loader
        holds its own pillar dict (``__pillar__``): it is swapped in place, so the loaded
        modules stay loaded; a state run compiles the pillar itself, from the file."""
        (self.pillar_dir / "test_pillar.sls").write_text(json.dumps(pillar))
        loaders = (self.loaders.utils, self.loaders.modules, self.loaders.states)
        for loader in loaders:
            held = loader.pack.get("__pillar__")
            if isinstance(held, dict):
                held.clear()
                held.update(pillar)
        every_opts = [self.loaders.opts] + [ldr.opts for ldr in loaders] + [ldr.pack.get("__opts__") for ldr in loaders]
        for opts in {id(o): o for o in every_opts if isinstance(o, dict)}.values():
            opts["pillar"] = pillar
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
