"""The README's table of model families is the profiles' own (it cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

from arpo.tools.families import UNKNOWN, markdown_table, profiles

README = Path(__file__).parents[1] / "README.md"


def readme_table() -> str:
    text = README.read_text()
    found = re.search(r"<!-- families:start[^>]*-->\n(.*?)\n<!-- families:end -->", text, re.S)
    assert found, "the README lost its families table markers"
    return found.group(1)


def test_the_readme_families_table_matches_the_profiles() -> None:
    assert readme_table() == markdown_table(), (
        "README.md's families table is out of date; replace it with the output of\n"
        "python -c 'from arpo.tools.families import markdown_table; print(markdown_table())'"
    )


def test_the_table_has_a_row_per_profile() -> None:
    rows = [line for line in readme_table().splitlines()[2:] if line.startswith("| `")]
    named = {row.split("`")[1] for row in rows}
    assert named == set(profiles()) - {UNKNOWN}
