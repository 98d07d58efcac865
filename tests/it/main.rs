//! The one integration test binary. Each module is one layer of design.md's test plan:
//! the command-line contract, validation messages, golden example trees, external
//! validators (shellcheck, bash -n) and a real PostgreSQL server.

mod support;

mod agree;
mod ansible;
mod cli;
mod cli_contract;
mod datadir;
mod drift;
mod drift_truth;
mod golden;
mod hostile;
mod lifecycle;
mod patroni;
mod postgres;
mod repohost;
mod sandbox;
mod shell;
mod validation;
mod versions;
