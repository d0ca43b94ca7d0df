//! Leader election with a coordination.k8s.io Lease, as client-go does it: the holder
//! renews the lease; others take it over only once it has expired. Writes use the
//! lease's resourceVersion, so two candidates can never both win a round.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::logging::repeats;

const ELECTION_FAILED: &str = "leader election round failed";

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This instance's identity (the pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews (and others retry).
    pub retry_period: Duration,
}

/// Failed to read or write the Lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("reading lease {namespace}/{name}: {source}")]
    Read {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing lease {namespace}/{name}: {source}")]
    Write {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Outcome of one election round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// This instance holds the lease until at least the returned renew time + duration.
    Leading,
    /// Someone else holds a valid lease.
    Following,
}

/// Runs election rounds until `stop` flips to true, publishing leadership on the returned
/// channel. Leadership is dropped at once when a renewal fails past the lease duration
/// or another holder appears.
pub fn spawn(client: Client, settings: LeaseSettings, mut stop: watch::Receiver<bool>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
        let mut last_renewal: Option<tokio::time::Instant> = None;
        let lease = format!("{}/{}", settings.namespace, settings.name);
        let repeat_key = format!("{lease}/{}", settings.identity);
        loop {
            let outcome = round(&api, &settings).await;
            if outcome.is_ok() && repeats().clear(&repeat_key, ELECTION_FAILED).is_some() {
                tracing::info!(identity = %settings.identity, "leader election works again");
            }
            let leading = match outcome {
                Ok(Round::Leading) => {
                    last_renewal = Some(tokio::time::Instant::now());
                    true
                }
                Ok(Round::Following) => false,
                Err(err) => {
                    if let Some(suppressed) = repeats().admit(&repeat_key, ELECTION_FAILED) {
                        tracing::warn!(error = %err, suppressed, "{ELECTION_FAILED}");
                    }
                    // Keep leading only while the lease we last wrote is still valid.
                    last_renewal.is_some_and(|t| t.elapsed() < settings.lease_duration.mul_f32(0.8))
                }
            };
            if !leading {
                last_renewal = None;
            }
            if *tx.borrow() != leading {
                if leading {
                    tracing::info!(identity = %settings.identity, %lease, "leadership gained: this instance acts now");
                } else {
                    tracing::info!(identity = %settings.identity, %lease, "leadership lost: this instance stops acting");
                }
                let _ = tx.send(leading);
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.retry_period) => {}
                _ = stop.changed() => {
                    if *stop.borrow() {
                        let _ = tx.send(false);
                        if leading { release(&api, &settings).await; }
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// One round: create, renew or take over the lease, or follow its holder.
pub async fn round(api: &Api<Lease>, s: &LeaseSettings) -> Result<Round, LeaseError> {
    let read_err = |source| LeaseError::Read {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        source,
    };
    let write_err = |source| LeaseError::Write {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        source,
    };
    let now = Timestamp::now();
    let Some(mut lease) = api.get_opt(&s.name).await.map_err(read_err)? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(s.name.clone()),
                ..Default::default()
            },
            spec: Some(held_spec(s, now, now, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Round::Leading),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following),
            Err(e) => Err(write_err(e)),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let mine = holder == s.identity;
    let expired = lease_expired(&spec, now);
    if !mine && !holder.is_empty() && !expired {
        return Ok(Round::Following);
    }
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
    let acquired = if mine {
        spec.acquire_time.map(|t| t.0).unwrap_or(now)
    } else {
        now
    };
    lease.spec = Some(held_spec(s, acquired, now, transitions));
    // replace carries the resourceVersion we read: a concurrent winner makes this a 409.
    match api.replace(&s.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(Round::Leading),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following),
        Err(e) => Err(write_err(e)),
    }
}

fn held_spec(s: &LeaseSettings, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(s.identity.clone()),
        lease_duration_seconds: Some(s.lease_duration.as_secs().max(1) as i32),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// Whether the lease's holder failed to renew within its duration.
pub fn lease_expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let (Some(renewed), Some(seconds)) = (spec.renew_time.as_ref(), spec.lease_duration_seconds) else {
        return true;
    };
    let deadline = renewed.0.as_second() + i64::from(seconds);
    now.as_second() >= deadline
}

/// Gives the lease up on shutdown so a successor need not wait for it to expire.
async fn release(api: &Api<Lease>, s: &LeaseSettings) {
    if let Ok(Some(mut lease)) = api.get_opt(&s.name).await
        && lease.spec.as_ref().and_then(|sp| sp.holder_identity.as_deref()) == Some(s.identity.as_str())
    {
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = None;
        }
        if let Err(err) = api.replace(&s.name, &PostParams::default(), &lease).await {
            tracing::warn!(%err, "releasing the leader lease failed; it will expire instead");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_expires_after_its_duration() {
        let renewed = Timestamp::from_second(1_000).expect("ts");
        let spec = LeaseSpec {
            renew_time: Some(MicroTime(renewed)),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(!lease_expired(&spec, Timestamp::from_second(1_014).expect("ts")));
        assert!(lease_expired(&spec, Timestamp::from_second(1_015).expect("ts")));
        assert!(
            lease_expired(&LeaseSpec::default(), renewed),
            "a lease nobody renewed is free"
        );
    }
}
