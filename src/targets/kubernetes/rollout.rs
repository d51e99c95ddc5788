//! Provisioning a version beside the others and moving traffic to it: server-side apply,
//! replicas by patch, readiness by watch, the stable Service's selector or canary replica shares.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};

use crate::config::Strategy;
use crate::execute::TargetError;

use super::KubeError;
use super::objects::VersionObjects;
use super::records::FIELD_MANAGER;
use super::retry::{Backoff, retrying};
use super::target::{KubeTarget, action, kube};
use super::track::Written;
use super::traffic;

impl KubeTarget {
    /// Applies a version's ConfigMaps, Secrets, PDB and Deployment (at `replicas`), then waits by
    /// watch until the rollout is done or fails.
    pub(super) async fn provision(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let mut objects = self.objects(service, version).await?;
        let Some(deployment) = objects.deployment.take() else {
            return Err(action(
                service,
                "provision",
                "the templates render no Deployment",
            ));
        };
        let total = objects.replicas();
        let replicas =
            if self.strategy == Strategy::Canary && self.has_other_live(service, version).await? {
                traffic::canary_counts(total, &self.steps)
                    .first()
                    .copied()
                    .unwrap_or(total)
            } else {
                total
            };
        // ConfigMaps, Secrets and the PDB are objects of their own: applied together, all
        // before the Deployment whose pods read them, and beside the read of the Deployment
        // as it is (a resumed provision finds it).
        let supporting = || {
            let applies = objects.supporting.iter();
            futures::future::try_join_all(applies.map(|o| self.applier.apply(o, false)))
        };
        let applying = async {
            supporting()
                .await
                .map_err(|e| kube(service, "provision", e))
        };
        let read = self.deployment(service, version, "provision");
        let (found, _) = futures::try_join!(read, applying)?;
        let existing = match found {
            Some(found) if found.metadata.deletion_timestamp.is_some() => {
                // Whoever deletes it may be deleting the ConfigMaps and Secrets it read, which
                // this version shares (their names are content hashes): applied again once it
                // is gone.
                let gone = self.await_gone(service, version).await?;
                supporting()
                    .await
                    .map_err(|e| kube(service, "provision", e))?;
                gone
            }
            found => found,
        };
        let applied_at = self.clock.now();
        // A new Deployment is created at its count: created at the default of one and then
        // scaled, its controller (rate-limited on a busy control plane) would sync it twice and
        // start the other pods a sync later. The apply then owns `spec.replicas` until the first
        // change of the count (canary steps, scaling to zero, an HPA) takes it over, so an
        // existing one (a resumed provision) is applied at the count it has, which neither
        // changes it nor, left out, lets it fall back to the default.
        let existing = existing.map(|d| d.spec.as_ref().and_then(|s| s.replicas));
        let count = existing.unwrap_or(Some(replicas));
        let deployment = deployment.with_replicas(count.map(i64::from));
        let applied = self
            .applier
            .apply(&deployment, false)
            .await
            .map_err(|e| kube(service, "provision", e))?;
        // One just created is at its count with no traffic share (read as none): the apply's
        // answer is what the wait is for. One that existed is set to its count and share.
        // (The patch notes its own write with the tracker; the create's is noted here.)
        let written = match existing {
            None => {
                let created = Written::of_meta(&applied.metadata);
                self.tracker
                    .wrote(&format!("{service}-{version}"), &created);
                created
            }
            Some(_) => Written::of(&self.set_replicas(service, version, replicas, 0).await?),
        };
        // A thousand provisions wait at once: none holds its objects while it does.
        drop((objects, deployment, applied));
        self.wait(service, version, applied_at, &written).await
    }

    /// Whether another revision of `service` takes its traffic now (a canary starts beside it).
    async fn has_other_live(&self, service: &str, version: &str) -> Result<bool, TargetError> {
        let state = self
            .observe_all(&[service.to_string()])
            .await
            .map_err(|e| kube(service, "observe", e))?;
        Ok(state
            .get(service)
            .and_then(|s| s.live.as_ref())
            .is_some_and(|l| l != version))
    }

