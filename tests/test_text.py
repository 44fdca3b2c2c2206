"""tlkit.text: GloVe vectors, the labelled sentences, and the GloVe-like standardisation."""

from __future__ import annotations

import gzip

import keras
import numpy as np
import pytest
import tensorflow as tf

import tlkit
from tlkit import text


@pytest.fixture
def glove_file(tmp_path):
    path = tmp_path / "tiny.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write("the 1 2 3\ngood 0.5 -1 2\nn't -3 0 1\n")
    return path


@pytest.fixture
def sentences_dir(tmp_path):
    folder = tmp_path / "sentences"
    folder.mkdir()
    # A U+0085 inside a sentence, two spaces before the tab (as in the IMDb file), a final newline.
    (folder / "imdb_labelled.txt").write_text("Great\x85film.  \t1\nI didn't like it.  \t0\n", encoding="utf-8")
    (folder / "yelp_labelled.txt").write_text("Loved it.\tpositive\n", encoding="utf-8")
    return folder


def test_load_word_vectors_reads_words_and_vectors(glove_file):
    vectors = tlkit.text.load_word_vectors(glove_file)
    assert vectors.words == ["the", "good", "n't"] and vectors.dim == 3 and len(vectors) == 3
    assert vectors.vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors.vectors[1], [0.5, -1, 2])
    assert "good" in vectors and "bad" not in vectors
    assert tlkit.text.load_word_vectors(glove_file, limit=2).words == ["the", "good"]


def test_embedding_matrix_puts_each_vector_on_its_token_row_and_zeros_elsewhere(glove_file):
    vectors = tlkit.text.load_word_vectors(glove_file)
    matrix = vectors.embedding_matrix(["", "[UNK]", "good", "bad", "the"])
    assert matrix.shape == (5, 3)
    np.testing.assert_array_equal(matrix[2], vectors.vectors[1])
    np.testing.assert_array_equal(matrix[4], vectors.vectors[0])
    assert not matrix[[0, 1, 3]].any()


def test_embedding_matrix_rejects_an_empty_vocabulary_and_one_without_any_vector(glove_file):
    vectors = tlkit.text.load_word_vectors(glove_file)
    with pytest.raises(ValueError, match="empty vocabulary"):
        vectors.embedding_matrix([])
    with pytest.raises(ValueError, match="none of which has a vector.*glove_standardize"):
        vectors.embedding_matrix(["The", "Good"])  # not lowercased


