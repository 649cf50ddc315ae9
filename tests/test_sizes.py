"""No product module over 600 lines, no product function over 100 (issue 22).

Product code is everything under connector/, webhooks/ and mappings/ except tests beside a
source (webhooks/<source>/tests/) and the Alembic migrations (history: never edited, and the
initial schema is one long upgrade()). tests/ and scripts/ are not product code and are not
measured. A function is measured from its first decorator to its last line, nested functions
included in their parent.

KNOWN_OVERSIZE names what is still too big while its owner splits it; an entry that no longer
is too big fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("connector", "webhooks", "mappings")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100

# "path" for a module, "path::function" for a function (the qualified name within the module),
# each with the issue that splits it.
KNOWN_OVERSIZE: dict[str, str] = {}


def _product_files() -> list[Path]:
    files = []
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "migrations" in parts:
                continue
            files.append(path)
    return files


def _functions(tree: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    """(qualified name, length in lines) of every function, nested ones included."""
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            found.append((prefix + node.name, node.end_lineno - start + 1))
            found += _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            found += _functions(node, f"{prefix}{node.name}.")
    return found


def oversize() -> dict[str, int]:
    """Every module and function over its limit: name -> lines."""
    found: dict[str, int] = {}
    for path in _product_files():
        name = str(path.relative_to(ROOT))
        source = path.read_text()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found[name] = lines
        for function, length in _functions(ast.parse(source)):
            if length > MAX_FUNCTION_LINES:
                found[f"{name}::{function}"] = length
    return found


def test_no_product_module_or_function_is_too_long() -> None:
    too_big = {name: lines for name, lines in oversize().items() if name not in KNOWN_OVERSIZE}
    assert not too_big, (
        f"modules over {MAX_MODULE_LINES} lines or functions over {MAX_FUNCTION_LINES} "
        f"(split them along what they hold): {too_big}"
    )


def test_the_list_of_known_oversize_code_only_shrinks() -> None:
    fixed = sorted(set(KNOWN_OVERSIZE) - set(oversize()))
    assert not fixed, (
        f"no longer too big: remove from KNOWN_OVERSIZE in tests/test_sizes.py: {fixed}"
    )


def test_the_measure_counts_decorators_and_nested_functions() -> None:
    tree = ast.parse("@deco\ndef outer():\n    def inner():\n        pass\n    return inner\n")
    assert _functions(tree) == [("outer", 5), ("outer.inner", 2)]
