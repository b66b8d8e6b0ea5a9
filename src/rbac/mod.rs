//! The RBAC engine: permission catalog, account snapshots, compilation and the decision.
//! Pure and synchronous: nothing here does network I/O, awaits or logs.

pub mod catalog;
pub mod compile;
pub mod compiled;
pub mod decide;
pub mod delta;
pub mod error;
pub mod ids;
pub mod incremental;
pub(crate) mod index;
pub mod model;
pub mod persistent;
pub mod secret_hash;

pub use catalog::Catalog;
pub use compile::compile;
pub use compiled::{CompiledAccount, PrincipalId, ScopeId};
pub use decide::{Check, Decision, Principal, Reason, decide};
pub use delta::{AccountDelta, DeltaError, Entity, EntityChange, EntityKey};
pub use error::{SnapshotError, ValidationError};
pub use ids::{Level, LevelSet, PermId, PermissionSet, ResourceTypeId};
pub use incremental::{CompilePath, Incremental, IncrementalError, compile_incremental};

#[cfg(test)]
pub(crate) mod test_fixture;
