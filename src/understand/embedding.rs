//! Pretrained word meaning, offline: a static token-embedding table distilled from the
//! sentence model all-MiniLM-L6-v2 (Apache-2.0, see NOTICE) by `bench/distill/distill.py`
//! (model2vec's recipe: each vocabulary token through the transformer as `[CLS] token [SEP]`,
//! mean-pooled, PCA to 256 dimensions, SIF frequency weighting, int8 per row with a scale).
//!
//! A sentence's vector is the mean of its WordPiece tokens' rows, L2-normalised. The classifier
//! reads it as extra dense features, so "joined" lands near "signed up" and "failures" near
//! "failed" although the intent files never say so.
//!
//! The table (7.9 MB: 30,522 rows x 256 int8 + a scale each) is compiled into the binary with
//! `include_bytes!` when the cargo feature `static-embeddings` is on (the default). It sits in
//! the executable's read-only data: pages are read from the file only when a row is touched, so
//! a process that never classifies a sentence never loads it, and the rows are in vocabulary
//! order, which is frequency order for whole words (`the` is row 1996), so the rows real text
//! touches share pages. Without the feature, or with `LAZYOPS_EMBEDDINGS=off` in the
//! environment, [`table`] is `None` and the classifier is the dependency-free one.
//!
//! The tokeniser is BERT's uncased WordPiece without its accent stripping: lower-case, split on
//! whitespace and around every character that is not alphanumeric, then greedy longest-match
//! pieces (`##` marks a continuation); a word with no split into known pieces is `[UNK]`, which
//! is left out of the mean.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The shipped table, or nothing when the build leaves it out.
#[cfg(feature = "static-embeddings")]
const BYTES: &[u8] = include_bytes!("embedding/minilm.bin");
#[cfg(not(feature = "static-embeddings"))]
const BYTES: &[u8] = &[];
#[cfg(feature = "static-embeddings")]
const VOCAB: &str = include_str!("embedding/vocab.txt");
#[cfg(not(feature = "static-embeddings"))]
const VOCAB: &str = "";

const MAGIC: &[u8; 4] = b"LZE1";
/// Longest word that is split into pieces (BERT's `max_input_chars_per_word`).
const MAX_WORD_CHARS: usize = 100;
/// Tokens looked at per sentence: the classifier reads at most ~1000 characters anyway.
const MAX_TOKENS: usize = 256;

/// A token-embedding table over a WordPiece vocabulary.
pub struct Table {
    rows: usize,
    dims: usize,
    /// `rows` little-endian f32 scales.
    scales: &'static [u8],
    /// `rows x dims` int8 values.
    values: &'static [u8],
    vocab: HashMap<&'static str, u32>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TableError {
    #[error("the embedding table does not start with {MAGIC:?}")]
    Magic,
    #[error("the embedding table is {got} bytes, its header says {want}")]
    Size { got: usize, want: usize },
    #[error("the vocabulary has {got} tokens, the table {want} rows")]
    Vocab { got: usize, want: usize },
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("rows", &self.rows).field("dims", &self.dims).finish()
    }
}

/// The compiled-in table, read on first use; `None` without it or with `LAZYOPS_EMBEDDINGS=off`.
pub fn table() -> Option<&'static Table> {
    static TABLE: OnceLock<Option<Table>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            if BYTES.is_empty() || std::env::var("LAZYOPS_EMBEDDINGS").is_ok_and(|v| v == "off") {
                return None;
            }
            match Table::parse(BYTES, VOCAB) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "static embeddings not used");
                    None
                }
            }
        })
        .as_ref()
}

