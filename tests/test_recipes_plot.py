"""benchmarks/recipes_plot.py reads the README's evidence table (issue 13): every row of the real table, and a
clear error naming the line for a row it cannot read."""

from pathlib import Path

import pytest

from support.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
recipes = load_script("recipes_plot")


def test_reads_every_row_of_the_readme_table_with_its_intervals():
    rows = recipes.read_table(ROOT / "README.md")
    first = rows[0]
    assert (first.seeds, first.difference, first.items, first.over_seeds) == (3, -3.0, (-6.2, 0.2), (-14.4, 8.4))
    pooled = next(row for row in rows if row.recipe == "the chat recipe at 25%, both machines")
    assert (pooled.difference, pooled.items, pooled.over_seeds) == (2.5, None, (-2.2, 7.2))  # bold cells read too
    assert all(row.seeds >= 2 for row in rows)


def test_a_row_it_cannot_read_names_its_line(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n" + recipes.HEADER + "\n|---|---|---|---|---|---|\n| a recipe | three | +1.0 | | | |\n")
    with pytest.raises(SystemExit, match=r"README.md:4: cannot read this row"):
        recipes.read_table(readme)


def test_a_table_without_rows_or_a_file_without_the_table_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(recipes.HEADER + "\n|---|---|---|---|---|---|\n\nmore text\n")
    with pytest.raises(SystemExit, match="has no rows"):
        recipes.read_table(readme)
    readme.write_text("no table here\n")
    with pytest.raises(SystemExit, match="no line reads"):
        recipes.read_table(readme)
