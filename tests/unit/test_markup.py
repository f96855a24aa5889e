"""Documentation markup read as a person reads it: one small fixture per flavour."""

from voicerag.answer.units import answer_units
from voicerag.documents.loaders import load_bytes, load_paths
from voicerag.evaluation.docs import has_markup

HUGO = b"""---
title: "Redis lists"
linkTitle: Lists
draft: false
weight: 70
---

{{< command-group group="list" >}}

Redis lists are linked lists of string values. See [strings]({{< relref "/develop/strings" >}}) too.

{{% note %}}
A list holds at most 4,294,967,295 elements.
{{% /note %}}

{{< clients-example set="list_tutorial" step="queue" >}}
> LPUSH bikes:repairs bike:1
(integer) 1
{{< /clients-example >}}

<!-- a comment nobody should hear -->
"""

MKDOCS = b"""# Middleware

!!! note "Thread safety"
    The middleware is shared by all requests, see [the guide](guide.md#state){: .internal }.

=== "pip"

    ```bash
    pip install starlette
    ```

The following arguments are supported:

* `minimum_size` - Do not compress responses smaller than this. Defaults to `500`.
* `compresslevel` - Used during compression. Defaults to `9`.

::: starlette.middleware.gzip.GZipMiddleware
    options:
        show_source: false

/// version-added | v2.10
Defaults can take the validated data.
///

| Mode | Memory |
|------|--------|
| Q8   | 4x smaller |
"""

RST = b""".. _options:

Options
=======

.. currentmodule:: click

Use :func:`option` to add an option; see :ref:`the arguments page <arguments>`.

.. versionadded:: 8.0
    Options can be counted.

.. click:example::

    @click.option('-v', '--verbose', count=True)
    def log(verbose): ...

.. note::
   Counting starts at zero.
"""

TOML = b"""+++
title = "Install"
+++

Run the installer once.
"""


def test_hugo_front_matter_shortcodes_and_comments() -> None:
    [doc] = load_bytes(HUGO, "lists.md")
    assert doc.title == "Redis lists"
    assert doc.metadata["front_matter"]["weight"] == 70
    assert "draft" not in doc.text and "{{" not in doc.text and "relref" not in doc.text
    assert "See strings too." in doc.text  # link text stays, the URL and shortcode go
    assert "A list holds at most 4,294,967,295 elements." in doc.text
    assert "```\n> LPUSH bikes:repairs bike:1" in doc.text  # a paired clients-example is code
    assert "comment" not in doc.text and not has_markup(doc.text.replace("```", ""))


def test_mkdocs_admonitions_tabs_lists_and_tables() -> None:
    [doc] = load_bytes(MKDOCS, "middleware.md")
    assert doc.title == "Middleware"
    assert "Thread safety:" in doc.text and "The middleware is shared by all requests, see the guide." in doc.text
    assert "!!!" not in doc.text and "===" not in doc.text and "{:" not in doc.text and ":::" not in doc.text
    assert "pip:" in doc.text and "```\npip install starlette\n```" in doc.text
    assert "Added in version v2.10." in doc.text and "///" not in doc.text
    assert "Mode: Q8 | Memory: 4x smaller" in doc.text  # a table row carries its header
    units = {u.kind: u for u in answer_units(doc.text)}
    assert "minimum_size" in units["list"].text and "compresslevel" in units["list"].text  # lead and items
    assert any(u.text.endswith("Defaults to 500.") for u in answer_units(doc.text) if u.kind == "item")
    assert units["row"].text == "Mode: Q8; Memory: 4x smaller"


def test_restructured_text_with_sphinx_directives_and_roles() -> None:
    [doc] = load_bytes(RST, "options.rst")
    assert doc.title == "Options"
    assert "Use option to add an option; see the arguments page." in doc.text
    assert "Added in version 8.0." in doc.text and "Options can be counted." in doc.text
    assert "```\n@click.option('-v', '--verbose', count=True)" in doc.text
    assert "Counting starts at zero." in doc.text
    assert ".." not in doc.text.replace("...", "") and ":func:" not in doc.text


def test_titles_come_from_front_matter_heading_or_file_name(tmp_path) -> None:
    [toml] = load_bytes(TOML, "install.md")
    assert toml.title == "Install" and toml.text == "Run the installer once."
    [plain] = load_bytes(b"The first sentence is not a title. More text.", "getting-started.md")
    assert plain.title == "Getting started"
    (tmp_path / "LICENSE").write_text("Permission is hereby granted, free of charge.")
    (tmp_path / "blob").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "empty-api.md").write_text("::: pydantic.BaseModel\n    options:\n        members: true\n")
    skipped: list[dict[str, str]] = []
    docs = load_paths([tmp_path], skipped)
    assert [d.id for d in docs] == ["LICENSE"] and docs[0].title == "LICENSE"
    assert {s["file"] for s in skipped} == {"blob", "empty-api.md"}
    assert "holds only markup" in next(s["error"] for s in skipped if s["file"] == "empty-api.md")


def test_a_lead_carries_its_code() -> None:
    text = (
        "# Testing\n\nTo keep exceptions from being raised, create the client like this:\n\n"
        "```\nclient = TestClient(app, raise_server_exceptions=False)\n```"
    )
    [unit] = answer_units(text)
    assert unit.kind == "code" and "raise_server_exceptions=False" in unit.text and unit.context == "Testing"
    assert text[unit.start : unit.end].startswith("To keep exceptions") and text[unit.end - 3 : unit.end] == "```"
