//! `convoy flags set|unset|list|history`: an environment's live flags, written without the
//! deploy lease but compare-and-swap on their revision, so a lost update is refused.

use crate::Error;
use crate::config::Project;
use crate::execute::flags::{FlagAuthor, FlagChange, FlagEdit, FlagSet, parse_edit};
use crate::execute::{Clock, Holder, SystemClock};
use crate::targets::Overrides;

/// What a change asks for.
pub struct FlagsChange<'a> {
    pub environment: &'a str,
    /// `KEY=VALUE` to set, or `KEY` to unset.
    pub arguments: &'a [String],
    pub set: bool,
    /// The revision the change was decided on (`convoy flags list` shows it); the current one
    /// when not given.
    pub expect: Option<u64>,
}

/// The flags before and after the change.
pub async fn change(
    project: &Project,
    request: FlagsChange<'_>,
    overrides: &Overrides,
) -> Result<(FlagSet, FlagSet), Error> {
    let edits: Vec<FlagEdit> = request
        .arguments
        .iter()
        .map(|a| parse_edit(a, request.set))
        .collect::<Result<_, _>>()?;
    project
        .environment(request.environment)
        .map_err(crate::config::ConfigErrors::from)?;
    let backend = crate::targets::open(project, request.environment, overrides).await?;
    let store = backend.flags()?;
    let before = store.read().await?;
    let author = FlagAuthor {
        who: Holder::this_process().to_string(),
        at: SystemClock.now(),
        release: None,
    };
    let expected = request.expect.unwrap_or(before.revision);
    let after = store.write(expected, &edits, &author).await?;
    Ok((before, after))
}

/// The flags of `environment` now.
pub async fn list(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
) -> Result<FlagSet, Error> {
    let backend = crate::targets::open(project, environment, overrides).await?;
    Ok(backend.flags()?.read().await?)
}

/// The last `limit` changes of the flags of `environment`, oldest first.
pub async fn history(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
    limit: usize,
) -> Result<Vec<FlagChange>, Error> {
    let backend = crate::targets::open(project, environment, overrides).await?;
    Ok(backend.flags()?.history(limit).await?)
}
