//! Errors returned when starting the event pipeline. Once running, the
//! pipeline never returns errors to callers: failures are logged and counted.

use std::io;
use std::path::PathBuf;

/// Why [`crate::Emitter::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// A file sink could not be opened for appending.
    #[error("cannot open event sink file {}", path.display())]
    OpenSink {
        /// The configured path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid events configuration: {0}")]
    InvalidConfig(String),
    /// The writer thread could not be spawned.
    #[error("cannot start the event writer thread")]
    SpawnWriter(#[source] io::Error),
}