    /// Waits for the rollout of `version`'s Deployment as `written` (or later) left it.
    pub(super) async fn wait(
        &self,
        service: &str,
        version: &str,
        applied_at: jiff::Timestamp,
        written: &Written,
    ) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        self.tracker
            .wait_rollout(&name, written, applied_at, &*self.clock, &self.graces)
            .await
            .map_err(|failure| TargetError::Unhealthy {
                service: service.to_string(),
                version: version.to_string(),
                detail: failure.to_string(),
            })
    }

    /// Sets a version's replicas (and the traffic share it was given); waits for readiness when
    /// the Deployment, as the patch left it, does not already serve `replicas` updated, ready
    /// pods — a warm revision switched back (a rollback) or a canary's old revision scaled down
    /// waits for nothing and starts no watch.
    pub(super) async fn scale(
        &self,
        service: &str,
        version: &str,
        replicas: i32,
        share: u8,
    ) -> Result<(), TargetError> {
        let applied_at = self.clock.now();
        let patched = self.set_replicas(service, version, replicas, share).await?;
        if replicas > 0 && !serving(&patched, replicas) {
            let written = Written::of(&patched);
            drop(patched); // the answer is not held while the watches follow it
            self.wait(service, version, applied_at, &written).await?;
        }
        Ok(())
    }

    /// Sets a version's replicas and traffic share in one merge patch (replicas are not applied
    /// server-side, see [`VersionObjects`]); returns the Deployment as the patch left it. No read
    /// first: the answer carries the status the decision to wait needs.
    pub(super) async fn set_replicas(
        &self,
        service: &str,
        version: &str,
        replicas: i32,
        share: u8,
    ) -> Result<Deployment, TargetError> {
        let mut patch = traffic::share_patch(share);
        patch["spec"] = serde_json::json!({"replicas": replicas});
        match self.patch_deployment(service, version, &patch).await {
            Ok(Some(patched)) => Ok(patched),
            Ok(None) => Err(action(
                service,
                "scale",
                format!("Deployment {service}-{version} does not exist"),
            )),
            Err(e) => Err(kube(service, "scale", e)),
        }
    }

    /// Merge-patches a version's Deployment as Convoy's field manager; `None` when it is gone.
    async fn patch_deployment(
        &self,
        service: &str,
        version: &str,
        patch: &serde_json::Value,
    ) -> Result<Option<Deployment>, KubeError> {
        let name = format!("{service}-{version}");
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let api = self.deployments();
        let (api, name_ref, params) = (&api, &name, &params);
        let result = retrying(Backoff::default(), move || async move {
            api.patch(name_ref, params, &Patch::Merge(patch)).await
        });
        match result.await {
            Ok(patched) => {
                self.tracker.wrote(&name, &Written::of(&patched));
                Ok(Some(patched))
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(e) => Err(KubeError::from_kube(
                "patch",
                format!("Deployment/{name}"),
                e,
            )),
        }
    }

    pub(super) async fn switch(
        &self,
        service: &str,
        from: Option<&str>,
        to: &str,
        percent: u8,
        baseline: bool,
    ) -> Result<(), TargetError> {
        // Only what the switch applies is kept while it waits for the incoming replicas.
        let VersionObjects {
            replicas: total,
            service: stable,
            autoscaler,
            held,
            ..
        } = self.objects(service, to).await?;
        drop(held);
        let pinned = percent >= 100;
        let count = if pinned {
            total
        } else {
            traffic::canary_count(total, &self.steps, percent)
        };
        // The outgoing revision's traffic follows the Service's selector.
        let outgoing = async {
            let Some(from) = from.filter(|f| *f != to) else {
                return Ok(());
            };
            let (old_replicas, old_share) = match (&stable, pinned) {
                // A pinned selector sends nothing to the old version: it stays warm as it is.
                (Some(_), true) => (None, 0),
                // A worker takes work by running: it switches by scaling.
                (None, true) => (Some(0), 0),
                (_, false) => (Some((total - count).max(0)), 100 - percent),
            };
            match old_replicas {
                Some(replicas) if !pinned => {
                    // Its autoscaler must not resize it under the step's shares.
                    self.pin_autoscaler(service, from, replicas).await?;
                    self.scale(service, from, replicas, old_share).await?
                }
                Some(replicas) => self.scale(service, from, replicas, old_share).await?,
                None => self.share(service, from, old_share).await?,
            }
            if pinned {
                self.unpin_autoscaler(service, from).await?;
            }
            Ok::<(), TargetError>(())
        };
        // A pinned switch to a revision seen serving its count — by the release's watches (one
        // it provisioned), or before they start by its observation (a warm revision a rollback
        // returns to) — has nothing to write or wait for before the selector moves: its share
        // label, which only records the traffic, is written beside the selector. Any other
        // incoming revision is patched to its count and share, and waited for, first.
        let seen_serving =
            pinned && stable.is_some() && self.tracker.serving(&format!("{service}-{to}"), count);
        let labelled = async {
            if seen_serving {
                self.share(service, to, 100).await?;
            }
            Ok::<(), TargetError>(())
        };
        // The new version first takes its replicas and is ready, then traffic moves, then the
        // old version lets go.
        let traffic = async {
            if !seen_serving {
                self.scale(service, to, count, percent.min(100)).await?;
            }
            if !pinned && stable.is_some() {
                // The widened selector must find only the two revisions in play.
                let keep: Vec<&str> = [Some(to), from].into_iter().flatten().collect();
                self.isolate(service, &keep).await?;
            }
            let Some(mut stable) = stable.clone() else {
                return outgoing.await;
            };
            let selector = traffic::selector(service, pinned.then_some(to));
            stable.object.data["spec"]["selector"] =
                serde_json::to_value(selector).unwrap_or_default();
            let select = async {
                self.applier
                    .apply_owning(&stable, traffic::SELECTOR_FIELD, false)
                    .await
                    .map_err(|e| kube(service, "switch", e))
                    .map(drop)
            };
            if pinned {
                // The selector alone decides where a pinned Service sends traffic; the old
                // version's share label only records it, and is written beside it.
                futures::try_join!(select, outgoing, labelled).map(drop)
            } else {
                // Canary shares are replica counts: the old version shrinks once the widened
                // selector is in place.
                select.await?;
                outgoing.await
            }
        };
        // The incoming revision's autoscaler and its restart baseline touch other objects: read
        // and written beside the traffic chain, not one round trip after it.
        let incoming = async {
            if pinned {
                // A switch back to a revision a canary had pinned (a rollback) frees its
                // autoscaler.
                self.unpin_autoscaler(service, to).await?;
                if let Some(autoscaler) = &autoscaler {
                    self.apply_autoscaler(autoscaler)
                        .await
                        .map_err(|e| kube(service, "switch", e))?;
                }
            }
            Ok::<(), TargetError>(())
        };
        // The restarts a bake's health check counts from, read beside the traffic chain; with
        // no bake there is no check to count for.
        let restarts = async {
            match baseline {
                true => self.restart_count(service, to).await.map(Some),
                false => Ok(None),
            }
        };
        let ((), (), restarts) = futures::try_join!(traffic, incoming, restarts)?;
        if let (Some(restarts), Ok(mut seen)) = (restarts, self.restarts.lock()) {
            seen.insert((service.to_string(), to.to_string()), restarts);
        }
        Ok(())
    }

    /// Records the traffic share a version was given (a label; see [`traffic::TRAFFIC_LABEL`]).
    pub(super) async fn share(
        &self,
        service: &str,
        version: &str,
        share: u8,
    ) -> Result<(), TargetError> {
        self.patch_deployment(service, version, &traffic::share_patch(share))
            .await
            .map(drop)
            .map_err(|e| kube(service, "switch", e))
    }
}

