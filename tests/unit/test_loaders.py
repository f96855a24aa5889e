import pytest

from tests.helpers import make_docx, make_pdf, understate_zip_entry
from voicerag.documents.chunking import chunk_text, split_sentences
from voicerag.documents.loaders import load_bytes, load_paths
from voicerag.errors import DocumentError, UnsupportedFormat


def test_txt_md_html() -> None:
    [txt] = load_bytes(b"Hello world.\nSecond line.", "a.txt")
    assert txt.text == "Hello world.\nSecond line." and txt.id == "a.txt"
    [md] = load_bytes(b"# Title\n\nSome **bold** [link](http://x) text.", "b.md")
    assert md.title == "Title" and "Some bold link text." in md.text and "http" not in md.text
    [html] = load_bytes(
        b"<html><head><title>Page</title><script>var x=1;</script></head><body><p>Visible text.</p></body></html>",
        "c.html",
    )
    assert html.title == "Page" and "Visible text." in html.text and "var x" not in html.text


def test_pdf_and_docx() -> None:
    [pdf] = load_bytes(make_pdf(["The launch code is 4242.", "It is kept in the vault."]), "doc.pdf")
    assert "launch code is 4242" in pdf.text and "vault" in pdf.text
    [docx] = load_bytes(make_docx(["Zebras have stripes.", "They live in Africa."]), "doc.docx")
    assert "Zebras have stripes." in docx.text and "Africa" in docx.text


def test_jsonl() -> None:
    docs = load_bytes(b'{"id": "1", "text": "one", "title": "T"}\n\n{"_id": 2, "text": "two"}\n', "x.jsonl")
    assert [(d.id, d.text, d.title) for d in docs] == [("1", "one", "T"), ("2", "two", "")]
    with pytest.raises(DocumentError, match="line 1: not valid JSON"):
        load_bytes(b"{nope", "x.jsonl")
    with pytest.raises(DocumentError, match="line 1: each line needs"):
        load_bytes(b'{"id": "1"}', "x.jsonl")


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"%PDF-1.4 this is not really a pdf", "broken.pdf", "not a readable PDF"),
        (b"PK\x03\x04garbage", "broken.docx", "not a readable .docx"),
        (b"", "empty.txt", "the file is empty"),
        (b"   \n ", "blank.md", "the file is empty"),
        (b"\xff\xfe\x00\xd8bad", "bin.txt", "not UTF-8"),
    ],
)
def test_bad_files_have_clear_errors(data: bytes, name: str, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        load_bytes(data, name)


def test_unsupported_suffix() -> None:
    with pytest.raises(UnsupportedFormat, match=r"unsupported file type \.exe; accepted: .txt"):
        load_bytes(b"MZ", "tool.exe")


def test_paths_give_relative_ids(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("Alpha.")
    (tmp_path / "b.md").write_text("Beta.")
    (tmp_path / "ignored.bin").write_bytes(b"\0")
    docs = load_paths([tmp_path])
    assert sorted(d.id for d in docs) == ["b.md", "sub/a.txt"]


def test_sentences_keep_abbreviations_and_offsets() -> None:
    text = "Dr. Smith went to Washington. He arrived at 5 p.m. on Monday! Did it rain? Yes."
    sentences = split_sentences(text)
    assert [s.text for s in sentences][0] == "Dr. Smith went to Washington."
    assert all(text[s.start : s.end] == s.text for s in sentences)
    assert sentences[-1].text == "Yes."


def test_chunks_overlap_and_cover_the_text() -> None:
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(40))
    chunks = chunk_text(text, words=30, overlap_words=8)
    assert len(chunks) > 5
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))  # consecutive chunks overlap


def test_overlong_sentence_is_cut_at_words() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    chunks = chunk_text(text, words=30, overlap_words=5)
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert {w for c in chunks for w in c.text.split()} == set(text.split())


def _docx_with(part: str, content: bytes, understate: bool = False) -> bytes:
    """A real .docx with one part replaced; ``understate``: its zip entry claims 4 KB whatever it holds."""
    import io
    import zipfile

    source = io.BytesIO(make_docx(["A real paragraph."]))
    out = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for item in original.infolist():
            copy.writestr(item.filename, content if item.filename == part else original.read(item.filename))
    return understate_zip_entry(out.getvalue(), part) if understate else out.getvalue()


def test_a_docx_that_understates_its_sizes_is_refused_in_bounded_memory() -> None:
    import tracemalloc

    bomb = _docx_with("word/document.xml", b"<a>" + b" " * (128 * 1024 * 1024) + b"</a>", understate=True)
    tracemalloc.start()
    try:
        with pytest.raises(DocumentError, match="not a readable .docx"):  # its data does not match its sizes
            load_bytes(bomb, "bomb.docx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, peak


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<w:document><w:body><w:p>unclosed", "not a readable .docx"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<w:document>&lol2;</w:document>",
            "declares a DOCTYPE or entities",
        ),
    ],
)
def test_a_docx_with_broken_or_entity_laden_xml_is_a_document_error(xml: bytes, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        load_bytes(_docx_with("word/document.xml", xml), "bad.docx")
