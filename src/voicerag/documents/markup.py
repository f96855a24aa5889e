"""Documentation markup turned into what a person reads: front matter into metadata, the extensions of the
documentation generators (mkdocs admonitions and tabs, Hugo/Jekyll shortcodes and template placeholders, MDX
imports and components, MyST directives and roles, HTML comments) into prose or nothing, and reStructuredText
(Sphinx) read with docutils, its directives and roles turned into text.

Every reader returns the same block text the markdown loader makes (``# heading``, paragraphs, ``- item``,
table rows ``a | b`` under their header row, fenced code), blocks separated by blank lines, and the title it
found (front matter, then the first heading; the caller falls back to the file name)."""

from __future__ import annotations

import re
import textwrap
import tomllib
from dataclasses import dataclass, field
from typing import Any

_FRONT_MATTER = re.compile(r"\A\ufeff?(---|\+\+\+)[ \t]*\n(.*?\n)?\1[ \t]*(?:\n|\Z)", re.DOTALL)
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})(.*)$")
_ADMONITION = re.compile(r'^(!!!|\?\?\?\+?)[ \t]+([\w-]+)(?:[ \t]+"([^"]*)")?[ \t]*$')
_TAB = re.compile(r'^(===\+?)[ \t]+"([^"]*)"[ \t]*$')
_BLOCK_OPEN = re.compile(r"^///[ \t]*([\w-]+)(?:[ \t]*\|[ \t]*(.*))?$")  # pymdownx blocks: /// details | Title
_MYST_FENCE = re.compile(r"^([ \t]*)(`{3,}|:{3,})\{([\w:-]+)\}[ \t]*(.*)$")
_MYST_ROLE = re.compile(r"\{[\w:-]+\}`([^`]*)`")
_RST_ROLE = re.compile(r":[\w:.-]+:`([^`]*)`")
_ROLE_TARGET = re.compile(r"^(.*?)\s*<[^<>]*>$", re.DOTALL)  # :ref:`text <label>` -> text
_SHORTCODE_PAIR = re.compile(
    r"\{\{[<%]\s*(clients-example|highlight|code)\b[^}]*[>%]\}\}(.*?)\{\{[<%]\s*/\s*\1\s*[>%]\}\}", re.DOTALL
)
_SHORTCODE = re.compile(r"\{\{[<%].*?[>%]\}\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)  # Jinja/Liquid placeholders and tags
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_ATTR_LIST = re.compile(r"[ \t]*\{:?[ \t]*(?:[#.][\w-]+[ \t]*|[\w-]+=\S+[ \t]*)+\}")  # {#anchor .class key=v}
_EMPTY_ANCHOR = re.compile(r"\[\]\(\)")
_REF_LINK = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")  # autorefs: [`TypedDict`][typing.TypedDict]
_FOOTNOTE_REF = re.compile(r"\[\^[^\]\s]+\]")
_MDX_IMPORT = re.compile(r"^(?:import|export)\s.*$", re.MULTILINE)
_MYST_LABEL = re.compile(r"^\([\w:.-]+\)=[ \t]*$", re.MULTILINE)
_MKDOCSTRINGS = re.compile(r"^:::[ \t]+\S+.*$")
_CODE_ANNOTATION = re.compile(r"[ \t]*#[ \t]*\(\d+\)!?[ \t]*$", re.MULTILINE)


@dataclass
class Parsed:
    """A file's readable text (blocks), its title if the markup gave one, and its front matter."""

    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def split_front_matter(source: str) -> tuple[dict[str, Any], str]:
    """YAML (``---``) or TOML (``+++``) front matter as a dict, and the text after it. Front matter that does not
    parse is dropped all the same: it is never text."""
    match = _FRONT_MATTER.match(source)
    if not match:
        return {}, source
    body, rest = match.group(2) or "", source[match.end() :]
    try:
        if match.group(1) == "+++":
            data: Any = tomllib.loads(body)
        else:
            import yaml

            data = yaml.safe_load(body)
    except Exception:  # malformed front matter: still metadata, never text  # noqa: BLE001
        data = None
    return (data if isinstance(data, dict) else {}), rest


def front_matter_title(meta: dict[str, Any]) -> str:
    for key in ("title", "linkTitle", "sidebar_label"):
        value = meta.get(key)
        if isinstance(value, str | int | float) and str(value).strip():
            return str(value).strip()
    return ""


def clean_markdown_source(source: str) -> str:
    """The markdown of documentation generators made plain CommonMark: admonitions, tabs and blocks become a
    title line and their dedented body; shortcodes, placeholders, comments, MDX imports, attribute lists and
    anchors go; MyST directives become code (code blocks) or prose, and roles their text. Fenced code is kept
    as it is, but for mkdocs code annotations (``# (1)!``)."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    source = _SHORTCODE_PAIR.sub(lambda m: "\n```\n" + m.group(2).strip("\n") + "\n```\n", source)
    out: list[str] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        myst = _MYST_FENCE.match(line)
        if myst:
            i = _myst_directive(lines, i, myst, out)
            continue
        if fence:  # copy the code block untouched, to its closing fence
            indent, marks = fence.group(1), fence.group(2)
            block = [f"{indent}{marks}{_fence_language(fence.group(3))}"]
            i += 1
            while i < len(lines) and not re.match(rf"^[ \t]*{re.escape(marks[0])}{{{len(marks)},}}[ \t]*$", lines[i]):
                block.append(_CODE_ANNOTATION.sub("", lines[i]))
                i += 1
            block.append(f"{indent}{marks}")
            out.extend(block)
            i += 1
            continue
        admonition, tab, opened = _ADMONITION.match(line), _TAB.match(line), _BLOCK_OPEN.match(line.strip())
        if admonition or tab:
            if admonition:
                kind, title = admonition.group(2), admonition.group(3)
                heading = title if title is not None else kind.replace("-", " ").capitalize()
            else:
                heading = tab.group(2)  # type: ignore[union-attr]
            body, i = _indented_body(lines, i + 1)
            if heading.strip():
                out.extend(["", f"{heading.strip()}:" if tab else _as_sentence(heading), ""])
            out.extend(clean_markdown_source(textwrap.dedent("\n".join(body))).split("\n"))
            out.append("")
            continue
        if opened and line.strip() != "///":
            name, title = opened.group(1), (opened.group(2) or "").strip()
            if name.startswith("version-") or name in ("deprecated",):
                out.extend(["", _version_note(name, title), ""])
            elif title:
                out.extend(["", _as_sentence(title), ""])
            i += 1
            continue
        if _MKDOCSTRINGS.match(line):  # ::: module.Name with indented options: rendered from code at build
            _, i = _indented_body(lines, i + 1)
            continue
        if line.strip() == "///":
            i += 1
            continue
        out.append(line)
        i += 1
    text = "\n".join(out)
    text = _COMMENT.sub("", text)
    text = _MDX_IMPORT.sub("", text)
    text = _MYST_LABEL.sub("", text)
    return _inline_cleanup(text)


def _inline_cleanup(text: str) -> str:
    """Outside fenced code: shortcodes, placeholders, attribute lists, anchors, autorefs and roles."""
    parts = re.split(r"(^[ \t]*(?:`{3,}|~{3,}).*?^[ \t]*(?:`{3,}|~{3,})[ \t]*$)", text, flags=re.MULTILINE | re.DOTALL)
    for n in range(0, len(parts), 2):
        piece = _SHORTCODE.sub("", parts[n])
        piece = _PLACEHOLDER.sub("", piece)
        piece = _EMPTY_ANCHOR.sub("", piece)
        piece = _ATTR_LIST.sub("", piece)
        piece = _REF_LINK.sub(r"\1", piece)
        piece = _FOOTNOTE_REF.sub("", piece)
        piece = _MYST_ROLE.sub(lambda m: _role_text(m.group(1)), piece)
        piece = _RST_ROLE.sub(lambda m: _role_text(m.group(1)), piece)
        piece = re.sub(r"<(?:/?(?:nobr|span|br|kbd|sup|sub|abbr|small|mark|em|strong|b|i|u|code)\b[^>]*)/?>", "", piece)
        parts[n] = piece
    return "".join(parts)


def _role_text(inner: str) -> str:
    match = _ROLE_TARGET.match(inner)
    text = (match.group(1) if match and match.group(1) else inner).lstrip("~!")
    return f"`{text}`"


def _fence_language(info: str) -> str:
    """A fence's language alone (mkdocs attributes such as ``{test="skip"}`` or ``title="x"`` go)."""
    info = info.strip().lstrip("{").strip()
    return re.split(r"[\s{}]", info, maxsplit=1)[0].lstrip(".") if info else ""


def _indented_body(lines: list[str], i: int) -> tuple[list[str], int]:
    """The lines indented under a block opener (blank lines inside included), and the index after them."""
    body: list[str] = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(("    ", "\t"))):
        body.append(lines[i])
        i += 1
    while body and not body[-1].strip():
        body.pop()
        i -= 1
    return body, i


