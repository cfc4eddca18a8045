//! tools-svc (being built).
