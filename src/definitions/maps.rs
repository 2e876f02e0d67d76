//! The maps the hooks receive, built from the domain's views exactly as the
//! metrics contract lists their fields. A hook never sees an id, a person
//! or any text beyond names and labels.

use rhai::{Array, Dynamic, Map};

use crate::domain::classify::{IssueView, TransitionView, VersionView};
use crate::domain::facts::Millis;

fn string(s: &str) -> Dynamic {
    Dynamic::from(s.to_owned())
}

fn strings<'s>(items: impl IntoIterator<Item = &'s str>) -> Dynamic {
    Dynamic::from_array(items.into_iter().map(string).collect::<Array>())
}

fn millis(ms: Millis) -> Dynamic {
    Dynamic::from_int(ms)
}

/// `project`, `type`, `is_subtask`, `labels`, `status`, `status_category`,
/// `created`, `resolved` (or `()`), `fix_versions`, `affected_versions`,
/// `app_changes`.
pub fn issue(view: &IssueView<'_>) -> Map {
    let mut map = Map::new();
    map.insert("project".into(), string(view.project));
    map.insert("type".into(), string(view.issue_type));
    map.insert("is_subtask".into(), Dynamic::from_bool(view.is_subtask));
    map.insert("labels".into(), strings(view.labels.iter().map(String::as_str)));
    map.insert("status".into(), string(view.status));
    map.insert("status_category".into(), string(view.status_category.key()));
    map.insert("created".into(), millis(view.created));
    map.insert("resolved".into(), view.resolved.map_or(Dynamic::UNIT, millis));
    map.insert("fix_versions".into(), strings(view.fix_versions.iter().copied()));
    map.insert("affected_versions".into(), strings(view.affected_versions.iter().copied()));
    map.insert("app_changes".into(), Dynamic::from_int(i64::from(view.app_changes)));
    map
}

/// `from`, `to`, `from_category`, `to_category`, `by_app`, `at`.
pub fn transition(view: &TransitionView<'_>) -> Map {
    let mut map = Map::new();
    map.insert("from".into(), string(view.from));
    map.insert("to".into(), string(view.to));
    map.insert("from_category".into(), string(view.from_category.key()));
    map.insert("to_category".into(), string(view.to_category.key()));
    map.insert("by_app".into(), Dynamic::from_bool(view.by_app));
    map.insert("at".into(), millis(view.at));
    map
}

/// `name`, `released`, `release_date` (`"YYYY-MM-DD"` or `()`), `archived`.
pub fn version(view: &VersionView<'_>) -> Map {
    let mut map = Map::new();
    map.insert("name".into(), string(view.name));
    map.insert("released".into(), Dynamic::from_bool(view.released));
    map.insert(
        "release_date".into(),
        view.release_date.map_or(Dynamic::UNIT, |d| string(&d.format("%Y-%m-%d").to_string())),
    );
    map.insert("archived".into(), Dynamic::from_bool(view.archived));
    map
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::facts::StatusCategory;

    #[test]
    fn issue_map_has_exactly_the_contract_fields() {
        let labels = vec!["ai-assisted".to_owned()];
        let view = IssueView {
            project: "OPS",
            issue_type: "Bug",
            is_subtask: false,
            labels: &labels,
            status: "Done",
            status_category: StatusCategory::Done,
            created: 1_000,
            resolved: None,
            fix_versions: vec!["1.0"],
            affected_versions: vec![],
            app_changes: 2,
            transitions: vec![],
        };
        let map = issue(&view);
        let mut keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "affected_versions",
                "app_changes",
                "created",
                "fix_versions",
                "is_subtask",
                "labels",
                "project",
                "resolved",
                "status",
                "status_category",
                "type"
            ]
        );
        assert!(map["resolved"].is_unit());
        assert_eq!(map["status_category"].clone().into_string().unwrap(), "done");
        assert_eq!(map["app_changes"].as_int().unwrap(), 2);
        assert_eq!(map["labels"].clone().into_array().unwrap().len(), 1);
    }

    #[test]
    fn transition_map_uses_category_keys() {
        let view = TransitionView {
            from: "To Do",
            to: "In Progress",
            from_category: StatusCategory::New,
            to_category: StatusCategory::Indeterminate,
            by_app: true,
            at: 42,
        };
        let map = transition(&view);
        assert_eq!(map.len(), 6);
        assert_eq!(map["from_category"].clone().into_string().unwrap(), "new");
        assert_eq!(map["to_category"].clone().into_string().unwrap(), "indeterminate");
        assert!(map["by_app"].as_bool().unwrap());
        assert_eq!(map["at"].as_int().unwrap(), 42);
    }

    #[test]
    fn version_release_date_is_an_iso_date_or_unit() {
        let dated = VersionView {
            name: "2.1",
            released: true,
            release_date: NaiveDate::from_ymd_opt(2026, 3, 2),
            archived: false,
        };
        assert_eq!(version(&dated)["release_date"].clone().into_string().unwrap(), "2026-03-02");
        let undated = VersionView { release_date: None, ..dated };
        assert!(version(&undated)["release_date"].is_unit());
    }
}