def _myst_directive(lines: list[str], i: int, match: re.Match[str], out: list[str]) -> int:
    """A MyST directive (```{name} argument ... ```): code directives stay code, ``eval-rst`` is read as
    reStructuredText, admonitions and version notes become prose, tables of contents go."""
    marks, name, argument = match.group(2), match.group(3), match.group(4).strip()
    body: list[str] = []
    i += 1
    while i < len(lines) and not re.match(rf"^[ \t]*{re.escape(marks[0])}{{{len(marks)},}}[ \t]*$", lines[i]):
        body.append(lines[i])
        i += 1
    i += 1
    content = [line for line in body if not re.match(r"^[ \t]*:[\w-]+:", line)]  # directive options
    while content and not content[0].strip():
        content.pop(0)
    if name in ("code-block", "code", "sourcecode", "literalinclude"):
        out.extend(["```", *content, "```"])
    elif name == "eval-rst":
        out.extend(["", rst_to_blocks("\n".join(body)).text, ""])
    elif name in ("contents", "toctree", "include", "image", "figure", "raw"):
        pass
    else:
        lead = _version_note(name, argument) if name.startswith(("version", "deprecated")) else _as_sentence(argument)
        out.extend(["", lead, "", clean_markdown_source("\n".join(content)), ""])
    return i


