"""Checks that need no lab: the formula's parameters are documented and consistent."""

from __future__ import annotations

import ast

import yaml

from pgha_lab.topology import REPO_ROOT

NEEDS_CLUSTER = False


def _open_maps():
    """The operator-owned maps the validator's typo check skips (_modules/pgha.py)."""
    tree = ast.parse((REPO_ROOT / "_modules/pgha.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "OPEN_MAPS":
            return ast.literal_eval(node.value)
    raise AssertionError("OPEN_MAPS not found in _modules/pgha.py")


OPEN = _open_maps()


def key_paths(data, prefix=()):
    paths = set()
    for key, value in data.items():
        path = prefix + (key,)
        paths.add(path)
        if isinstance(value, dict) and path not in OPEN:
            paths |= key_paths(value, path)
    return paths


def load(rel):
    return yaml.safe_load((REPO_ROOT / rel).read_text())["pgha"]


def test_pillar_example_documents_every_default_key():
    defaults, example = load("salt/pgha/defaults.yaml"), load("pillar/pillar.example")
    missing = sorted(":".join(p) for p in key_paths(defaults) - key_paths(example))
    unknown = sorted(":".join(p) for p in key_paths(example) - key_paths(defaults))
    assert missing == [], f"keys in defaults.yaml but not in pillar.example: {missing}"
    assert unknown == [], f"keys in pillar.example that defaults.yaml does not know: {unknown}"


def test_lab_pillar_only_uses_known_keys():
    defaults = load("salt/pgha/defaults.yaml")
    for rel in ["pillar/pgha.sls"] + [f"pillar/pgha_secrets/{p.name}" for p in
                                      sorted((REPO_ROOT / "pillar/pgha_secrets").glob("*.sls"))]:
        assert key_paths(load(rel)) - key_paths(defaults) == set(), rel


def test_generated_lab_pillar_only_uses_known_keys():
    from pgha_lab import labpillar
    assert key_paths(labpillar.topology()) - key_paths(load("salt/pgha/defaults.yaml")) == set()


def test_the_readme_lab_table_is_the_topology():
    """topology.py is the lab's one description; the README's table must say the same."""
    import re

    from pgha_lab.topology import HOST_ADDRESS, NODES, VIP
    rows = re.findall(r"^\| (\S+|\(VIP\))\s+\| (198\.51\.100\.\d+)\s+\| (.*?)\s*\|$",
                      (REPO_ROOT / "README.md").read_text(), re.M)
    table = {name: (address, roles) for name, address, roles in rows}
    assert table.pop("host")[0] == HOST_ADDRESS
    assert table.pop("(VIP)")[0] == VIP
    assert sorted(table) == sorted(NODES)
    for name, node in NODES.items():
        address, roles = table[name]
        assert address == node.address, name
        assert roles.startswith("`[" + ", ".join(node.roles) + "]`"), (name, roles)
        assert ("spare" in roles) == node.spare, (name, roles)


def test_a_failed_make_test_prints_the_master_logs_problems_with_each_failed_states_reason(tmp_path, monkeypatch):
    from pgha_lab import master
    monkeypatch.setattr(master, "MASTER_ROOT", tmp_path)
    assert master.log_problems() == [f"{tmp_path / 'master.log'}: no master log"]
    ok = "{'name': 'x', 'result': True, 'comment': 'fine'}, " * 100
    failed = "'name': 'alertmanager', 'result': False, 'comment': 'start of the service was attempted too often'"
    (tmp_path / "master.log").write_text(
        "[2026-12-04 01:09:03,916][salt.state :331 ][INFO    ][Main] all is well\n"
        f"[2026-12-04 01:09:03,917][salt.state :331 ][ERROR   ][Main] {{'ret': {{{ok}{failed}}}}}\n"
        "[2026-12-04 01:09:08,689][salt.utils.parsers :1074][WARNING ][Main] Master received a SIGTERM.\n")
    problems = master.log_problems()
    assert len(problems) == 2 and "all is well" not in problems[0]
    assert "attempted too often" in problems[0] and len(problems[0]) < 2000
    assert problems[1].endswith("Master received a SIGTERM.")
