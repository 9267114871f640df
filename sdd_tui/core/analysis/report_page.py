"""The report's building blocks and their two renderings: one self-contained HTML page, or Markdown.

`core.analysis.report` says what the report holds as a list of blocks (headings, paragraphs, tables, figures,
commands, phase bands); this module writes them. HTML: every figure is inline SVG (matplotlib's, its
XML prolog and namespace declarations dropped: an HTML parser knows SVG), the style sits in the page
(`report_page.html`), nothing is fetched from anywhere. Markdown: the same blocks, figures written as
SVG files into a folder beside the page and linked relatively.

Text blocks may mark code with backticks (`sdd-tui analyze ...`); user text is escaped on both faces.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from matplotlib.figure import Figure as MplFigure

from ..errors import SddError

TEMPLATE = Path(__file__).with_name("report_page.html")
SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}  # no timestamps, no RDF block
NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    anchor: str = ""


@dataclass(frozen=True)
class Text:
    """A paragraph; `kind` "missing" says what is missing and how to add it, "finding" answers a question."""

    text: str
    kind: str = ""


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    caption: str = ""
    numeric: tuple[int, ...] = ()  # columns aligned right


@dataclass
class Figure:
    figure: MplFigure
    name: str  # the file's stem in Markdown's folder
    caption: str = ""


@dataclass(frozen=True)
class Commands:
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Bands:
    """Phase spans of one curve as a strip, each as wide as its share of the curve's rounds."""

    label: str
    spans: tuple[dict[str, Any], ...]


@dataclass
class Page:
    title: str
    lead: str
    blocks: list[Any] = field(default_factory=list)


# ---------------------------------------------------------------------------- HTML


def svg_text(figure: MplFigure) -> str:
    """The figure as SVG, its text as <text> in the page's sans-serif (half the time of glyphs as paths; no
    font is embedded or fetched)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "sans-serif"}):
        _lay_out_once(figure)
        figure.savefig(buffer, format="svg", metadata=SVG_METADATA)
    return buffer.getvalue()


def _lay_out_once(figure: MplFigure) -> None:
    """Run the figure's layout engine once and keep its result: savefig would lay out and draw twice."""
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.execute(figure)
        figure.set_layout_engine("none")


def inline_svg(figure: MplFigure) -> str:
    """The figure as an <svg> element for an HTML page: no prolog, no DOCTYPE, no namespace URIs."""
    text = svg_text(figure)
    text = text[text.index("<svg"):]
    head_end = text.index(">")
    return NAMESPACES.sub("", text[:head_end]) + text[head_end:]


def _inline_html(text: str) -> str:
    """Escaped text with `code` spans."""
    parts = str(text).split("`")
    return "".join(f"<code>{html.escape(part)}</code>" if index % 2 else html.escape(part)
                   for index, part in enumerate(parts))


def _table_html(block: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.columns)
    rows = []
    for row in block.rows:
        cells = "".join(f"<td class=\"num\">{_inline_html(_cell(v))}</td>" if i in block.numeric
                        else f"<td>{_inline_html(_cell(v))}</td>" for i, v in enumerate(row))
        rows.append(f"<tr>{cells}</tr>")
    caption = f"<p class=\"caption\">{_inline_html(block.caption)}</p>" if block.caption else ""
    return f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _bands_html(block: Bands) -> str:
    total = sum(_width(span) for span in block.spans) or 1
    cells = "".join(
        f"<div class=\"band-{html.escape(span['name'])}\" style=\"width: {100 * _width(span) / total:.2f}%\" "
        f"title=\"{html.escape(_span_text(span))}\">{html.escape(span['name'])}</div>" for span in block.spans)
    return f"<p>{_inline_html(block.label)}</p><div class=\"bands\">{cells}</div>"


def _width(span: dict[str, Any]) -> float:
    return max(span["to_round"] - span["from_round"], 0.5)


def _span_text(span: dict[str, Any]) -> str:
    return (f"{span['name']}: rounds {span['from_round']}-{span['to_round']}, sparsity "
            f"{100 * span['from_sparsity']:.2f}% to {100 * span['to_sparsity']:.2f}%")


