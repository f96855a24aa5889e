"""Load files (txt, md, html, pdf, docx, jsonl) into plain text documents."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicerag.documents.markup import (
    Parsed,
    clean_markdown_source,
    front_matter_title,
    rst_to_blocks,
    split_front_matter,
)
from voicerag.errors import DocumentError, TooLarge, UnsupportedFormat, VoiceRAGError

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".mdx", ".rst", ".html", ".htm", ".pdf", ".docx", ".jsonl")
# Files without a suffix (LICENSE, README, NOTICE, CHANGELOG) are read as plain text when they are UTF-8 or
# UTF-16 text; binary ones are skipped (and listed when a folder is ingested).
PLAIN_TEXT_NAMES = re.compile(r"^[A-Za-z][\w-]*$")


@dataclass
class Document:
    """One document to ingest: a stable id, a title, its text and free metadata."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def _decode(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return text
    raise DocumentError(f"{name}: not UTF-8 or UTF-16 text; save it as UTF-8 and try again")


def _text(data: bytes, name: str) -> str:
    return _decode(data, name)


def _markdown(data: bytes, name: str) -> Parsed:
    """Markdown parsed (CommonMark and tables, markdown-it-py) into blocks separated by blank lines, after the
    documentation generators' markup is made plain (``markup.clean_markdown_source``): headings keep their ``#``
    marks (answers skip them and sources show the section), code stays fenced with no blank line inside
    (answers and the voice skip it), list items become ``- item``, table rows ``header: cell | header: cell``
    (each row says what its cells are). Inline marks go and their text stays as written: ``VOICERAG_DATA_DIR``
    keeps its underscores; a link keeps its text and loses its URL. Front matter is metadata, never text."""
    from markdown_it import MarkdownIt

    meta, source = split_front_matter(_decode(data, name))
    tokens = MarkdownIt("commonmark").enable("table").parse(clean_markdown_source(source))
    blocks: list[str] = []
    prefix, row, header = "", None, None
    first_heading = ""
    for token in tokens:
        if token.type == "heading_open":
            prefix = "#" * int(token.tag[1]) + " "
        elif token.type == "list_item_open":
            prefix = "- "
        elif token.type == "thead_open":
            header = []
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            if header == []:
                header = row
            elif header and len(header) == len(row):
                blocks.append(" | ".join(f"{h}: {c}" if h else c for h, c in zip(header, row, strict=True) if c))
            else:
                blocks.append(" | ".join(row))
            row = None
        elif token.type == "table_close":
            header = None
        elif token.type == "inline":
            text = _inline_text(token.children or [])
            if row is not None:
                row.append(text)
            elif text:
                if prefix.startswith("#") and not first_heading:
                    first_heading = text
                blocks.append(prefix + text)
                prefix = ""
        elif token.type in ("fence", "code_block"):
            code = re.sub(r"\n\s*\n", "\n", token.content.strip("\n"))
            if code.strip():
                blocks.append(f"```\n{code}\n```")
        elif token.type == "html_block":
            blocks.append(html_text(token.content))
    text = "\n\n".join(block for block in blocks if block.strip())
    return Parsed(text, front_matter_title(meta) or first_heading, meta)


