//! token-svc (being built).
