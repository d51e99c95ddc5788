//! A revision's secrets in SSM Parameter Store: one SecureString per environment variable under
//! `/convoy/<project>/<environment>/<service>/<revision>/`, tagged with who wrote it. Written on
//! provision (before the template that names the path), read by the agent on the instance with
//! the instance role's permission (`read_secrets`), deleted with the revision's group. User data,
//! templates, tags and records only ever hold the path.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{ParameterType, ResourceTypeForTagging, Tag};
use serde_json::Value;

use crate::config::marker::MASK;
use crate::render::ResolvedValues;
use crate::render::context::{RESERVED, env_name};

use crate::execute::TargetError;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::{AwsError, describe};
use crate::targets::aws::names::*;

/// SecureStrings of the standard tier hold at most this many bytes.
const MAX_VALUE: usize = 4096;
/// DeleteParameters takes at most this many names.
const DELETE_BATCH: usize = 10;

/// The names (last segments) and values under `path`, decrypted: what the agent puts in the
/// service's environment.
pub async fn read_secrets(
    ssm: &aws_sdk_ssm::Client,
    path: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut pages = ssm
        .get_parameters_by_path()
        .path(path)
        .with_decryption(true)
        .into_paginator()
        .send();
    let mut found = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("GetParametersByPath {path}: {}", describe(&e)))?;
        for parameter in page.parameters.unwrap_or_default() {
            let (Some(name), Some(value)) = (parameter.name, parameter.value) else {
                continue;
            };
            let variable = name.rsplit('/').next().unwrap_or_default().to_string();
            found.insert(variable, value);
        }
    }
    Ok(found)
}

/// A service's secrets as the environment variables its configuration flattens into
/// (`database.password` → `DATABASE_PASSWORD`): where the masked tree holds the mask, the clear
/// one holds the secret. Keys that shape objects rather than configuration are not variables.
pub fn secret_variables(values: &ResolvedValues) -> BTreeMap<String, String> {
    fn walk(key: &str, masked: &Value, clear: &Value, out: &mut BTreeMap<String, String>) {
        match (masked, clear) {
            (Value::Object(masked), Value::Object(clear)) => {
                for (name, value) in masked {
                    let child = if key.is_empty() {
                        name.clone()
                    } else {
                        format!("{key}.{name}")
                    };
                    if let Some(other) = clear.get(name) {
                        walk(&child, value, other, out);
                    }
                }
            }
            (Value::String(mask), clear) if mask == MASK && !key.is_empty() => {
                let reserved = RESERVED
                    .iter()
                    .any(|r| key == *r || key.starts_with(&format!("{r}.")));
                let text = match clear {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                if !reserved && text != MASK {
                    out.insert(env_name(key), text);
                }
            }
            _ => {}
        }
    }
    let mut found = BTreeMap::new();
    walk("", &values.masked, &values.revealed(), &mut found);
    found
}

/// Why `variable = value` cannot be a parameter, if it cannot.
fn secret_problem(variable: &str, value: &str) -> Option<String> {
    let valid_name = !variable.is_empty()
        && variable.len() <= MAX_VARIABLE_LEN
        && variable
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Some("its variable name is not letters, digits and `_`".to_string());
    }
    if value.is_empty() {
        return Some("it is empty, and a parameter cannot be".to_string());
    }
    if value.len() > MAX_VALUE {
        return Some(format!(
            "it is {} bytes; a SecureString holds {MAX_VALUE}",
            value.len()
        ));
    }
    None
}

fn tag(key: &str, value: &str) -> Result<Tag, String> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| e.to_string())
}

impl AwsTarget {
    fn parameter_path(&self, service: &str, version: &str) -> String {
        parameter_path(&self.project, &self.environment, service, version)
    }

