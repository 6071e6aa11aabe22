"""The package stays a size a newcomer can read: no module over 600 lines, and no function over 80
lines unless its docstring says why ("Long by design: ...")."""
from __future__ import annotations

import ast

from conftest import ROOT

PACKAGE = ROOT / "src" / "audiofootprint"
MODULE_LINES, FUNCTION_LINES, REASON = 600, 80, "Long by design"


def test_no_module_is_over_600_lines():
    long = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: lines for name, lines in long.items() if lines > MODULE_LINES} == {}


def test_a_function_over_80_lines_says_why():
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > FUNCTION_LINES and REASON not in (ast.get_docstring(node) or ""):
                    unexplained.append(f"{path.relative_to(PACKAGE)}:{node.name} ({lines} lines)")
    assert unexplained == []