impl Table {
    /// Reads a table in the distiller's format and its vocabulary (one token a line).
    pub fn parse(bytes: &'static [u8], vocab: &'static str) -> Result<Table, TableError> {
        let header = bytes.get(..12).ok_or(TableError::Size { got: bytes.len(), want: 12 })?;
        if &header[..4] != MAGIC {
            return Err(TableError::Magic);
        }
        let word = |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]) as usize;
        let (rows, dims) = (word(4), word(8));
        let want = 12 + rows * 4 + rows * dims;
        if bytes.len() != want {
            return Err(TableError::Size { got: bytes.len(), want });
        }
        let tokens: Vec<&'static str> = vocab.lines().collect();
        if tokens.len() != rows {
            return Err(TableError::Vocab { got: tokens.len(), want: rows });
        }
        let vocab = tokens.into_iter().enumerate().map(|(i, t)| (t, i as u32)).collect();
        Ok(Table { rows, dims, scales: &bytes[12..12 + rows * 4], values: &bytes[12 + rows * 4..], vocab })
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// WordPiece ids of a text (unknown words left out).
    pub fn tokens(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let lower = text.to_lowercase();
        let mut piece = String::new();
        for word in lower.split_whitespace() {
            let mut start = 0;
            for (i, c) in word.char_indices() {
                if !c.is_alphanumeric() {
                    self.word(&word[start..i], &mut out, &mut piece);
                    self.word(&word[i..i + c.len_utf8()], &mut out, &mut piece);
                    start = i + c.len_utf8();
                }
            }
            self.word(&word[start..], &mut out, &mut piece);
            if out.len() >= MAX_TOKENS {
                out.truncate(MAX_TOKENS);
                break;
            }
        }
        out
    }

    /// Greedy longest-match pieces of one word; nothing when it has no split.
    fn word(&self, word: &str, out: &mut Vec<u32>, piece: &mut String) {
        if word.is_empty() || word.chars().count() > MAX_WORD_CHARS {
            return;
        }
        let mark = out.len();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while end > start {
                if word.is_char_boundary(end) {
                    piece.clear();
                    if start > 0 {
                        piece.push_str("##");
                    }
                    piece.push_str(&word[start..end]);
                    if let Some(&id) = self.vocab.get(piece.as_str()) {
                        found = Some(id);
                        break;
                    }
                }
                end -= 1;
            }
            let Some(id) = found else {
                out.truncate(mark);
                return;
            };
            out.push(id);
            start = end;
        }
    }

    /// Adds row `id` times `w` to `acc`.
    fn add_row(&self, id: u32, w: f32, acc: &mut [f32]) {
        let id = id as usize;
        let (Some(s), Some(row)) =
            (self.scales.get(id * 4..id * 4 + 4), self.values.get(id * self.dims..(id + 1) * self.dims))
        else {
            return;
        };
        let scale = w * f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += scale * f32::from(v as i8);
        }
    }

    /// The text's vector: the mean of its tokens' rows, L2-normalised; `None` when no token is
    /// known or the rows cancel out.
    pub fn embed(&self, text: &str) -> Option<Vec<f32>> {
        let ids = self.tokens(text);
        if ids.is_empty() {
            return None;
        }
        let mut v = vec![0.0f32; self.dims];
        for &id in &ids {
            self.add_row(id, 1.0, &mut v);
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= 1e-12 {
            return None;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        Some(v)
    }
}

/// Cosine of two L2-normalised vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(all(test, feature = "static-embeddings"))]
mod tests {
    use super::*;

    fn t() -> &'static Table {
        table().expect("the table ships with the default build")
    }

    #[test]
    fn wordpiece_splits_like_bert() {
        let t = t();
        let ids = t.tokens("Who joined yesterday?");
        let back: Vec<&str> =
            ids.iter().map(|&i| t.vocab.iter().find(|(_, v)| **v == i).map(|(k, _)| *k).unwrap_or("?")).collect();
        assert_eq!(back, ["who", "joined", "yesterday", "?"]);
        let ids = t.tokens("signups");
        let back: Vec<&str> =
            ids.iter().map(|&i| t.vocab.iter().find(|(_, v)| **v == i).map(|(k, _)| *k).unwrap_or("?")).collect();
        assert_eq!(back, ["sign", "##ups"]);
        assert!(t.tokens("").is_empty());
        assert!(t.embed("").is_none());
    }

    #[test]
    fn related_words_are_closer_than_unrelated_ones() {
        let t = t();
        let e = |s: &str| t.embed(s).expect("known words");
        let joined = e("who joined yesterday");
        let signed = e("who signed up yesterday");
        let weather = e("what is the weather like in paris");
        assert!(cosine(&joined, &signed) > cosine(&joined, &weather) + 0.1);
        let failures = e("payment failures");
        let failed = e("failed payments");
        assert!(cosine(&failures, &failed) > cosine(&failures, &weather) + 0.1);
    }

    #[test]
    fn odd_input_never_panics() {
        let t = t();
        for s in ["🙂🙂", "部署生产环境", "\u{0}\u{200b}", &"x".repeat(5000), "ﬁ ǅ İ", "a'b-c_d#42"] {
            if let Some(v) = t.embed(s) {
                assert!(v.iter().all(|x| x.is_finite()));
            }
        }
    }

    #[test]
    fn a_damaged_table_is_refused() {
        assert_eq!(Table::parse(b"nope", "").unwrap_err(), TableError::Size { got: 4, want: 12 });
        assert_eq!(Table::parse(b"XXXX\x01\0\0\0\x02\0\0\0", "").unwrap_err(), TableError::Magic);
        assert!(matches!(Table::parse(b"LZE1\x01\0\0\0\x02\0\0\0", "a\n"), Err(TableError::Size { .. })));
        let ok: &'static [u8] = b"LZE1\x01\0\0\0\x02\0\0\0\0\0\x80\x3f\x05\xfb";
        assert!(matches!(Table::parse(ok, "a\nb\n"), Err(TableError::Vocab { got: 2, want: 1 })));
        let t = Table::parse(ok, "a\n").expect("valid");
        assert_eq!(t.embed("a"), Some(vec![5.0 / 50f32.sqrt(), -5.0 / 50f32.sqrt()]));
    }
}