def _version_note(name: str, argument: str) -> str:
    version, _, rest = argument.partition(" ")
    words = {
        "versionadded": "Added in version",
        "version-added": "Added in version",
        "versionchanged": "Changed in version",
        "version-changed": "Changed in version",
        "deprecated": "Deprecated since version",
        "version-deprecated": "Deprecated since version",
    }
    lead = words.get(name, name.replace("-", " ").capitalize())
    return f"{lead} {version}.{(' ' + rest.strip()) if rest.strip() else ''}".strip() if version else f"{lead}."


def _as_sentence(title: str) -> str:
    title = title.strip()
    if not title:
        return ""
    return title if title[-1] in ".:!?" else f"{title}:"


# ---- reStructuredText ----------------------------------------------------------------------------------------

_RST_DIRECTIVE = re.compile(r"^\s*\.\.\s+([\w:.-]+)::", re.MULTILINE)
_RST_ROLE_NAME = re.compile(r":([\w:.-]+):`")
_CODE_DIRECTIVES = {"code-block", "sourcecode", "code", "literalinclude", "doctest", "testcode", "testoutput"}
_DROP_DIRECTIVES = {
    "toctree",
    "contents",
    "currentmodule",
    "module",
    "index",
    "only",
    "highlight",
    "raw",
    "include",
    "image",
    "figure",
    "meta",
    "tabularcolumns",
    "automodule",
    "autosummary",
}
_VERSION_DIRECTIVES = {"versionadded", "versionchanged", "deprecated", "versionremoved"}


def rst_to_blocks(source: str) -> Parsed:
    """reStructuredText (with Sphinx's directives and roles, which plain docutils does not know) as blocks:
    code-like directives become code, version notes and admonitions prose, API directives their signature as a
    heading with their content, tables of contents nothing; every role becomes its text."""
    from docutils import nodes
    from docutils.core import publish_doctree

    _register_rst_extensions(source)
    meta, source = split_front_matter(source)
    doctree = publish_doctree(
        source,
        settings_overrides={
            "report_level": 5,
            "halt_level": 5,
            "warning_stream": False,
            "file_insertion_enabled": False,
            "raw_enabled": False,
            "input_encoding": "unicode",
            "doctitle_xform": False,
        },
    )
    blocks: list[str] = []
    _rst_walk(doctree, blocks, 0, nodes)
    title = front_matter_title(meta)
    if not title:
        for block in blocks:
            if block.startswith("#"):
                title = block.lstrip("#").strip()
                break
    return Parsed("\n\n".join(b for b in blocks if b.strip()), title, meta)


