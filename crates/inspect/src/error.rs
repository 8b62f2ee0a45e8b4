//! Errors raised while building the inspection engines from configuration.
//!
//! Inspection itself never fails (a request that cannot be parsed is inspected as raw
//! text), so errors only come from invalid configuration such as a bad custom regex.

/// A configuration problem found while building an [`crate::AttackDetector`] or
/// [`crate::SecretScanner`].
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A built-in or custom pattern failed to compile.
    #[error("pattern {id:?} does not compile: {source}")]
    Pattern {
        /// The detector or custom pattern id.
        id: String,
        /// The regex compiler's message.
        #[source]
        source: regex::Error,
    },
    /// The literal prefilter could not be built.
    #[error("prefilter does not build: {0}")]
    Prefilter(#[from] aho_corasick::BuildError),
    /// A name in `disabled` or `detectors` matches no detector or family.
    #[error("unknown detector or family {0:?}")]
    UnknownDetector(String),
    /// A configured limit is out of range.
    #[error("invalid limit: {0}")]
    InvalidLimit(&'static str),
}