def html_text(fragment: str) -> str:
    """The text of an HTML fragment (tags go, entities are decoded)."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", " ", fragment)).strip()


def _rst(data: bytes, name: str) -> Parsed:
    return rst_to_blocks(_decode(data, name))


def _inline_text(children: list[Any]) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(child.content)  # the alt text
        elif child.type == "html_inline" and child.content.lower().startswith("<br") or child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    return "".join(parts).strip()


def _html(data: bytes, name: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return soup.get_text("\n")


MAX_PDF_PAGES = 5000  # the trust issue saw a 20,000-page PDF take 228 s and 0.8 GB; past any one document asked about
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024  # a .docx is a zip: refuse what would expand past this (zip bombs)


def _pdf(data: bytes, name: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair notes are noise; what fails is raised below

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise DocumentError(f"{name}: the PDF is encrypted; upload an unencrypted PDF")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise TooLarge(
                f"{name}: the PDF has {len(reader.pages)} pages; at most {MAX_PDF_PAGES} are accepted "
                "(split it into several files)"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except (DocumentError, TooLarge):
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(f"{name}: not a readable PDF ({exc}); upload a valid PDF file") from exc
    return "\n\n".join(pages)


def _docx(data: bytes, name: str) -> str:
    import zipfile

    from docx import Document as DocxDocument
    from lxml import etree

    try:
        _check_docx_archive(data, name)
        doc = DocxDocument(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, etree.LxmlError, EOFError) as exc:
        raise DocumentError(f"{name}: not a readable .docx file ({exc}); upload a Word 2007+ document") from exc
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def _check_docx_archive(data: bytes, name: str) -> None:
    """Inflate every member a megabyte at a time, counting what really comes out (a zip may under-state its
    sizes) against MAX_UNZIPPED_BYTES; a member whose data does not match its checksum fails here, and XML that
    declares a DOCTYPE or entities (entity bombs) is refused. Memory stays at a megabyte whatever the archive."""
    import zipfile

    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            head = b""
            with archive.open(info) as member:
                while piece := member.read(1 << 20):
                    total += len(piece)
                    if total > MAX_UNZIPPED_BYTES:
                        raise TooLarge(
                            f"{name}: the .docx expands to more than {MAX_UNZIPPED_BYTES} bytes "
                            f"({MAX_UNZIPPED_BYTES // 1048576} MB), the most accepted"
                        )
                    if len(head) < 4096:
                        head += piece[:4096]
            if info.filename.endswith((".xml", ".rels")) and (b"<!DOCTYPE" in head or b"<!ENTITY" in head):
                raise DocumentError(f"{name}: {info.filename} declares a DOCTYPE or entities, which Word never writes")


_READERS = {
    ".txt": _text,
    ".md": _markdown,
    ".markdown": _markdown,
    ".mdx": _markdown,
    ".rst": _rst,
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
    ".docx": _docx,
}


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"(?<=\S)[ \t\f\v]+", " ", text.replace("\t", "    "))  # a line's indentation (code) stays
    text = re.sub(r"\n\s*\n+", "\n\n", text)
    return text.strip()


def parse_jsonl(data: bytes, name: str) -> list[Document]:
    """Each line: {"id"|"_id", "text", "title"?, "metadata"?}."""
    docs = []
    for number, line in enumerate(_decode(data, name).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{name} line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DocumentError(f"{name} line {number}: expected an object with 'id' and 'text'")
        doc_id = row.get("id", row.get("_id"))
        text = _normalise(str(row.get("text", "")))
        if doc_id is None or not text:
            raise DocumentError(f"{name} line {number}: each line needs a non-empty 'id' (or '_id') and 'text'")
        docs.append(
            Document(id=str(doc_id), text=text, title=str(row.get("title") or ""), metadata=row.get("metadata") or {})
        )
    if not docs:
        raise DocumentError(f"{name}: no documents in this JSONL file")
    return docs


def load_bytes(data: bytes, name: str, doc_id: str | None = None) -> list[Document]:
    """Parse one file's bytes by its name's suffix. Raises DocumentError/UnsupportedFormat for bad input."""
    suffix = Path(name).suffix.lower()
    if suffix == ".jsonl":
        return parse_jsonl(data, name)
    reader = _READERS.get(suffix) or (_text if not suffix and PLAIN_TEXT_NAMES.match(Path(name).name) else None)
    if reader is None:
        raise UnsupportedFormat(
            f"{name}: unsupported file type {suffix or '(none)'}; accepted: {', '.join(SUPPORTED_SUFFIXES)}, "
            "and plain text files without a suffix (LICENSE, README)"
        )
    if not data.strip():
        raise DocumentError(f"{name}: the file is empty")
    parsed = reader(data, name)
    if isinstance(parsed, str):
        parsed = Parsed(parsed)
    text = _normalise(parsed.text)
    if not text:
        hint = "a scanned PDF needs OCR first" if suffix == ".pdf" else "it holds only markup, code or directives"
        raise DocumentError(f"{name}: no text could be extracted ({hint})")
    title = parsed.title or file_title(name)
    if suffix in (".html", ".htm"):
        from bs4 import BeautifulSoup

        head = BeautifulSoup(data, "html.parser").title
        title = head.get_text().strip() if head and head.get_text().strip() else title
    metadata: dict[str, Any] = {"source": name}
    if parsed.metadata:
        metadata["front_matter"] = json.loads(json.dumps(parsed.metadata, default=str))
    return [Document(id=doc_id or name, text=text, title=title[:200], metadata=metadata)]


def file_title(name: str) -> str:
    """A title from a file's name: ``getting-started.md`` -> "Getting started"; ``index`` and ``README`` take
    their folder's name."""
    path = Path(name)
    stem = (
        path.stem
        if path.stem.lower() not in ("index", "readme", "_index") or not path.parent.name
        else path.parent.name
    )
    words = re.sub(r"[_-]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else name


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Yield (file, stable id) for each supported file; a file's id is its path relative to the argument."""
    for root in paths:
        if not root.exists():
            raise DocumentError(f"{root}: no such file or directory")
        if root.is_file():
            yield root, root.name
            continue
        for file in sorted(root.rglob("*")):
            if file.name.startswith(".") or any(part.startswith(".") for part in file.relative_to(root).parts):
                continue
            if file.is_file() and (file.suffix.lower() in SUPPORTED_SUFFIXES or PLAIN_TEXT_NAMES.match(file.name)):
                yield file, file.relative_to(root).as_posix()


def load_paths(paths: Iterable[Path], skipped: list[dict[str, str]] | None = None) -> list[Document]:
    """Load every supported file under ``paths``. Without ``skipped``, the first unreadable file fails the whole
    load (before anything is stored); with it, each unreadable file is recorded there ({"file", "error"}) and
    the rest load."""
    docs: list[Document] = []
    for file, doc_id in iter_files(paths):
        try:
            docs.extend(load_bytes(file.read_bytes(), doc_id, doc_id=doc_id))
        except (VoiceRAGError, OSError) as exc:
            if skipped is None:
                raise
            skipped.append({"file": doc_id, "error": getattr(exc, "detail", None) or str(exc)})
    return docs
