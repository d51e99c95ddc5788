//! What an AWS environment's launch template takes besides the AMI: block devices and instance
//! metadata options, and the rules they must follow before AWS is asked (each problem with the
//! key it is at, so the error points at the line).

use serde::{Deserialize, Serialize};

/// One EBS volume of the launch template (`target.aws.block_devices[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDevice {
    /// `/dev/xvda`, `/dev/sdf`, …: the AMI's root device name replaces its root volume.
    pub device: String,
    /// Size in GiB; may be left out only with `snapshot`.
    pub size_gib: Option<u32>,
    #[serde(default)]
    pub volume_type: VolumeType,
    /// io1 and io2 need it; gp3 takes it (3000 when unset).
    pub iops: Option<u32>,
    /// gp3 only, MiB/s.
    pub throughput: Option<u32>,
    #[serde(default = "yes")]
    pub encrypted: bool,
    /// A KMS key id or ARN; the account's default EBS key when unset.
    pub kms_key: Option<String>,
    #[serde(default = "yes")]
    pub delete_on_termination: bool,
    pub snapshot: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    #[default]
    Gp3,
    Gp2,
    Io1,
    Io2,
    St1,
    Sc1,
    Standard,
}

impl VolumeType {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Gp3 => "gp3",
            VolumeType::Gp2 => "gp2",
            VolumeType::Io1 => "io1",
            VolumeType::Io2 => "io2",
            VolumeType::St1 => "st1",
            VolumeType::Sc1 => "sc1",
            VolumeType::Standard => "standard",
        }
    }

    /// The sizes AWS accepts for the type, in GiB.
    fn sizes(self) -> (u32, u32) {
        match self {
            VolumeType::Gp3 | VolumeType::Gp2 => (1, 16_384),
            VolumeType::Io1 | VolumeType::Io2 => (4, 16_384),
            VolumeType::St1 | VolumeType::Sc1 => (125, 16_384),
            VolumeType::Standard => (1, 1_024),
        }
    }
}

/// Instance metadata options (`target.aws.metadata`): IMDSv2 only, by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default)]
    pub tokens: Tokens,
    /// Network hops a metadata answer may travel: 1 keeps it on the instance; containers with
    /// their own network need 2.
    #[serde(default = "one")]
    pub hop_limit: u8,
    /// Whether the instance's tags are readable from the metadata service.
    #[serde(default)]
    pub instance_tags: bool,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            tokens: Tokens::Required,
            hop_limit: 1,
            instance_tags: false,
        }
    }
}

/// `required`: IMDSv2 only (session tokens), the default; `optional` also answers IMDSv1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokens {
    #[default]
    Required,
    Optional,
}

fn yes() -> bool {
    true
}

fn one() -> u8 {
    1
}

/// Every problem of the launch settings, as (dotted key under `target.aws`, reason).
pub fn problems(devices: &[BlockDevice], metadata: &Metadata) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (index, device) in devices.iter().enumerate() {
        let key = |field: &str| format!("block_devices[{index}].{field}");
        if let Some(reason) = device_name_problem(&device.device) {
            found.push((key("device"), reason));
        }
        if devices[..index].iter().any(|d| d.device == device.device) {
            found.push((
                key("device"),
                format!("`{}` is listed twice", device.device),
            ));
        }
        found.extend(
            volume_problems(device)
                .into_iter()
                .map(|(field, reason)| (key(field), reason)),
        );
    }
    if !(1..=64).contains(&metadata.hop_limit) {
        found.push((
            "metadata.hop_limit".to_string(),
            format!("{} is outside 1 to 64", metadata.hop_limit),
        ));
    }
    found
}

fn device_name_problem(name: &str) -> Option<String> {
    let rest = name.strip_prefix("/dev/").unwrap_or_default();
    let valid = !rest.is_empty()
        && rest.len() <= 16
        && rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (!valid).then(|| format!("`{name}` is not a device name like `/dev/xvda` or `/dev/sdf`"))
}

