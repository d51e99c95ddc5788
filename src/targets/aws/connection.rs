//! The SDK clients of an AWS environment: aws-config with the environment's region and profile,
//! the standard `AWS_ENDPOINT_URL` (and per-service variants) honoured, adaptive retries.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_autoscaling::config::SharedInterceptor;

/// The Auto Scaling API has one request bucket per account and region, shared with every other
/// tool: back off adaptively on throttling rather than adding to the storm.
const MAX_ATTEMPTS: u32 = 8;

#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub s3: aws_sdk_s3::Client,
    /// Parameter Store: the revisions' secrets.
    pub ssm: aws_sdk_ssm::Client,
}

/// The shared SDK configuration for `region` and optional `profile`, from the standard sources
/// (environment, profile files, SSO, instance metadata).
pub async fn sdk_config(region: &str, profile: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS));
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// The configuration for the artifact bucket: the same one the artifact store uses (region from
/// the standard sources), so state and artifacts are read alike; the target's region when none
/// is set anywhere.
pub async fn store_config(target: &SdkConfig, profile: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS));
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    let config = loader.load().await;
    if config.region().is_some() {
        config
    } else {
        target.clone()
    }
}

impl Clients {
    /// Clients for every service Convoy calls, each with `interceptors` (call counting, and
    /// fault injection in tests); S3 from `store` when given (see [`store_config`]).
    pub fn new(config: &SdkConfig, interceptors: &[SharedInterceptor]) -> Clients {
        Clients::with_store(config, config, interceptors)
    }

    pub fn with_store(
        config: &SdkConfig,
        store: &SdkConfig,
        interceptors: &[SharedInterceptor],
    ) -> Clients {
        let mut ec2 = aws_sdk_ec2::config::Builder::from(config);
        let mut autoscaling = aws_sdk_autoscaling::config::Builder::from(config);
        let mut elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(config);
        let mut ssm = aws_sdk_ssm::config::Builder::from(config);
        // Path-style addressing when an endpoint is set: S3-compatible servers need it.
        let mut s3 = aws_sdk_s3::config::Builder::from(store)
            .force_path_style(store.endpoint_url().is_some());
        for interceptor in interceptors {
            ec2.push_interceptor(interceptor.clone());
            autoscaling.push_interceptor(interceptor.clone());
            elb.push_interceptor(interceptor.clone());
            ssm.push_interceptor(interceptor.clone());
            s3.push_interceptor(interceptor.clone());
        }
        Clients {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(autoscaling.build()),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
        }
    }
}
