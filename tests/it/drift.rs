//! Drift against a deployed host (a fake root) and a live database.
