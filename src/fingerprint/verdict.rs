//! A database's fingerprint against the reference for a version: the one comparison every step
//! that checks a schema makes. Pure.

use super::{Diff, Fingerprint, diff};

/// How a fingerprint compares with the reference it is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<V> {
    /// Same hash as the reference for `version`.
    Matches { version: V },
    /// The reference for `version` differs: these objects.
    Differs { version: V, diff: Diff },
    /// There is no reference to compare with.
    NoReference,
}

/// Compares `fp` with `reference`: the version it stands for, its canonical text and that
/// text's hash (a bundle's `reference_for(version)`, mapped to
/// `(v, r.text.as_str(), r.hash.as_str())`). The diff is computed only when the hashes differ.
pub fn verdict<V>(fp: &Fingerprint, reference: Option<(V, &str, &str)>) -> Verdict<V> {
    match reference {
        Some((version, _, hash)) if hash == fp.hash => Verdict::Matches { version },
        Some((version, text, _)) => Verdict::Differs {
            version,
            diff: diff(text, &fp.text),
        },
        None => Verdict::NoReference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{canonical_text, hash_of};

    fn fp(lines: &[(&str, &str, &str)]) -> Fingerprint {
        let text = canonical_text(
            lines
                .iter()
                .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned())),
        );
        let hash = hash_of(&text);
        Fingerprint {
            text,
            hash,
            lines: lines.len(),
        }
    }

    #[test]
    fn same_hash_matches_other_text_differs_none_is_no_reference() {
        let reference = fp(&[("table", "public.a", "id int")]);
        let same = reference.clone();
        let other = fp(&[("table", "public.b", "id int")]);
        let r = Some((1, reference.text.as_str(), reference.hash.as_str()));
        assert_eq!(verdict(&same, r), Verdict::Matches { version: 1 });
        match verdict(&other, r) {
            Verdict::Differs { version, diff } => {
                assert_eq!(version, 1);
                assert_eq!(diff.len(), 2);
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(verdict::<u32>(&other, None), Verdict::NoReference);
    }
}
