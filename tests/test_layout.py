"""The package's layout: no import circle, no module over about 500 lines, a CLI that
answers at once (no torch for help and listings), a backbone catalogue equal to the registry."""

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "sparsest"


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str, modules: set) -> set:
    """Modules of the package that ``path`` imports at module level or in functions."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - node.level + 1]
                target = ".".join(parent + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                cand = f"{target}.{alias.name}"
                out.add(cand if cand in modules else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in modules and m != name}


def test_no_import_circle():
    files = {_module(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    graph = {m: _imports(p, m, modules) for m, p in files.items()}
    # a package's own __init__ is imported by its submodules; importing a submodule from its
    # package's __init__ is not a circle for Python, so drop child -> parent-package edges
    for m, deps in graph.items():
        graph[m] = {d for d in deps if not m.startswith(d + ".")}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for d in graph[m]:
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, cycles


def test_no_module_over_500_lines():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_help_and_listings_do_not_import_torch():
    code = ("import sys\nfrom sparsest.cli import main\n"
            "for argv in (['--help'], ['run', '--help'], ['train', '--help'], ['compress', '--help'], ['bench', '--help'],"
            " ['report', '--help'], ['predict', '--help'], ['plan', '--help'], ['datasets'], ['backbones']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'lightning', 'pandas', 'matplotlib') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in r.stdout, r.stdout[-500:] + r.stderr[-500:]


def test_listings_are_one_entry_a_line():
    r = subprocess.run([sys.executable, "-m", "sparsest", "backbones"], capture_output=True, text=True, env={"COLUMNS": "60",
                       "PATH": "/usr/bin:/bin"})
    lines = r.stdout.strip().splitlines()
    from sparsest.backbones import list_backbones

    assert len(lines) == len(list_backbones()) and all(line.split()[0] in list_backbones() for line in lines)


def test_catalogue_equals_registry():
    from sparsest.backbones import get_backbone_entry, list_backbones
    from sparsest.backbones.catalog import CATALOG

    assert sorted(CATALOG) == list_backbones()
    for name, (kind, summary, trainable) in CATALOG.items():
        e = get_backbone_entry(name)
        assert (e.kind, e.summary, e.trainable) == (kind, summary, trainable), name
