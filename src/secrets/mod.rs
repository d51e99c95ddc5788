//! Keeping secrets out of what Convoy prints, journals, records and publishes: masking in every
//! form a secret takes, the minimal environment of the commands Convoy runs for a service, and
//! the clear texts a build must mask without resolving any environment's values.

mod environment;
mod mask;
mod masked_target;
mod project_secrets;

pub use environment::{BASE_VARIABLES, minimal_environment};
pub use mask::Masker;
pub use masked_target::MaskedTarget;
pub use project_secrets::project_secrets;
