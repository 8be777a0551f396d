"""The README is a user's document that stays true: what it lists is what the registry has."""

from __future__ import annotations

import re
from pathlib import Path

from videodeblur import registry

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def config_table() -> str:
    start = README.index("### Config keys")
    return README[start : README.index("\n\n", README.index("| key |", start))]


def test_the_config_table_lists_every_kind_parameter_method_and_codec():
    table = config_table()
    for name in registry.psf_kind_names():
        assert f'"{name}"' in table, name
    for name in registry.all_parameters():
        assert f"psf.{name}" in table, name
    for name in registry.METHODS:
        assert f'"{name}"' in table, name
    for name in registry.CODECS:
        assert f"`{name}`" in table, name


def test_the_readme_cites_only_files_that_exist():
    cited = set(re.findall(r"(?<![\w/.])((?:configs|samples|docs|benchmarks|tests|videodeblur)/[\w./-]+\.\w+)", README))
    assert cited, "the pattern finds the README's file references"
    missing = sorted(path for path in cited if not (ROOT / path).exists())
    assert not missing, missing


def test_docs_cite_only_files_that_exist():
    for page in (ROOT / "docs").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text, page.name
        cited = re.findall(r"(?<![\w/.])((?:configs|samples|docs|benchmarks|tests|videodeblur)/[\w./-]+\.\w+)", text)
        missing = sorted({path for path in cited if not (ROOT / path).exists()})
        assert not missing, (page.name, missing)
