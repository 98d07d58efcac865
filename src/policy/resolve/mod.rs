//! One module per section of a cluster's policy: each reads its raw section into a
//! part whose fields are `None` where a value was invalid (the error is reported on the
//! way), and `finish` gives the typed section when every value is valid. The order in
//! `validate::resolve_cluster` is the order of the defaults' dependencies: postgres,
//! backup_user, role (needs the owner), pgbackrest (needs the names), patroni.

pub mod backup_user;
pub mod pgbackrest;
pub mod postgres;
pub mod repository;
pub mod role;
