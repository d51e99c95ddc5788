//! What `convoy host deploy` does besides deploying when EC2 user data starts it: check the
//! artifact against the sha256 it was deployed with, build the service's environment from user
//! data and SSM (written to a 0600 file and given to the hooks), and report the outcome to the
//! launch hook — so an instance takes traffic only once its revision is prepared and healthy.

use std::path::PathBuf;

use crate::artifacts::{ArtifactDigest, ArtifactTrust, PinSource};
use crate::diagnostic::Diagnose;
use crate::targets::aws::connection::{Clients, sdk_config};
use crate::targets::aws::ssm::read_secrets;
use crate::targets::host::lifecycle::{LaunchGate, Verdict, instance_id_from_imds};
use crate::targets::host::{CommandEnv, env_file};

/// The EC2 side of one `convoy host deploy`; all optional, so the agent runs anywhere.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The artifact's expected sha256 (from user data).
    pub sha256: Option<String>,
    pub env_file: Option<PathBuf>,
    /// The environment besides secrets: a JSON object, base64.
    pub env_base64: Option<String>,
    /// The SSM path of the revision's secrets.
    pub secrets: Option<String>,
    pub region: Option<String>,
    /// The launch hook to complete, and the group it belongs to.
    pub hook: Option<(String, String)>,
    /// This instance; the instance metadata service says when unset.
    pub instance_id: Option<String>,
    /// The SSM parameter of the environment's flags, copied to `<root>/flags.json` first.
    pub flags: Option<String>,
}

/// Went wrong preparing an instance's environment, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Environment(String),
    #[error("cannot read the secrets under {path}: {detail}")]
    Secrets { path: String, detail: String },
    #[error("cannot write {}", path.display())]
    EnvFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find this instance or its launch hook: {0}")]
    Gate(String),
}

impl Diagnose for LaunchError {
    fn help(&self) -> Option<String> {
        Some(match self {
            LaunchError::Environment(_) => "the user data is damaged or was not rendered by convoy; deploy again".to_string(),
            LaunchError::Secrets { .. } => "the instance role needs `ssm:GetParametersByPath` on the path (see manifests/aws-iam.json), and the deploy must have written them".to_string(),
            LaunchError::EnvFile { .. } => "the agent runs as root from user data; check the directory's owner and free space".to_string(),
            LaunchError::Gate(_) => "pass `--instance-id` off EC2; on EC2 the metadata service must answer (IMDSv2) and the instance role needs `autoscaling:CompleteLifecycleAction`".to_string(),
        })
    }
}

impl Launch {
    pub fn is_ec2(&self) -> bool {
        self.secrets.is_some() || self.hook.is_some() || self.flags.is_some()
    }

    /// AWS clients for the instance's calls: region from `--region` or the standard sources.
    pub async fn clients(&self) -> Clients {
        let config = match &self.region {
            Some(region) => sdk_config(region, None).await,
            None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
        };
        Clients::new(&config, &[])
    }

    /// The launch hook of this instance, when user data named one.
    pub async fn gate(&self, clients: &Clients) -> Result<Option<LaunchGate>, LaunchError> {
        let Some((hook, group)) = &self.hook else {
            return Ok(None);
        };
        let instance = match &self.instance_id {
            Some(id) => id.clone(),
            None => instance_id_from_imds().await.map_err(LaunchError::Gate)?,
        };
        Ok(Some(LaunchGate {
            clients: clients.clone(),
            group: group.clone(),
            hook: hook.clone(),
            instance,
        }))
    }

    /// The hooks' environment: configuration and secrets, also written to the env file; with
    /// flags, `CONVOY_FLAGS_FILE` names `flags_file` for the service's own processes too.
    pub async fn environment(
        &self,
        clients: &Clients,
        flags_file: &std::path::Path,
    ) -> Result<CommandEnv, LaunchError> {
        let mut config: std::collections::BTreeMap<String, String> = match &self.env_base64 {
            Some(text) => env_file::decode(text).map_err(LaunchError::Environment)?,
            None => Default::default(),
        };
        if self.flags.is_some() {
            let path = std::path::absolute(flags_file).unwrap_or(flags_file.to_path_buf());
            config.insert("CONVOY_FLAGS_FILE".into(), path.display().to_string());
        }
        let secrets =
            match &self.secrets {
                Some(path) => read_secrets(&clients.ssm, path).await.map_err(|detail| {
                    LaunchError::Secrets {
                        path: path.clone(),
                        detail,
                    }
                })?,
                None => Default::default(),
            };
        let env = env_file::command_env(&config, &secrets).map_err(LaunchError::Environment)?;
        if let Some(path) = &self.env_file {
            env_file::write_private(path, &env_file::render(&env)).map_err(|source| {
                LaunchError::EnvFile {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        Ok(env)
    }

    /// Pins `version` of `service` to the sha256 the user data names, so the host target's own
    /// check refuses any other tarball before unpacking it (the store's meta.json sits beside
    /// the tarball: whoever can replace one can replace both).
    pub fn pin(&self, trust: &ArtifactTrust, service: &str, version: &str) {
        let Some(sha256) = &self.sha256 else {
            return;
        };
        let digest = ArtifactDigest {
            version: version.to_string(),
            sha256: sha256.to_ascii_lowercase(),
            // Only the sha256 is checked; user data does not carry the size.
            size: 0,
            signed_by: None,
        };
        trust.pins.pin(service, &digest, PinSource::UserData);
    }
}

/// The verdict on a deploy's outcome: its reason the error and its causes, one line, with the
/// secrets masked in every form they can take.
pub fn verdict<E>(outcome: &Result<(), E>, env: &CommandEnv) -> Verdict
where
    E: std::error::Error + 'static,
{
    match outcome {
        Ok(()) => Verdict::Passed,
        Err(error) => {
            let reason = crate::targets::aws::error::describe(error);
            Verdict::Failed(crate::secrets::Masker::new(&env.secrets).mask(&reason))
        }
    }
}