    /// Makes the parameters under the revision's path exactly its secrets; one that another
    /// environment (or anyone) wrote is an error, before any is written.
    pub(super) async fn write_secrets(
        &self,
        service: &str,
        version: &str,
        release: u64,
    ) -> Result<(), TargetError> {
        let secrets = self.secrets.get(version).cloned().unwrap_or_default();
        let fail = |detail: String| self.failed(service, "write secrets to SSM", detail);
        for (variable, value) in &secrets {
            if let Some(reason) = secret_problem(variable, value) {
                let error = AwsError::BadSecret {
                    service: service.to_string(),
                    variable: variable.clone(),
                    reason,
                };
                return Err(TargetError::failed(service, "write secrets to SSM", error));
            }
        }
        let path = self.parameter_path(service, version);
        let existing = self.parameters_under(&path).await.map_err(fail)?;
        for (name, owner) in &existing {
            if !owner.is(&self.project, &self.environment) {
                return Err(self.not_ours(service, "SSM parameter", name, owner.clone()));
            }
        }
        let tags = [
            (TAG_PROJECT, self.project.clone()),
            (TAG_ENV, self.environment.clone()),
            (TAG_SERVICE, service.to_string()),
            (TAG_VERSION, version.to_string()),
            (TAG_RELEASE, release.to_string()),
        ]
        .iter()
        .map(|(k, v)| tag(k, v))
        .collect::<Result<Vec<Tag>, String>>()
        .map_err(fail)?;
        for (variable, value) in &secrets {
            let name = format!("{path}/{variable}");
            let rewrite = existing.iter().any(|(n, _)| *n == name);
            let put = self
                .clients
                .ssm
                .put_parameter()
                .name(&name)
                .value(value)
                .r#type(ParameterType::SecureString)
                .description(format!("convoy: {service} {version}"));
            // Tags go with a creation only; a resumed or repeated provision re-tags instead.
            let put = if rewrite {
                put.overwrite(true)
            } else {
                put.set_tags(Some(tags.clone()))
            };
            put.send()
                .await
                .map_err(|e| fail(self.masked(&describe(&e))))?;
            if rewrite {
                self.clients
                    .ssm
                    .add_tags_to_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(&name)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(|e| fail(describe(&e)))?;
            }
        }
        let stale: Vec<String> = existing
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| {
                let variable = name.rsplit('/').next().unwrap_or_default();
                !secrets.contains_key(variable)
            })
            .collect();
        self.delete_parameters(&stale).await.map_err(fail)
    }

    /// Deletes the revision's parameters that this environment wrote (and, given `release`,
    /// that release wrote).
    pub(super) async fn delete_secrets(
        &self,
        service: &str,
        version: &str,
        release: Option<u64>,
    ) -> Result<(), String> {
        let path = self.parameter_path(service, version);
        let names: Vec<String> = self
            .parameters_under(&path)
            .await?
            .into_iter()
            .filter(|(_, owner)| {
                owner.is(&self.project, &self.environment)
                    && release.is_none_or(|r| owner.release == Some(r))
            })
            .map(|(name, _)| name)
            .collect();
        self.delete_parameters(&names).await
    }

    /// The parameters directly under `path`, each with who wrote it (from its tags).
    async fn parameters_under(&self, path: &str) -> Result<Vec<(String, Owner)>, String> {
        let mut pages = self
            .clients
            .ssm
            .get_parameters_by_path()
            .path(path)
            .with_decryption(false)
            .into_paginator()
            .send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("GetParametersByPath: {}", describe(&e)))?;
            names.extend(
                page.parameters
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|p| p.name),
            );
        }
        let mut found = Vec::new();
        for name in names {
            let output = self
                .clients
                .ssm
                .list_tags_for_resource()
                .resource_type(ResourceTypeForTagging::Parameter)
                .resource_id(&name)
                .send()
                .await
                .map_err(|e| format!("ListTagsForResource {name}: {}", describe(&e)))?;
            let tags: BTreeMap<String, String> = output
                .tag_list()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            found.push((name, Owner::from_tags(&tags)));
        }
        Ok(found)
    }

    async fn delete_parameters(&self, names: &[String]) -> Result<(), String> {
        for batch in names.chunks(DELETE_BATCH) {
            self.clients
                .ssm
                .delete_parameters()
                .set_names(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| format!("DeleteParameters: {}", describe(&e)))?;
        }
        Ok(())
    }

    /// `text` with the revisions' secrets masked, in every form (an API error could quote a
    /// value).
    pub(super) fn masked(&self, text: &str) -> String {
        let secrets = self.secrets.values().flat_map(|s| s.values());
        crate::secrets::Masker::new(secrets).mask(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_become_variables_where_the_mask_stands() {
        let values = ResolvedValues {
            masked: serde_json::json!({
                "database": {"password": MASK, "host": "db"},
                "env": {"TOKEN": MASK},
                "log_level": "info"
            }),
            secret_values: BTreeMap::from([
                ("database.password".to_string(), "s3cret".to_string()),
                ("env.TOKEN".to_string(), "t".to_string()),
            ]),
            ..ResolvedValues::default()
        };
        assert_eq!(
            secret_variables(&values),
            BTreeMap::from([("DATABASE_PASSWORD".to_string(), "s3cret".to_string())])
        );
    }

    #[test]
    fn secrets_must_fit_a_parameter() {
        assert_eq!(secret_problem("DATABASE_PASSWORD", "s3cret"), None);
        assert!(secret_problem("DATABASE-PASSWORD", "x").is_some());
        assert!(secret_problem("A", "").unwrap().contains("empty"));
        let pem = "k".repeat(MAX_VALUE + 1);
        assert!(secret_problem("KEY", &pem).unwrap().contains("4096"));
    }
}