def block_html(block: Any) -> str:
    if isinstance(block, Heading):
        anchor = f" id=\"{html.escape(block.anchor)}\"" if block.anchor else ""
        return f"<h{block.level}{anchor}>{_inline_html(block.text)}</h{block.level}>"
    if isinstance(block, Text):
        kind = f" class=\"{block.kind}\"" if block.kind else ""
        return f"<p{kind}>{_inline_html(block.text)}</p>"
    if isinstance(block, Table):
        return _table_html(block)
    if isinstance(block, Figure):
        caption = f"<figcaption>{_inline_html(block.caption)}</figcaption>" if block.caption else ""
        return f"<figure>{inline_svg(block.figure)}{caption}</figure>"
    if isinstance(block, Commands):
        return "<pre>" + "\n".join(html.escape(line) for line in block.lines) + "</pre>"
    if isinstance(block, Bands):
        return _bands_html(block)
    raise TypeError(f"not a report block: {block!r}")


def page_html(page: Page, generator: str) -> str:
    contents = [b for b in page.blocks if isinstance(b, Heading) and b.level == 2 and b.anchor]
    nav = "<nav><ol>" + "".join(f"<li><a href=\"#{html.escape(h.anchor)}\">{html.escape(h.text)}</a></li>"
                                for h in contents) + "</ol></nav>"
    body = [f"<h1>{html.escape(page.title)}</h1>", f"<p class=\"lead\">{_inline_html(page.lead)}</p>", nav]
    body += [block_html(block) for block in page.blocks]
    template = Template(TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(title=html.escape(page.title), generator=html.escape(generator), body="\n".join(body))


# ---------------------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    """User text in Markdown: no raw HTML."""
    return str(text).replace("<", "&lt;").replace(">", "&gt;")


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _table_md(block: Table) -> str:
    def row(cells) -> str:
        return "| " + " | ".join(_md(_cell(c)).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    lines = [f"*{_md(block.caption)}*", ""] if block.caption else []
    lines += [row(block.columns), "|" + "|".join("---:" if i in block.numeric else "---"
                                                  for i in range(len(block.columns))) + "|"]
    lines += [row(r) for r in block.rows]
    return "\n".join(lines)


def block_md(block: Any, figures: Path, link: str) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + _md(block.text)
    if isinstance(block, Text):
        prefix = {"missing": "> **missing:** ", "finding": "> "}.get(block.kind, "")
        return prefix + _md(block.text)
    if isinstance(block, Table):
        return _table_md(block)
    if isinstance(block, Figure):
        path = figures / f"{block.name}.svg"
        path.write_text(svg_text(block.figure), encoding="utf-8")
        return f"![{block.name}]({link}/{path.name})" + (f"\n\n*{_md(block.caption)}*"
                                                                             if block.caption else "")
    if isinstance(block, Commands):
        return "```sh\n" + "\n".join(block.lines) + "\n```"
    if isinstance(block, Bands):
        return _md(block.label) + ": " + "; ".join(_span_text(span) for span in block.spans)
    raise TypeError(f"not a report block: {block!r}")


def page_md(page: Page, figures: Path) -> str:
    """The page as Markdown; its figures are written into `figures` (a folder beside the page)."""
    figures.mkdir(parents=True, exist_ok=True)
    parts = [f"# {_md(page.title)}", _md(page.lead)]
    parts += [block_md(block, figures, figures.name) for block in page.blocks]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------- files


FORMATS = ("html", "md")


def figures_folder(path: Path) -> Path:
    """Where a Markdown report's figures go: `<stem>_figures/` beside it."""
    return path.with_name(f"{path.stem}_figures")


def write_page(page: Page, path: Path, fmt: str, generator: str) -> Path:
    """Write the page as `fmt` (html | md) to `path`; an unwritable path is an SddError naming the fix."""
    if fmt not in FORMATS:
        raise SddError(f"--format {fmt!r}: use html or md")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = page_html(page, generator) if fmt == "html" else page_md(page, figures_folder(path))
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise SddError(f"cannot write {path} ({error.strerror}); choose another -o path") from None
    return path