/// Whether a Deployment, as a patch of its replicas left it, already serves `replicas` pods of
/// its template, updated, ready and available, with no other pod — nothing to wait for. Its
/// status may be one generation behind (the patch's own change, not yet seen by the
/// controller), which is enough when that status had settled with at least `replicas` pods:
/// the change can only have kept or lowered the count. Any older status, or one short of a
/// replica, is not.
pub(super) fn serving(deployment: &Deployment, replicas: i32) -> bool {
    let Some(status) = &deployment.status else {
        return false;
    };
    let generation = deployment.metadata.generation.unwrap_or(1);
    let seen = status.observed_generation.unwrap_or(0) >= generation - 1;
    let pods = status.replicas.unwrap_or(0);
    let at_least = |count: Option<i32>| count.unwrap_or(0) >= replicas;
    seen && replicas > 0
        && status.updated_replicas.unwrap_or(0) == pods
        && at_least(status.replicas)
        && at_least(status.ready_replicas)
        && at_least(status.available_replicas)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(generation: i64, observed: i64, counts: [i32; 4]) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "api-a1", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {
                "observedGeneration": observed,
                "replicas": counts[0],
                "updatedReplicas": counts[1],
                "readyReplicas": counts[2],
                "availableReplicas": counts[3],
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_patched_deployment_serves_only_when_its_status_already_shows_the_pods_it_wants() {
        // Switched back at the count it runs: the patch changed nothing the controller must see.
        assert!(serving(&deployment(3, 3, [2, 2, 2, 2]), 2));
        // Scaled down (the patch's own change not yet seen): the pods it keeps are there.
        assert!(serving(&deployment(4, 3, [2, 2, 2, 2]), 1));
        // Scaled up: pods to wait for, seen or not.
        assert!(!serving(&deployment(4, 3, [2, 2, 2, 2]), 3));
        assert!(!serving(&deployment(3, 3, [2, 2, 2, 2]), 3));
        // A status two generations old says nothing about what the patch left.
        assert!(!serving(&deployment(5, 3, [2, 2, 2, 2]), 2));
        // An old pod still around, one not updated, one not ready, one not yet available.
        assert!(!serving(&deployment(3, 3, [3, 2, 2, 2]), 2));
        assert!(!serving(&deployment(3, 3, [2, 1, 2, 2]), 2));
        assert!(!serving(&deployment(3, 3, [2, 2, 1, 2]), 2));
        assert!(!serving(&deployment(3, 3, [2, 2, 2, 1]), 2));
        // No status at all (just created), and nothing to serve.
        let mut fresh = deployment(1, 1, [0; 4]);
        fresh.status = None;
        assert!(!serving(&fresh, 2));
        assert!(!serving(&deployment(3, 3, [0, 0, 0, 0]), 0));
    }
}
