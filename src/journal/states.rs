//! The words a journal records for how far a step got and how a run ended, as types.
//!
//! Each is written as the same word as before (`"done"`, `"going on alongside"`), so that the
//! journal files stay as they were; a word this pgstep does not know (from another version)
//! reads as `Other` and is written back unchanged, so that no journal becomes unreadable.

use serde::{Deserialize, Serialize};

/// An enum stored as one of a fixed set of words, with `Other` for any other word.
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A word this pgstep does not write (an older or newer journal), kept as it was.
            Other(String),
        }

        impl $name {
            /// The word as the journal stores it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $word,)+
                    $name::Other(word) => word,
                }
            }
        }

        impl From<&str> for $name {
            fn from(word: &str) -> Self {
                match word {
                    $($word => $name::$variant,)+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(word: String) -> Self {
                match $name::from(word.as_str()) {
                    $name::Other(_) => $name::Other(word),
                    known => known,
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value {
                    $name::Other(word) => word,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum! {
    /// How far a step got: the `state` of a journal's `Step` entry, and of a report's step.
    StepState {
        Started => "started",
        Done => "done",
        Failed => "failed",
        Skipped => "skipped",
        /// The operator accepted what the step found (an override).
        Accepted => "accepted",
        /// The step goes on in the background (the backup while the clone is upgraded).
        GoingOnAlongside => "going on alongside",
        /// A rehearsal's copy was dropped at its end.
        RehearsalCopyDropped => "rehearsal copy dropped",
        /// Not begun (a report built from the checklist).
        Pending => "pending",
        /// Still running when the run stopped (a report built from the checklist).
        Running => "running",
        /// Done with something to know (a report built from the checklist).
        Warning => "warning",
    }
}

word_enum! {
    /// How a run ended: the `outcome` of a journal's `Finished` entry.
    RunOutcome {
        Success => "success",
        Failed => "failed",
        Cancelled => "cancelled",
        /// `pgstep recover` undid what the run left.
        Recovered => "recovered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_states_are_stored_as_their_words_and_unknown_words_survive() {
        for state in [
            StepState::Started,
            StepState::GoingOnAlongside,
            StepState::Other("paused".into()),
        ] {
            let json = serde_json::to_string(&state).expect("to json");
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            let back: StepState = serde_json::from_str(&json).expect("from json");
            assert_eq!(back, state);
        }
        assert_eq!(StepState::from("done"), StepState::Done);
        assert_eq!(
            serde_json::to_string(&RunOutcome::Recovered).expect("to json"),
            "\"recovered\""
        );
        assert_eq!(
            RunOutcome::from("aborted"),
            RunOutcome::Other("aborted".into())
        );
    }
}
