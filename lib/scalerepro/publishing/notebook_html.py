"""An executed notebook as one HTML file that reads the same offline.

nbconvert's HTML leaves math as ``$...$`` for MathJax, which it loads from a CDN, and links
require.js, mermaid and the widget renderer from CDNs too: offline, a reader sees raw TeX.
Here the math is converted to MathML when the page is made (latex2mathml; browsers draw
MathML themselves, no script needed) and every script URL block of the template is left
out, so the page fetches nothing. Images are embedded as data URIs.
"""

from __future__ import annotations

import jinja2
from latex2mathml.converter import convert
from markupsafe import escape
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

TEMPLATE = "scalerepro_offline.html.j2"
# The lab template without its script tags (each would point at a CDN, or at nothing), and
# MathML set a little larger, as MathJax sets math beside body text.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style>math { font-size: 1.1em; }</style>{%- endblock extra_css -%}
"""


def tex_to_mathml(tex: str, display: str = "inline") -> str:
    """MathML for one formula; TeX that latex2mathml cannot parse is shown as code, so one
    unusual formula never costs the whole page."""
    try:
        return convert(tex.strip(), display=display)
    except Exception:  # latex2mathml raises several exception types for unsupported TeX
        return f'<code class="tex">{escape(tex)}</code>'


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with math rendered to MathML instead of left for MathJax."""

    def inline_math(self, body: str) -> str:
        return tex_to_mathml(body, "inline")

    def block_math(self, body: str) -> str:
        return tex_to_mathml(body, "block")

    def latex_environment(self, name: str, body: str) -> str:
        return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")


class OfflineHTMLExporter(HTMLExporter):
    """HTMLExporter (lab template, images embedded) whose pages load nothing from a network."""

    def __init__(self, **kwargs):
        kwargs.setdefault("embed_images", True)
        kwargs.setdefault("template_file", TEMPLATE)
        kwargs.setdefault("extra_loaders", [jinja2.DictLoader({TEMPLATE: OFFLINE_TEMPLATE})])
        super().__init__(**kwargs)

    @jinja2.pass_context
    def markdown2html(self, context, source):
        """Markdown cells and text/markdown outputs, with MathML (same options as the parent)."""
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False, attachments=cell.get("attachments", {}), embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)
