"""Executed notebooks as offline HTML: math rendered to MathML, nothing fetched from a network."""

import nbformat
import pytest

from scalerepro.publishing.report import notebook_to_html


@pytest.fixture
def page(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title\n\nInline $N_{opt} \\propto C^{0.73}$ and display\n\n"
                                      "$$L = E + A/N^\\alpha$$\n\nCode keeps its dollars: `echo $HOME`."),
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output(
            "display_data", data={"text/markdown": "Summary: $a = 0.513$", "text/plain": "md"})]),
        nbformat.v4.new_markdown_cell("TeX that does not parse stays readable: $\\left( x$"),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    notebook_to_html(path, tmp_path / "nb.html")
    return (tmp_path / "nb.html").read_text()


def test_math_is_mathml_in_cells_and_markdown_outputs(page):
    assert page.count("<math") >= 3  # inline, display, and the markdown output's
    assert 'display="block"' in page
    assert "$N_{opt}" not in page and "$a = 0.513$" not in page and "$$" not in page
    assert "echo $HOME" in page


def test_tex_that_does_not_parse_is_shown_as_code(page):
    assert '<code class="tex">\\left( x</code>' in page


def test_page_loads_no_script(page):
    from test_browser import external_refs

    assert external_refs(page) == []
    assert "<script src" not in page and "mathjax" not in page.lower()
