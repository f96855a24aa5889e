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

from voicerag.errors import DocumentError, TooLarge, UnsupportedFormat, VoiceRAGError

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl")


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


def _markdown(data: bytes, name: str) -> str:
    """Markdown parsed (CommonMark and tables, markdown-it-py) into blocks separated by blank lines: headings
    keep their ``#`` marks (answers skip them and sources show the section), code stays fenced with no blank
    line inside (answers and the voice skip it), table rows become ``a | b``, list items ``- item``. Inline
    marks go and their text stays as written: ``VOICERAG_DATA_DIR`` keeps its underscores."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(_decode(data, name))
    blocks: list[str] = []
    prefix, row = "", None
    for token in tokens:
        if token.type == "heading_open":
            prefix = "#" * int(token.tag[1]) + " "
        elif token.type == "list_item_open":
            prefix = "- "
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            blocks.append(" | ".join(row))
            row = None
        elif token.type == "inline":
            text = _inline_text(token.children or [])
            if row is not None:
                row.append(text)
            elif text:
                blocks.append(prefix + text)
                prefix = ""
        elif token.type in ("fence", "code_block"):
            code = re.sub(r"\n\s*\n", "\n", token.content.strip("\n"))
            blocks.append(f"```\n{code}\n```")
        elif token.type == "html_block":
            blocks.append(re.sub(r"<[^>]+>", " ", token.content).strip())
    return "\n\n".join(block for block in blocks if block.strip())


def _inline_text(children: list[Any]) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(child.content)  # the alt text
        elif child.type == "softbreak":
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

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
        if unzipped > MAX_UNZIPPED_BYTES:
            raise TooLarge(
                f"{name}: the .docx expands to {unzipped} bytes; at most {MAX_UNZIPPED_BYTES} "
                f"({MAX_UNZIPPED_BYTES // 1048576} MB) are accepted"
            )
        doc = DocxDocument(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(f"{name}: not a readable .docx file ({exc}); upload a Word 2007+ document") from exc
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)


_READERS = {
    ".txt": _text,
    ".md": _markdown,
    ".markdown": _markdown,
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
    ".docx": _docx,
}


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n\n", text)
    return text.strip()


def _title_from(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip().rstrip(".")
        if line:
            return line[:200]
    return fallback


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
    reader = _READERS.get(suffix)
    if reader is None:
        raise UnsupportedFormat(
            f"{name}: unsupported file type {suffix or '(none)'}; accepted: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not data.strip():
        raise DocumentError(f"{name}: the file is empty")
    text = _normalise(reader(data, name))
    if not text:
        raise DocumentError(f"{name}: no text could be extracted (a scanned PDF needs OCR first)")
    title = _title_from(text, Path(name).stem) if suffix in (".md", ".markdown", ".txt") else Path(name).stem
    if suffix in (".html", ".htm"):
        from bs4 import BeautifulSoup

        head = BeautifulSoup(data, "html.parser").title
        title = head.get_text().strip() if head and head.get_text().strip() else title
    return [Document(id=doc_id or name, text=text, title=title, metadata={"source": name})]


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Yield (file, stable id) for each supported file; a file's id is its path relative to the argument."""
    for root in paths:
        if not root.exists():
            raise DocumentError(f"{root}: no such file or directory")
        if root.is_file():
            yield root, root.name
            continue
        for file in sorted(root.rglob("*")):
            if file.is_file() and file.suffix.lower() in SUPPORTED_SUFFIXES and not file.name.startswith("."):
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
