"""Text for the word-vector lesson: GloVe vectors, review sentences, a GloVe-like tokenizer.

Both assets are read from the assets folder (`$TLKIT_ASSETS`, else the fetch cache):
`embeddings/glove.6B.50d.top20k.txt.gz` (GloVe 6B, 50-d, the 20,000 most frequent words)
and `datasets/sentiment-labelled-sentences/` (1,000 labelled review sentences from each of
Amazon, IMDb and Yelp). `python -m tlkit.assets fetch` downloads them.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tlkit.assets import FETCH_COMMAND, locate_part
from tlkit.data import fetched_part
from tlkit.errors import suggest
from tlkit.profiles import get_profile

GLOVE_FILE = "embeddings/glove.6B.50d.top20k.txt.gz"
SENTENCES_DIR = "datasets/sentiment-labelled-sentences"
SOURCES = {"amazon": "amazon_cells_labelled.txt", "imdb": "imdb_labelled.txt", "yelp": "yelp_labelled.txt"}


def asset_path(relative: str) -> Path:
    """The file or folder `relative` (e.g. `embeddings/...`) of the asset pack.

    The offline profile reads it from the assets folder, `$TLKIT_ASSETS` else the cache that
    `python -m tlkit.assets fetch` fills (`tlkit.assets.locate_part`); the full profile fetches
    the part from its public source once if it is absent (`tlkit.data.fetched_part`).

    Args:
        relative: the path inside the pack, e.g. `GLOVE_FILE` or `SENTENCES_DIR`.

    Returns:
        The path (absolute).

    Raises:
        tlkit.assets.AssetsError: (offline profile) no assets folder, or it lacks `relative`; the
            message names the path, the folder and the fix.
        ConnectionError: (full profile) the part is absent and its source cannot be reached.
    """
    if get_profile().name == "full":
        parts = relative.split("/")
        part = parts[1] if parts[0] == "datasets" else parts[0]
        folder = fetched_part(part)
        return folder.joinpath(*parts[2 if parts[0] == "datasets" else 1 :])
    return locate_part(relative)


@dataclasses.dataclass
class WordVectors:
    """Pretrained word vectors: `words[i]` has the vector `vectors[i]`."""

    words: list[str]
    vectors: np.ndarray

    def __post_init__(self):
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def embedding_matrix(self, vocabulary: Sequence[str]) -> np.ndarray:
        """One row per token of `vocabulary`: its vector, or zeros for a token without one.

        Args:
            vocabulary: the tokens in index order, e.g. `TextVectorization.get_vocabulary()`
                (whose padding `""` and `"[UNK]"` then get zero rows).

        Returns:
            A float32 array `(len(vocabulary), dim)`, for `keras.initializers.Constant`.
        """
        if len(vocabulary) == 0:
            raise ValueError(
                "Invalid value for argument `vocabulary`. Received: an empty vocabulary. "
                "Expected the tokens in index order, e.g. `vectorizer.get_vocabulary()` after `adapt`."
            )
        rows = [self.index.get(token, -1) for token in vocabulary]
        if max(rows) < 0:
            raise ValueError(
                f"Invalid value for argument `vocabulary`. Received: {len(vocabulary)} tokens "
                f"(first: {list(vocabulary[:3])}), none of which has a vector. Expected tokens standardised "
                "like the vectors' words (lowercase, GloVe-style: `tlkit.text.glove_standardize`)."
            )
        matrix = np.zeros((len(vocabulary), self.dim), np.float32)
        found = np.asarray(rows) >= 0
        matrix[found] = self.vectors[np.asarray(rows)[found]]
        return matrix


def load_word_vectors(path: str | os.PathLike | None = None, limit: int | None = None) -> WordVectors:
    """Reads word vectors in GloVe's text format (`word v1 ... vN` per line, optionally gzipped).

    Args:
        path: the file; default `$TLKIT_ASSETS/embeddings/glove.6B.50d.top20k.txt.gz`.
        limit: keep only the first `limit` words (GloVe's files are sorted by frequency).

    Returns:
        A `WordVectors` with the words in file order and a float32 matrix of their vectors.

    Raises:
        tlkit.assets.AssetsError: `path=None` and the asset pack, or its GloVe file, is missing
            (a `FileNotFoundError`; the message names the fix).
        FileNotFoundError: `path` is not a file.
        ValueError: the file is not in GloVe's text format, or `limit < 1`.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"Invalid value for argument `limit`. Received: limit={limit}. Expected None or >= 1.")
    path = asset_path(GLOVE_FILE) if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No word-vector file at {path}. Expected a GloVe text file (.txt or .txt.gz).")
    opener = gzip.open if path.suffix == ".gz" else open
    words, rows = [], []
    with opener(path, "rt", encoding="utf-8", newline="\n") as file:
        for number, line in enumerate(file, 1):
            if limit is not None and len(words) >= limit:
                break
            word, *values = line.rstrip("\n").split(" ")
            if rows and len(values) != len(rows[0]) or not values:
                raise ValueError(
                    f"{path}, line {number}: {len(values)} values after {word!r}; expected "
                    f"{len(rows[0]) if rows else 'some'} (GloVe text format: `word v1 ... vN`)."
                )
            words.append(word)
            rows.append(values)
    if not words:
        raise ValueError(f"{path} holds no word vectors. Expected GloVe text format: `word v1 ... vN` per line.")
    return WordVectors(words, np.asarray(rows, np.float32))


def sentences_file(source: str, path: str | os.PathLike | None = None) -> Path:
    """The file of one source of the UCI Sentiment Labelled Sentences, as shipped.

    Args:
        source: `"amazon"`, `"imdb"` or `"yelp"`.
        path: the folder with the three files; default `$TLKIT_ASSETS/datasets/sentiment-labelled-sentences`.

    Returns:
        The path of `<source>_labelled.txt` (`amazon_cells_labelled.txt` for Amazon), checked to exist.

    Raises:
        tlkit.assets.AssetsError: `path=None` and the asset pack, or the file in it, is missing
            (a `FileNotFoundError`; the message names the fix).
        FileNotFoundError: the folder `path` lacks the file.
        ValueError: `source` is not one of the three.

    Example:

    ```python
    raw = tlkit.text.sentences_file("imdb").read_text(encoding="utf-8")
    ```
    """
    if source not in SOURCES:
        raise ValueError(
            f"Invalid value for argument `source`. Received: source={source!r}.{suggest(source, SOURCES)} "
            f"Expected one of {', '.join(map(repr, SOURCES))}."
        )
    if path is None:
        return asset_path(f"{SENTENCES_DIR}/{SOURCES[source]}")
    file = Path(path) / SOURCES[source]
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing. Run `{FETCH_COMMAND}`, or pass the folder that holds it.")
    return file


def load_sentences(source: str, path: str | os.PathLike | None = None) -> tuple[list[str], np.ndarray]:
    """Reads one source of the UCI Sentiment Labelled Sentences: `sentence<TAB>label` lines.

    Lines are split on newlines only: some IMDb sentences hold U+0085, which
    `str.splitlines` would treat as a line break.

    Args:
        source: `"amazon"`, `"imdb"` or `"yelp"`.
        path: the folder with the three files; default `$TLKIT_ASSETS/datasets/sentiment-labelled-sentences`.

    Returns:
        `(texts, labels)`: the sentences (surrounding spaces stripped) and int32 labels, 1 = positive.
    """
    file = sentences_file(source, path)
    texts, labels = [], []
    for number, line in enumerate(file.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        text, tab, label = line.rpartition("\t")
        if not tab or label.strip() not in ("0", "1"):
            raise ValueError(
                f"{file}, line {number}: expected `sentence<TAB>0` or `sentence<TAB>1`, got {line[:60]!r}."
            )
        texts.append(text.strip())
        labels.append(int(label))
    return texts, np.asarray(labels, np.int32)


def glove_standardize(text):
    """Lowercases and splits off punctuation and clitics as GloVe's tokens do (`didn't` -> `did n't`).

    Keras `TextVectorization`'s default standardisation strips punctuation, apostrophes included
    (`didn't` -> `didnt`, a token GloVe does not have). Pass this one instead:
    `TextVectorization(standardize=tlkit.text.glove_standardize)`; split on whitespace as usual.

    Args:
        text: a string tensor (any shape).

    Returns:
        The standardised string tensor, tokens separated by spaces.
    """
    import tensorflow as tf

    text = tf.strings.lower(text)
    text = tf.strings.regex_replace(text, r"[\x{80}-\x{9f}]", " ")  # C1 control characters (U+0085, U+0096)
    text = tf.strings.regex_replace(text, r"(^|\s)'", r"\1 ' ")  # an opening quote
    text = tf.strings.regex_replace(text, r"'(\s|$)", r" ' \1")  # a closing quote
    text = tf.strings.regex_replace(text, r"n't\b", " n't ")
    text = tf.strings.regex_replace(text, r"'(s|re|ve|ll|d|m)\b", r" '\1 ")
    return tf.strings.regex_replace(text, r"([!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~])", r" \1 ")
