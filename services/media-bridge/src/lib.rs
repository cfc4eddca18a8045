//! media-bridge (being built).
