//! The watcher of the definitions folder: puts a file edit in force
//! without a restart.
//!
//! The watcher polls: every interval it reads the folder's `*.rhai` files
//! and compares their content hash with the set in force. Polling was chosen
//! over file-system notifications because the folder is a handful of small
//! files, it needs no extra dependency, it behaves the same on every
//! platform, inside containers and on network or bind mounts (where
//! notifications are often lost), and editors that save by rename or by
//! truncate-and-write all end in the same observable state. A change is
//! acted on once the folder has read the same on two polls in a row, so a
//! save in progress (several files, or a file written in parts) is not
//! taken half-done.
//!
//! A changed folder is compiled and checked like an `UpdateDefinitions`
//! call; a broken edit is logged with every problem and the definitions in
//! force stay; the same broken content is not reported again. A write by
//! `UpdateDefinitions` itself leaves the folder with exactly the content of
//! the set in force, so it is never taken for an edit (and the update holds
//! the activation lock while it writes, so the watcher never sees it
//! half-done).
//!
//! Must not depend on `schedule` or `persistence`; it activates through
//! `in_force` and recomputes through `recompute`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::in_force::Origin;
use super::refresh::Harvester;
use crate::definitions::{DefinitionFile, DefinitionSet, DefinitionsLoadError};

/// Watches `dir` every `interval` until `shutdown` turns true. `complete`
/// makes of the folder's files what the service made of them at start
/// (the demo adds its teams to the shipped definitions).
pub async fn watch(
    harvester: Arc<Harvester>,
    dir: PathBuf,
    complete: fn(Vec<DefinitionFile>) -> Vec<DefinitionFile>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut seen: Option<String> = None;
    let mut rejected: Option<String> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let folder = dir.clone();
        let Ok(Some(files)) = tokio::task::spawn_blocking(move || DefinitionSet::read_dir(&folder).ok()).await else {
            seen = None;
            continue;
        };
        let files = complete(files);
        let hash = DefinitionSet::content_hash_of(&files);
        let stable = seen.as_deref() == Some(hash.as_str());
        seen = Some(hash.clone());
        if hash == harvester.definitions().content_hash() || rejected.as_deref() == Some(hash.as_str()) || !stable {
            continue;
        }
        let lock = harvester.in_force().lock().await;
        // An update may have written the folder meanwhile: look again.
        if hash == harvester.definitions().content_hash() {
            continue;
        }
        let field_names = harvester.definitions().field_names().to_vec();
        match tokio::task::spawn_blocking(move || DefinitionSet::compile_for(files, &field_names)).await {
            Ok(Ok(set)) => {
                if let Err(e) = harvester.in_force().activate(&lock, set, Origin::File, None).await {
                    warn!(error = %e, "edited definitions not activated");
                    continue;
                }
                drop(lock);
                rejected = None;
                let projects = harvester.recompute_all().await;
                info!(dir = %dir.display(), projects, "edited definitions in force");
            }
            Ok(Err(errors)) => {
                warn!(
                    dir = %dir.display(),
                    hash = %hash,
                    problems = %DefinitionsLoadError::Invalid(errors),
                    "edited definitions rejected; the previous ones stay in force"
                );
                rejected = Some(hash);
            }
            Err(_) => warn!("checking edited definitions stopped unexpectedly"),
        }
    }
}