fn volume_problems(device: &BlockDevice) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    let kind = device.volume_type;
    match device.size_gib {
        None if device.snapshot.is_none() => found.push((
            "size_gib",
            "a volume needs `size_gib` unless it is made from a `snapshot`".to_string(),
        )),
        Some(size) => {
            let (low, high) = kind.sizes();
            if !(low..=high).contains(&size) {
                found.push((
                    "size_gib",
                    format!(
                        "{size} GiB is outside {low} to {high} for {}",
                        kind.as_str()
                    ),
                ));
            }
        }
        None => {}
    }
    match (kind, device.iops) {
        (VolumeType::Io1 | VolumeType::Io2, None) => {
            found.push(("iops", format!("{} volumes need `iops`", kind.as_str())));
        }
        (VolumeType::Gp3 | VolumeType::Io1 | VolumeType::Io2, Some(iops))
            if !(100..=256_000).contains(&iops) || (kind == VolumeType::Gp3 && iops < 3000) =>
        {
            found.push((
                "iops",
                format!("{iops} is outside what {} volumes take", kind.as_str()),
            ));
        }
        (VolumeType::Gp3 | VolumeType::Io1 | VolumeType::Io2, _) | (_, None) => {}
        (_, Some(_)) => found.push(("iops", format!("{} volumes take no `iops`", kind.as_str()))),
    }
    match (kind, device.throughput) {
        (VolumeType::Gp3, Some(mbps)) if !(125..=2000).contains(&mbps) => {
            found.push(("throughput", format!("{mbps} MiB/s is outside 125 to 2000")))
        }
        (VolumeType::Gp3, _) | (_, None) => {}
        (_, Some(_)) => found.push(("throughput", "only gp3 volumes take `throughput`".into())),
    }
    if device.kms_key.is_some() && !device.encrypted {
        found.push(("kms_key", "a `kms_key` needs `encrypted: true`".to_string()));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(yaml: &str) -> BlockDevice {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_are_an_encrypted_gp3_volume_and_imdsv2_only() {
        let root = device("{ device: /dev/xvda, size_gib: 20 }");
        assert_eq!(root.volume_type, VolumeType::Gp3);
        assert!(root.encrypted && root.delete_on_termination);
        let metadata: Metadata = yaml_serde::from_str("{}").unwrap();
        assert_eq!(metadata, Metadata::default());
        assert_eq!(metadata.tokens, Tokens::Required);
        assert!(problems(&[root], &metadata).is_empty());
    }

    #[test]
    fn each_problem_names_its_key() {
        let devices = [
            device("{ device: xvda, size_gib: 20 }"),
            device("{ device: /dev/sdf, volume_type: io2, size_gib: 2 }"),
            device("{ device: /dev/sdf, volume_type: st1, size_gib: 500, throughput: 200 }"),
            device("{ device: /dev/sdg, encrypted: false, kms_key: alias/x, size_gib: 8 }"),
            device("{ device: /dev/sdh }"),
        ];
        let metadata = Metadata {
            hop_limit: 0,
            ..Metadata::default()
        };
        let keys: Vec<String> = problems(&devices, &metadata)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(
            keys,
            [
                "block_devices[0].device",
                "block_devices[1].size_gib",
                "block_devices[1].iops",
                "block_devices[2].device",
                "block_devices[2].throughput",
                "block_devices[3].kms_key",
                "block_devices[4].size_gib",
                "metadata.hop_limit",
            ]
        );
    }

    #[test]
    fn unknown_types_and_fields_are_refused_by_the_schema() {
        assert!(
            yaml_serde::from_str::<BlockDevice>("{ device: /dev/sdf, volume_type: gp9 }").is_err()
        );
        assert!(yaml_serde::from_str::<Metadata>("{ tokens: maybe }").is_err());
        assert!(yaml_serde::from_str::<Metadata>("{ hops: 2 }").is_err());
    }
}
