from shoprec.core.text import char_ngrams, jaccard, normalize, tokenize


def test_latin_tokens_are_lowercased_and_split() -> None:
    assert tokenize("Cordless DRILL, 18V!") == ["cordless", "drill", "18v"]


def test_cjk_runs_become_unigrams_and_bigrams() -> None:
    assert tokenize("电钻") == ["电", "钻", "电钻"]
    toks = tokenize("Voltmark无线电钻")
    assert "voltmark" in toks and "电钻" in toks


def test_japanese_and_korean_are_kept() -> None:
    assert tokenize("ドリル") and tokenize("드릴")


def test_stemmer_applies_to_latin_words_only() -> None:
    assert tokenize("drills 电钻", stem=lambda w: w.rstrip("s")) == ["drill", "电", "钻", "电钻"]


def test_normalize_nfkc_and_whitespace() -> None:
    assert normalize("  Ｃordless\tDrill ") == "cordless drill"


def test_char_ngrams_tolerate_typos() -> None:
    a, b = char_ngrams("cordless drill"), char_ngrams("cordles dril")
    assert jaccard(a, b) > 0.5
    assert jaccard(a, char_ngrams("sofa")) == 0.0
    assert jaccard([], ["x"]) == 0.0


def test_texts_without_cjk_tokenize_as_the_per_character_path_does() -> None:
    # a text with no CJK character takes a one-pass branch; appending a CJK word sends the
    # same text through the per-character splitting, whose latin tokens must be the same
    texts = ["Cordless DRILL, 18V!", "1/2 in. x 10 ft. PVC", "é-ß Ｃordless_x 3 a", "", "  -  ", "größe 2x4 émail"]
    stem = str.upper
    for text in texts:
        assert tokenize(text + " 电", stem=stem) == [*tokenize(text, stem=stem), "电"]
