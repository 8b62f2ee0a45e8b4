//! JWT bearer tokens (being written).
