//! Callway domain, stores, config and telemetry (being built).
