//! webhook-svc (being built).
