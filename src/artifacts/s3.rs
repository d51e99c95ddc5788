//! The S3 store: `s3://bucket/prefix`, through aws-sdk-s3, for AWS or any S3-compatible server.
//! The tarball is uploaded first under a content-addressed name; meta.json is put last with
//! `If-None-Match: *`, so it is the commit point and exactly one concurrent publisher wins.

use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::Client;

use super::bucket::{Bucket, Condition};
use super::error::{ArtifactError, io};
use super::meta::{ArtifactMeta, verify};
use super::{ArtifactStore, Published};

pub struct S3Store {
    bucket: Bucket,
    prefix: String,
}

impl S3Store {
    /// A store configured from the standard AWS environment (region, credentials,
    /// `AWS_ENDPOINT_URL`); path-style addressing when an endpoint is set.
    pub async fn from_env(bucket: &str, prefix: &str) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let path_style = config.endpoint_url().is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build();
        S3Store::new(Client::from_conf(s3_config), bucket, prefix)
    }

    pub fn new(client: Client, bucket: &str, prefix: &str) -> Self {
        S3Store {
            bucket: Bucket::new(client, bucket),
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    fn key(&self, parts: &[&str]) -> String {
        let tail = parts.join("/");
        if self.prefix.is_empty() {
            tail
        } else {
            format!("{}/{tail}", self.prefix)
        }
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        Ok(self.bucket.get(key).await?.map(|(bytes, _)| bytes))
    }
}

#[async_trait]
impl ArtifactStore for S3Store {
    async fn meta(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<ArtifactMeta>, ArtifactError> {
        let key = self.key(&[service, version, "meta.json"]);
        match self.get_bytes(&key).await? {
            Some(bytes) => ArtifactMeta::from_json(&bytes, &self.bucket.url(&key)).map(Some),
            None => Ok(None),
        }
    }

    async fn fetch(
        &self,
        service: &str,
        version: &str,
        dest_file: &Path,
    ) -> Result<ArtifactMeta, ArtifactError> {
        let not_found = || ArtifactError::NotFound {
            service: service.to_string(),
            version: version.to_string(),
            store: self.describe(),
        };
        let meta = self.meta(service, version).await?.ok_or_else(not_found)?;
        let key = self.key(&[service, version, &meta.tarball_name()]);
        let (body, _) = self.bucket.stream(&key).await?.ok_or_else(not_found)?;
        let dir = dest_file.parent().unwrap_or(Path::new("."));
        let temp = tempfile::NamedTempFile::new_in(dir).map_err(io("create a file in", dir))?;
        let mut file = tokio::fs::File::from_std(temp.reopen().map_err(io("write", temp.path()))?);
        let mut body = body.into_async_read();
        tokio::io::copy(&mut body, &mut file)
            .await
            .map_err(io("download into", temp.path()))?;
        file.sync_all().await.map_err(io("write", temp.path()))?;
        verify(temp.path(), &meta, &self.bucket.url(&key))?;
        temp.persist(dest_file)
            .map_err(|error| io("write", dest_file)(error.error))?;
        Ok(meta)
    }

    async fn publish(
        &self,
        meta: &ArtifactMeta,
        tarball: &Path,
        log: Option<&Path>,
    ) -> Result<Published, ArtifactError> {
        if let Some(existing) = self.meta(&meta.service, &meta.version).await? {
            return Published::already_present(existing, meta);
        }
        let tarball_key = self.key(&[&meta.service, &meta.version, &meta.tarball_name()]);
        self.bucket.put_file(&tarball_key, tarball).await?;
        if let Some(log) = log {
            let log_key = self.key(&[&meta.service, &meta.version, "build.log"]);
            self.bucket.put_file(&log_key, log).await?;
        }
        let meta_key = self.key(&[&meta.service, &meta.version, "meta.json"]);
        // meta.json last and only if absent: the commit point, one concurrent publisher wins.
        let put = self
            .bucket
            .put(&meta_key, meta.to_json(), Condition::Absent);
        if put.await?.is_some() {
            return Ok(Published::Stored(meta.clone()));
        }
        let Some(existing) = self.meta(&meta.service, &meta.version).await? else {
            return Err(ArtifactError::Vanished {
                service: meta.service.clone(),
                version: meta.version.clone(),
                store: self.describe(),
            });
        };
        if existing.sha256 != meta.sha256 {
            // Our tarball is not referenced by anything; don't leave it behind.
            let _ = self.bucket.delete(&tarball_key, None).await;
        }
        Published::already_present(existing, meta)
    }

    async fn list(&self, service: Option<&str>) -> Result<Vec<ArtifactMeta>, ArtifactError> {
        let under = match service {
            Some(service) => self.key(&[service, ""]),
            None if self.prefix.is_empty() => String::new(),
            None => format!("{}/", self.prefix),
        };
        let mut list = Vec::new();
        for key in self.bucket.keys(&under).await? {
            if !key.ends_with("/meta.json") {
                continue;
            }
            if let Some(bytes) = self.get_bytes(&key).await? {
                list.push(ArtifactMeta::from_json(&bytes, &self.bucket.url(&key))?);
            }
        }
        super::sort(&mut list);
        Ok(list)
    }

    async fn delete(&self, service: &str, version: &str) -> Result<(), ArtifactError> {
        let meta_key = self.key(&[service, version, "meta.json"]);
        let mut keys = self.bucket.keys(&self.key(&[service, version, ""])).await?;
        // meta.json first: the version stops existing before its files go.
        keys.sort_by_key(|key| *key != meta_key);
        for key in keys {
            self.bucket.delete(&key, None).await?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket.name)
        } else {
            format!("s3://{}/{}", self.bucket.name, self.prefix)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Stores on moto's S3 (the shared harness in `convoy_test_support::moto`).

    use aws_sdk_s3::primitives::ByteStream;

    pub use convoy_test_support::moto::Moto;

    use super::S3Store;

    /// What the store tests add to moto's harness, which is another crate's and knows no
    /// `S3Store`.
    pub(crate) trait MotoStores {
        /// A store on a fresh bucket.
        async fn store(&self, bucket: &str, prefix: &str) -> S3Store;

        async fn put(&self, bucket: &str, key: &str, bytes: &[u8]);
    }

    impl MotoStores for Moto {
        async fn store(&self, bucket: &str, prefix: &str) -> S3Store {
            let client = self.s3();
            client
                .create_bucket()
                .bucket(bucket)
                .send()
                .await
                .expect("create bucket");
            S3Store::new(client, bucket, prefix)
        }

        async fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
            self.s3()
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(bytes.to_vec()))
                .send()
                .await
                .expect("put");
        }
    }
}
