//! Creating an object and following its phase until it ends: shared by `backup`,
//! `restore` and `failover`.

use std::fmt::Debug;
use std::time::Duration;

use kube::api::PostParams;
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CliError;

/// Creates `object` and returns its server-assigned name.
pub async fn create<K>(api: &Api<K>, object: &K) -> Result<String, CliError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let created = api
        .create(&PostParams::default(), object)
        .await
        .map_err(|source| CliError::Kube {
            context: "creating the request".into(),
            source,
        })?;
    Ok(created.meta().name.clone().unwrap_or_default())
}

/// Polls `name` until `phase_of` says it ended, printing each new phase. Returns the last
/// object; a timeout is an error naming the phase it was stuck in.
pub async fn follow<K, F>(api: &Api<K>, name: &str, timeout: Duration, mut describe: F) -> Result<K, CliError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    F: FnMut(&K) -> (Option<String>, bool),
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_phase: Option<String> = None;
    loop {
        let object = api.get(name).await.map_err(|source| CliError::Kube {
            context: format!("reading {name}"),
            source,
        })?;
        let (phase, ended) = describe(&object);
        if phase != last_phase {
            println!("{name}: {}", phase.as_deref().unwrap_or("Pending"));
            last_phase = phase.clone();
        }
        if ended {
            return Ok(object);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(CliError::Other(format!(
                "{name} still {} after {timeout:?}; it goes on in the cluster (see kubectl get lifeboat)",
                phase.as_deref().unwrap_or("Pending")
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
