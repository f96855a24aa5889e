from pathlib import Path

import pytest

from voicerag.config import ConfigError, apply_preset, load_settings, recommend


def test_env_and_toml_and_explicit_values_win_over_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "voicerag.toml"
    config.write_text('[voicerag]\npreset = "high_performance"\ntop_k = 7\n')
    monkeypatch.setenv("VOICERAG_CONFIG", str(config))
    monkeypatch.setenv("VOICERAG_DB_POOL_SIZE", "3")
    settings = load_settings()
    assert settings.top_k == 7
    assert settings.db_pool_size == 3  # explicit env beats the preset's 20
    assert settings.index_type == "hnsw"  # from the preset
    assert settings.semantic_cache is True


def test_apply_preset_reports_changes(make_settings) -> None:
    settings = make_settings()
    updated, changes = apply_preset("development", settings)
    assert updated.index_type == "flat" and changes["index_type"] == ("auto", "flat")
    assert updated.preset == "development"
    assert "log_level" in changes
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        apply_preset("fast", settings)


def test_validation_gives_one_clear_message_per_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICERAG_PORT", "99999")
    monkeypatch.setenv("VOICERAG_INDEX_TYPE", "annoy")
    with pytest.raises(ConfigError) as info:
        load_settings()
    problems = info.value.problems
    assert len(problems) == 2
    assert any(p.startswith("port:") and "99999" in p for p in problems)
    assert any(p.startswith("index_type:") and "annoy" in p for p in problems)


def test_relations_are_checked() -> None:
    with pytest.raises(ConfigError, match="chunk_overlap_words .* must be smaller"):
        load_settings(chunk_words=20, chunk_overlap_words=20)
    with pytest.raises(ConfigError, match="database_url must start with"):
        load_settings(database_url="mysql://x")


def test_unknown_setting_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text("top_kk = 3\n")
    with pytest.raises(ConfigError, match="top_kk: Extra inputs are not permitted"):
        load_settings(config_file=config)


def test_bad_toml_file_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("top_k = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=config)


def test_recommend_by_corpus_and_machine() -> None:
    small = recommend(2_000, 2, 8)
    assert small.index_type == "flat" and small.preset == "development"
    large = recommend(1_000_000, 16, 64)
    assert large.index_type == "hnsw" and large.preset == "high_performance"
    tight = recommend(5_000_000, 4, 4)
    assert tight.index_type == "ivf"
    assert all(r for r in large.reasons)


def test_the_default_store_is_one_per_user_unless_an_older_one_is_here(tmp_path, monkeypatch) -> None:
    import platformdirs

    from voicerag.config import LEGACY_DATA_DIR, Settings

    monkeypatch.delenv("VOICERAG_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == Path(platformdirs.user_data_dir("voicerag", appauthor=False))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "voicerag.db").write_bytes(b"")  # an older release's store, found where it ran
    assert Settings().data_dir == LEGACY_DATA_DIR
    assert Settings(data_dir=tmp_path / "mine").data_dir == tmp_path / "mine"  # a setting always wins
