//! A site's data as the minimised facts the harvester would hold after
//! harvesting it, built directly (no HTTP): for benchmarks and for previews
//! against the demo site. Status changes by `app` accounts count as by an
//! app; only `status` items of the changelog are kept, oldest first.

use crate::domain::facts::{IssueFacts, ProjectFacts, StatusCategory, StatusChange, StatusFacts, StatusRef, VersionFacts};

use super::{Site, SiteProject};

/// The facts of every project of `site`, in site order.
pub fn project_facts(site: &Site) -> Vec<ProjectFacts> {
    let statuses: Vec<StatusFacts> = site
        .statuses
        .iter()
        .map(|s| StatusFacts { id: s.id.clone(), name: s.name.clone(), category: StatusCategory::from_key(&s.category_key) })
        .collect();
    site.projects.iter().map(|p| one_project(site, p, &statuses)).collect()
}

fn one_project(site: &Site, project: &SiteProject, statuses: &[StatusFacts]) -> ProjectFacts {
    let category = |id: &str| {
        site.statuses.iter().find(|s| s.id == id).map_or(StatusCategory::Undefined, |s| StatusCategory::from_key(&s.category_key))
    };
    let issues = project
        .issues
        .iter()
        .map(|i| {
            let mut changes: Vec<StatusChange> = i
                .histories
                .iter()
                .flat_map(|h| {
                    let by_app = h.author.as_ref().is_some_and(|a| a.account_type == "app");
                    let at = h.created.timestamp_millis();
                    h.items.iter().filter(|item| item.field == "status").map(move |item| StatusChange {
                        at,
                        from: StatusRef {
                            id: item.from.clone().unwrap_or_default(),
                            name: item.from_string.clone().unwrap_or_default(),
                        },
                        to: StatusRef { id: item.to.clone().unwrap_or_default(), name: item.to_string.clone().unwrap_or_default() },
                        by_app,
                    })
                })
                .collect();
            changes.sort_by_key(|c| c.at);
            let status_name = site.statuses.iter().find(|s| s.id == i.status_id).map(|s| s.name.clone()).unwrap_or_default();
            IssueFacts {
                id: i.id.clone(),
                project: project.key.clone(),
                issue_type: i.issue_type.clone(),
                is_subtask: i.is_subtask,
                labels: i.labels.clone(),
                created: i.created.timestamp_millis(),
                updated: i.updated.timestamp_millis(),
                resolved: i.resolved.map(|t| t.timestamp_millis()),
                status: StatusRef { id: i.status_id.clone(), name: status_name },
                status_category: category(&i.status_id),
                fix_versions: i.fix_versions.clone(),
                affected_versions: i.affected_versions.clone(),
                changes,
            }
        })
        .collect();
    let versions = project
        .versions
        .iter()
        .map(|v| VersionFacts {
            id: v.id.clone(),
            name: v.name.clone(),
            released: v.released,
            release_date: v.release_date,
            archived: v.archived,
        })
        .collect();
    ProjectFacts { key: project.key.clone(), issues, versions, statuses: statuses.to_vec() }
}