def test_load_word_vectors_errors_name_the_file_and_the_fix(tmp_path, glove_file, monkeypatch):
    with pytest.raises(FileNotFoundError, match="No word-vector file"):
        tlkit.text.load_word_vectors(tmp_path / "missing.txt.gz")
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("the 1 2 3\ngood 1 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: 2 values"):
        tlkit.text.load_word_vectors(ragged)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no word vectors"):
        tlkit.text.load_word_vectors(empty)
    with pytest.raises(ValueError, match="`limit`"):
        tlkit.text.load_word_vectors(glove_file, limit=0)
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    with pytest.raises(FileNotFoundError, match=r"TLKIT_ASSETS, which is not set.*python -m tlkit.assets fetch"):
        tlkit.text.load_word_vectors()
    monkeypatch.setenv("TLKIT_ASSETS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"missing.*embeddings/glove.*python -m tlkit.assets fetch"):
        tlkit.text.load_word_vectors()


def test_load_sentences_splits_on_newlines_only(sentences_dir):
    texts, labels = tlkit.text.load_sentences("imdb", sentences_dir)
    assert texts == ["Great\x85film.", "I didn't like it."]  # U+0085 is not a line break here
    assert labels.tolist() == [1, 0] and labels.dtype == np.int32


def test_sentences_file_is_the_file_that_load_sentences_reads(sentences_dir):
    file = text.sentences_file("imdb", sentences_dir)
    assert file == sentences_dir / "imdb_labelled.txt"
    # str.splitlines() cuts the sentence with U+0085 in two; load_sentences keeps it whole
    assert len(file.read_text(encoding="utf-8").splitlines()) == 3
    assert len(tlkit.text.load_sentences("imdb", sentences_dir)[0]) == 2
    with pytest.raises(ValueError, match=r"`source`.*'imbd'.*Did you mean 'imdb'"):
        text.sentences_file("imbd", sentences_dir)


def test_load_sentences_errors(sentences_dir, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"`source`.*'yelpp'.*Did you mean 'yelp'"):
        tlkit.text.load_sentences("yelpp", sentences_dir)
    with pytest.raises(ValueError, match="line 1: expected `sentence<TAB>0`"):
        tlkit.text.load_sentences("yelp", sentences_dir)
    with pytest.raises(FileNotFoundError, match="amazon_cells_labelled.txt is missing.*tlkit.assets fetch"):
        tlkit.text.load_sentences("amazon", sentences_dir)
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    with pytest.raises(FileNotFoundError, match="TLKIT_ASSETS, which is not set"):
        tlkit.text.load_sentences("amazon")
    monkeypatch.setenv("TLKIT_ASSETS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="sentiment-labelled-sentences"):
        tlkit.text.load_sentences("amazon")


@pytest.mark.parametrize(
    "sentence, tokens",
    [
        ("I didn't like it.", "i did n't like it ."),
        ("It's GREAT, isn't it?", "it 's great , is n't it ?"),
        ("We've been; they'll go, I'm sure, you'd see", "we 've been ; they 'll go , i 'm sure , you 'd see"),
        ("can't won't", "ca n't wo n't"),
        ("a 'quoted' word", "a ' quoted ' word"),
        ("seeing\x85it\x96now", "seeing it now"),
    ],
)
def test_glove_standardize_splits_like_glove_tokens(sentence, tokens):
    standardized = tlkit.text.glove_standardize(tf.constant([sentence]))
    assert tf.strings.split(standardized).to_list()[0] == [t.encode() for t in tokens.split()]


def test_glove_standardize_in_text_vectorization_keeps_negations_that_the_default_loses(glove_file):
    words = tlkit.text.load_word_vectors(glove_file).words
    sentence = ["The good, the... n't"]
    matched = keras.layers.TextVectorization(vocabulary=words, standardize=tlkit.text.glove_standardize)
    default = keras.layers.TextVectorization(vocabulary=words)
    assert np.asarray(matched(sentence)).tolist() == [[2, 3, 1, 2, 1, 1, 1, 4]]  # "," and "." are not in it: 1
    assert 4 not in np.asarray(default(sentence)).tolist()[0]  # the default strips the apostrophe: "nt"


def test_real_assets_load(assets):
    vectors = tlkit.text.load_word_vectors()
    assert len(vectors) == 20_000 and vectors.dim == 50 and "n't" in vectors and "'s" in vectors
    for source in text.SOURCES:
        texts, labels = tlkit.text.load_sentences(source)
        assert len(texts) == 1000 and labels.sum() == 500, source
    lines = text.sentences_file("imdb").read_text(encoding="utf-8").splitlines()
    assert len([line for line in lines if line.strip()]) > 1000  # U+0085 breaks some IMDb sentences


def test_full_profile_reads_a_complete_pack_and_never_downloads_it(assets, monkeypatch):
    monkeypatch.setenv("TLKIT_PROFILE", "full")
    monkeypatch.setenv("TLKIT_NO_NETWORK", "1")  # a download attempt would raise ConnectionError
    assert text.asset_path(text.GLOVE_FILE) == (assets / text.GLOVE_FILE).resolve()
    assert text.asset_path(text.SENTENCES_DIR) == (assets / text.SENTENCES_DIR).resolve()


def test_full_profile_without_assets_or_network_fails_fast_naming_the_files(monkeypatch):
    monkeypatch.setenv("TLKIT_PROFILE", "full")
    monkeypatch.delenv("TLKIT_ASSETS", raising=False)
    monkeypatch.setenv("TLKIT_NO_NETWORK", "1")
    with pytest.raises(ConnectionError, match="Cannot download the embeddings files"):
        text.asset_path(text.GLOVE_FILE)
