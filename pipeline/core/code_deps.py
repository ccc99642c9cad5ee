"""Code dependencies of the DVC stages, computed from the imports instead of typed by hand.

A stage's code deps are exactly the project-internal import closure of the module its ``cmd`` runs
(``python -m <module>``): every ``pipeline/`` and ``models/`` module it imports, directly or through other
modules, at the top level or inside a function, plus the package ``__init__.py`` files Python runs on the way.
A change to any of them reruns the stage; a change to anything else does not.

``python -m pipeline.core.code_deps --check`` lists the stages whose ``deps`` differ from their closure (exit 1);
``--write`` rewrites the code entries of every stage's ``deps`` in ``dvc.yaml`` (comments and every other
entry are kept). ``tests/test_code_deps.py`` runs the check, so a new import cannot be forgotten in dvc.yaml.
Non-code deps under the code folders (e.g. ``pipeline/querygen/prompts``, a folder without Python files) are
data, not code: they are left as they are.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from functools import lru_cache
from pathlib import Path

CODE_ROOTS = ("pipeline", "models")
ENTRY = re.compile(r"python\s+-m\s+([\w.]+)")


def module_path(root: Path, module: str) -> Path | None:
    """The file of project module ``module`` (``a.b`` → ``a/b.py`` or ``a/b/__init__.py``), else None."""
    if module.split(".")[0] not in CODE_ROOTS:
        return None
    base = root.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _packages_of(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@lru_cache(maxsize=None)
def _direct_imports(root: Path, path: Path) -> frozenset[str]:
    """Project modules that the file at ``path`` imports (anywhere in it), as dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(root).with_suffix("")
    here = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            for alias in node.names:  # `from pkg import submodule`
                found.add(f"{mod}.{alias.name}")
    return frozenset(m for m in found if module_path(root, m) is not None)


def closure(root: Path, module: str) -> list[str]:
    """Sorted repo-relative paths of every project file that running ``python -m module`` imports."""
    root = Path(root)
    todo = [module]
    seen: set[str] = set()
    files: set[Path] = set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        path = module_path(root, mod)
        if path is None:
            raise ValueError(f"{module}: imports {mod!r}, which is not a module of {', '.join(CODE_ROOTS)}")
        files.add(path)
        todo.extend(p for p in _packages_of(mod) if module_path(root, p) is not None)
        todo.extend(_direct_imports(root, path))
    return sorted(p.relative_to(root).as_posix() for p in files)


def is_code_dep(root: Path, dep: str) -> bool:
    """A dep entry that names Python code: a ``.py`` file or a code folder holding Python files."""
    if dep.split("/")[0] not in CODE_ROOTS:
        return False
    path = Path(root) / dep
    return dep.endswith(".py") or (path.is_dir() and any(path.rglob("*.py")))


def _stages(doc) -> list[tuple[str, dict]]:
    """(name, stage body) of every stage; the body of a foreach stage is its ``do`` mapping."""
    out = []
    for name, body in doc["stages"].items():
        out.append((name, body["do"] if "do" in body else body))
    return out


def stage_entry(body: dict) -> str | None:
    """The module a stage's ``cmd`` runs with ``python -m``, or None."""
    cmd = body.get("cmd", "")
    cmd = " ".join(cmd) if isinstance(cmd, list) else str(cmd)
    m = ENTRY.search(cmd)
    return m.group(1) if m else None


def differences(root: Path, doc) -> dict[str, dict[str, list[str]]]:
    """Per stage whose code deps differ from its closure: ``{"missing": [...], "extra": [...]}``."""
    out = {}
    for name, body in _stages(doc):
        entry = stage_entry(body)
        if entry is None:
            continue
        want = set(closure(root, entry))
        have = {str(d) for d in body.get("deps", []) if is_code_dep(root, str(d))}
        if want != have:
            out[name] = {"missing": sorted(want - have), "extra": sorted(have - want)}
    return out


def rewrite(root: Path, doc) -> int:
    """Replace the code entries of every stage's deps with its closure (first, sorted); return stages changed."""
    changed = 0
    for _, body in _stages(doc):
        entry = stage_entry(body)
        if entry is None:
            continue
        deps = body.get("deps")
        other = [d for d in (deps or []) if not is_code_dep(root, str(d))]
        new = closure(root, entry) + other
        if deps is None or [str(d) for d in deps] != new:
            if deps is None:
                body["deps"] = new
            else:  # in place, carrying each kept entry's end-of-line comment along with it
                notes = {str(d): deps.ca.items.get(i) for i, d in enumerate(deps) if hasattr(deps, "ca")}
                deps.clear()
                deps.extend(new)
                if hasattr(deps, "ca"):
                    deps.ca.items.clear()
                    for i, d in enumerate(new):
                        if notes.get(str(d)):
                            deps.ca.items[i] = notes[str(d)]
            changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    """CLI (see the module docstring)."""
    from ruamel.yaml import YAML

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="list stages whose code deps differ (exit 1 if any)")
    mode.add_argument("--write", action="store_true", help="rewrite the code deps of dvc.yaml in place")
    ap.add_argument("--dvc-yaml", default="dvc.yaml")
    args = ap.parse_args(argv)
    path = Path(args.dvc_yaml)
    root = path.resolve().parent
    yaml = YAML()
    yaml.width = 4096
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # dvc.yaml's own style
    doc = yaml.load(path.read_text(encoding="utf-8"))
    if args.check:
        diff = differences(root, doc)
        for name, d in diff.items():
            print(f"{name}: missing {d['missing']} extra {d['extra']}")
        return 1 if diff else 0
    n = rewrite(root, doc)
    from pipeline.core.io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            yaml.dump(doc, fh)
    print(f"{path}: code deps of {n} stage(s) rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
