//! One S3 bucket's objects, the way Convoy uses them: reads with their ETag, puts and deletes
//! that only happen if the object is as last seen (compare-and-swap), listings. The artifact
//! store and the AWS target's state (lock, records, prewarm schedule) both go through it.

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;

/// When a put may happen.
#[derive(Debug, Clone, Copy)]
pub enum Condition<'a> {
    /// Only if no object is there (`If-None-Match: *`).
    Absent,
    /// Only if the object still has this ETag (`If-Match`).
    Unchanged(&'a str),
    /// Whatever is there.
    Always,
}

/// An S3 request that failed, with the service's code and message (or the connection's chain).
#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} of s3://{bucket}/{key} failed: {message}")]
pub struct ObjectError {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub client: Client,
    pub name: String,
}

impl Bucket {
    pub fn new(client: Client, name: &str) -> Self {
        Bucket {
            client,
            name: name.to_string(),
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    fn error(
        &self,
        operation: &'static str,
        key: &str,
        error: &dyn std::error::Error,
    ) -> ObjectError {
        ObjectError {
            operation,
            bucket: self.name.clone(),
            key: key.to_string(),
            message: crate::diagnostic::chain(error),
        }
    }

    /// The object's body as a stream and its ETag, or `None` when absent.
    pub async fn stream(&self, key: &str) -> Result<Option<(ByteStream, String)>, ObjectError> {
        let request = self.client.get_object().bucket(&self.name).key(key);
        match request.send().await {
            Ok(output) => Ok(Some((output.body, output.e_tag.unwrap_or_default()))),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(error) => Err(self.error("GetObject", key, &aws_sdk_s3::Error::from(error))),
        }
    }

    /// The object's bytes and its ETag, or `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, ObjectError> {
        let Some((body, etag)) = self.stream(key).await? else {
            return Ok(None);
        };
        let bytes = body
            .collect()
            .await
            .map_err(|error| self.error("GetObject", key, &error))?;
        Ok(Some((bytes.to_vec(), etag)))
    }

    /// Puts JSON `bytes` under `condition`: the new ETag, or `None` when the condition failed
    /// (someone else wrote first).
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition<'_>,
    ) -> Result<Option<String>, ObjectError> {
        let body = ByteStream::from(bytes);
        self.put_body(key, body, Some("application/json"), condition)
            .await
    }

    /// Uploads the file at `path`.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<(), ObjectError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|error| self.error("PutObject", key, &error))?;
        self.put_body(key, body, None, Condition::Always).await?;
        Ok(())
    }

    async fn put_body(
        &self,
        key: &str,
        body: ByteStream,
        content_type: Option<&str>,
        condition: Condition<'_>,
    ) -> Result<Option<String>, ObjectError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.content_type(content_type);
        }
        request = match condition {
            Condition::Absent => request.if_none_match("*"),
            Condition::Unchanged(etag) => request.if_match(etag),
            Condition::Always => request,
        };
        match request.send().await {
            Ok(output) => Ok(Some(output.e_tag.unwrap_or_default())),
            Err(error) if lost_race(error.code()) => Ok(None),
            Err(error) => Err(self.error("PutObject", key, &aws_sdk_s3::Error::from(error))),
        }
    }

    /// Deletes the object, only if it still has ETag `if_match` when given; `Ok(false)` when it
    /// changed or is gone.
    pub async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<bool, ObjectError> {
        let mut request = self.client.delete_object().bucket(&self.name).key(key);
        if let Some(etag) = if_match {
            request = request.if_match(etag);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if lost_race(error.code()) => Ok(false),
            Err(error) => Err(self.error("DeleteObject", key, &aws_sdk_s3::Error::from(error))),
        }
    }

    /// Every key under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| {
                self.error("ListObjectsV2", prefix, &aws_sdk_s3::Error::from(error))
            })?;
            let found = page.contents().iter().filter_map(|o| o.key());
            keys.extend(found.map(str::to_string));
        }
        Ok(keys)
    }
}

/// A conditional request that failed: another writer got there first (or the object is gone).
fn lost_race(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
    )
}
