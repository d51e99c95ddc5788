//! Writing objects: server-side apply with field manager `convoy` (conflicts name the other
//! manager), the same as a dry run, and deletes — each retried on transient API errors.

use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};

use super::KubeError;
use super::objects::Object;
use super::records::FIELD_MANAGER;
use super::retry::{Backoff, retrying};

#[derive(Clone)]
pub struct Applier {
    pub client: kube::Client,
    pub namespace: String,
}

impl Applier {
    fn api(&self, resource: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, resource)
    }

    /// Applies `object` (without taking fields from other managers); returns what the server
    /// stored — or, with `dry_run`, what it would store.
    pub async fn apply(&self, object: &Object, dry_run: bool) -> Result<DynamicObject, KubeError> {
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.dry_run = dry_run;
        self.send(object, params, dry_run).await
    }

    /// Applies `object`, taking its fields back from other managers: only for fields Convoy
    /// itself moved under another manager name (prewarm's HPA bounds).
    pub async fn apply_forced(&self, object: &Object) -> Result<DynamicObject, KubeError> {
        self.send(object, PatchParams::apply(FIELD_MANAGER).force(), false)
            .await
    }

    /// Applies `object`, taking `field` back from whoever changed it when it is the only field
    /// in conflict: for a field whose value only Convoy decides. Any other conflict stays one.
    pub async fn apply_owning(
        &self,
        object: &Object,
        field: &str,
        dry_run: bool,
    ) -> Result<DynamicObject, KubeError> {
        match self.apply(object, dry_run).await {
            Err(KubeError::Conflict { conflicts, .. })
                if conflicts.iter().all(|c| c.field == field) =>
            {
                let mut params = PatchParams::apply(FIELD_MANAGER).force();
                params.dry_run = dry_run;
                self.send(object, params, dry_run).await
            }
            other => other,
        }
    }

    async fn send(
        &self,
        object: &Object,
        params: PatchParams,
        dry_run: bool,
    ) -> Result<DynamicObject, KubeError> {
        let name = object.name();
        let api = self.api(&object.resource);
        let (api, name, params, body) = (&api, &name, &params, &object.object);
        retrying(Backoff::default(), move || async move {
            api.patch(name, params, &Patch::Apply(body)).await
        })
        .await
        .map_err(|e| {
            KubeError::from_kube(
                if dry_run { "dry-run apply" } else { "apply" },
                object.describe(),
                e,
            )
        })
    }

    pub async fn get(
        &self,
        resource: &ApiResource,
        name: &str,
    ) -> Result<Option<DynamicObject>, KubeError> {
        let api = self.api(resource);
        retrying(Backoff::default(), || api.get_opt(name))
            .await
            .map_err(|e| KubeError::from_kube("read", format!("{}/{name}", resource.kind), e))
    }

    /// Deletes `name` and (in the background) what it owns; absent is fine.
    pub async fn delete(&self, resource: &ApiResource, name: &str) -> Result<(), KubeError> {
        let api = self.api(resource);
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match retrying(Backoff::default(), || api.delete(name, &params)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(KubeError::from_kube(
                "delete",
                format!("{}/{name}", resource.kind),
                e,
            )),
        }
    }
}