def _rst_walk(node: Any, blocks: list[str], depth: int, nodes: Any) -> None:
    for child in node.children:
        if isinstance(child, nodes.section):
            title = child.next_node(nodes.title)
            if title is not None:
                blocks.append("#" * min(6, depth + 1) + " " + title.astext().strip())
            _rst_walk(child, blocks, depth + 1, nodes)
        elif isinstance(
            child,
            nodes.title
            | nodes.system_message
            | nodes.comment
            | nodes.target
            | nodes.substitution_definition
            | nodes.raw
            | nodes.image,
        ):
            continue
        elif isinstance(child, nodes.literal_block | nodes.doctest_block):
            code = re.sub(r"\n\s*\n", "\n", child.astext().strip("\n"))
            blocks.append(f"```\n{code}\n```")
        elif isinstance(child, nodes.paragraph | nodes.line_block):
            blocks.append(_rst_inline(child, nodes))
        elif isinstance(child, nodes.bullet_list | nodes.enumerated_list):
            for item in child.children:
                inner: list[str] = []
                _rst_walk(item, inner, depth, nodes)
                if inner:
                    blocks.append("- " + inner[0])
                    blocks.extend(inner[1:])
        elif isinstance(child, nodes.definition_list):
            for item in child.children:
                term = item.next_node(nodes.term)
                definition = item.next_node(nodes.definition)
                inner = []
                if definition is not None:
                    _rst_walk(definition, inner, depth, nodes)
                head = term.astext().strip() if term is not None else ""
                blocks.append(f"- {head}: {inner[0]}" if inner else f"- {head}")
                blocks.extend(inner[1:])
        elif isinstance(child, nodes.field_list):
            for item in child.children:
                name, body = item.children[0].astext(), item.children[1]
                inner = []
                _rst_walk(body, inner, depth, nodes)
                blocks.append(f"- {name}: {' '.join(inner)}")
        elif isinstance(child, nodes.table):
            for row in child.findall(nodes.row):
                blocks.append(" | ".join(" ".join(e.astext().split()) for e in row.children))
        elif isinstance(child, nodes.Admonition):
            title = child.next_node(nodes.title)
            label = title.astext() if title is not None else child.__class__.__name__.capitalize()
            blocks.append(_as_sentence(label))
            _rst_walk(child, blocks, depth, nodes)
        else:
            _rst_walk(child, blocks, depth, nodes)


def _rst_inline(node: Any, nodes: Any) -> str:
    parts = []
    for child in node.findall(include_self=False, descend=True):
        if isinstance(child, nodes.Text) and not isinstance(child.parent, nodes.system_message | nodes.problematic):
            parts.append(str(child))
    return " ".join("".join(parts).split())


_registered: set[str] = set()


def _register_rst_extensions(source: str) -> None:
    """Teach docutils the directives and roles a source uses that it does not know (Sphinx's, and any
    extension's), as generic ones that keep their text."""
    from docutils.parsers.rst import directives, roles

    for name in set(_RST_DIRECTIVE.findall(source)) - _registered:
        _registered.add(name)
        known = name in directives._directive_registry or name in directives._directives  # type: ignore[attr-defined]
        if not known or name in _CODE_DIRECTIVES or name in _DROP_DIRECTIVES:
            directives.register_directive(name, _generic_directive(name))
    for name in set(_RST_ROLE_NAME.findall(source)) - _registered:
        _registered.add(name)
        if name not in roles._role_registry and name not in roles._roles:  # type: ignore[attr-defined]
            roles.register_local_role(name, _text_role)


def _text_role(
    name: str, rawtext: str, text: str, lineno: int, inliner: Any, options: Any = None, content: Any = None
) -> tuple[list[Any], list[Any]]:
    from docutils import nodes

    match = _ROLE_TARGET.match(text)
    shown = (match.group(1) if match and match.group(1) else text).lstrip("~!")
    return [nodes.literal(rawtext, shown)], []


def _generic_directive(name: str) -> Any:
    from docutils import nodes
    from docutils.parsers.rst import Directive

    class Generic(Directive):
        has_content = True
        optional_arguments = 10
        final_argument_whitespace = True
        option_spec = None  # any option

        def run(self) -> list[Any]:
            argument = " ".join(self.arguments).strip()
            text = "\n".join(self.content)
            if name in _DROP_DIRECTIVES:
                return []
            if name in _CODE_DIRECTIVES or name.endswith((":example", ":run")):
                return [nodes.literal_block(text, text)] if text.strip() else []
            container = nodes.container()
            if name in _VERSION_DIRECTIVES:
                container += nodes.paragraph(text=_version_note(name, argument))
            elif name.startswith("auto") or ":" in name or name in ("function", "class", "method", "data"):
                if argument:
                    container += nodes.paragraph(text=argument.split("(")[0].strip())
            elif argument:
                container += nodes.paragraph(text=_as_sentence(argument))
            if text.strip():
                self.state.nested_parse(self.content, self.content_offset, container)
            return [container]

    Generic.option_spec = _AnyOptions()  # type: ignore[assignment]
    return Generic


class _AnyOptions(dict):  # type: ignore[type-arg]
    """An option spec that accepts every option name (their values are not shown)."""

    def __contains__(self, _key: object) -> bool:
        return True

    def __getitem__(self, _key: str) -> Any:
        return lambda value: value
