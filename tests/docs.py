"""The README and the pages in docs/ read as data: their shell commands, Python examples and tables,
for the tests that hold them to the code (tests/test_docs.py)."""

import re
import shlex

from tests.helpers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def commands(text: str) -> list[str]:
    """Every command of the text's shell blocks: continued lines joined, comments dropped."""
    found = []
    for block in code_blocks(text, "sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                found.append(" ".join(line.split()))
    return found


def readme_command(start: str) -> list[str]:
    """The README's one command that starts with `start`, as words."""
    [command] = [c for c in commands(README.read_text()) if c.startswith(start)]
    return shlex.split(command)


def python_example(text: str) -> str:
    return code_blocks(text, "python")[0]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row whose first cell names something in backticks."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def section(text: str, heading: str) -> str:
    """The text under a `## heading`, up to the next one."""
    return re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M).group(1)
