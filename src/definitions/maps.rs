//! The maps the hooks receive, built from the domain's views by the
//! property tables (`properties`), exactly as the metrics contract lists
//! their fields. A hook never sees an id, a person or any text beyond
//! names and labels.
//!
//! Must not depend on anything but the property tables and the domain's
//! views.

use rhai::Map;

use super::properties::{ISSUE, TRANSITION, VERSION};
use crate::domain::classify::{IssueView, TransitionView, VersionView};

/// `project`, `type`, `is_subtask`, `labels`, `status`, `status_category`,
/// `created`, `resolved` (or `()`), `fix_versions`, `affected_versions`,
/// `app_changes`.
pub fn issue(view: &IssueView<'_>) -> Map {
    ISSUE.iter().map(|p| (p.name.into(), (p.read)(view).dynamic())).collect()
}

/// `from`, `to`, `from_category`, `to_category`, `by_app`, `at`.
pub fn transition(view: &TransitionView<'_>) -> Map {
    TRANSITION.iter().map(|p| (p.name.into(), (p.read)(view).dynamic())).collect()
}

/// `name`, `released`, `release_date` (`"YYYY-MM-DD"` or `()`), `archived`.
pub fn version(view: &VersionView<'_>) -> Map {
    VERSION.iter().map(|p| (p.name.into(), (p.read)(view).dynamic())).collect()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use std::sync::Arc;

    use super::*;
    use crate::domain::facts::{FieldValue, Name, StatusCategory};

    #[test]
    fn issue_map_has_exactly_the_contract_fields() {
        let labels: Vec<Name> = vec!["ai-assisted".into()];
        let components: Vec<Name> = vec!["Payments".into(), "Search".into()];
        let fields = vec![
            (Arc::from("Team"), Some(FieldValue::Option("Checkout".into()))),
            (Arc::from("Areas"), Some(FieldValue::Options(["web".into(), "api".into()].into()))),
            (Arc::from("Points"), Some(FieldValue::Number(5.5))),
            (Arc::from("Go-live"), Some(FieldValue::Date(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()))),
            (Arc::from("Severity"), None),
        ];
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
            components: &components,
            priority: Some("High"),
            fields: &fields,
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
                "components",
                "created",
                "fields",
                "fix_versions",
                "is_subtask",
                "labels",
                "priority",
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
        assert_eq!(map["components"].clone().into_array().unwrap().len(), 2);
        assert_eq!(map["priority"].clone().into_string().unwrap(), "High");
        let f = map["fields"].clone().cast::<rhai::Map>();
        assert_eq!(f.len(), 5);
        assert_eq!(f["Team"].clone().into_string().unwrap(), "Checkout");
        assert_eq!(f["Areas"].clone().into_array().unwrap().len(), 2);
        assert_eq!(f["Points"].as_float().unwrap(), 5.5);
        assert_eq!(f["Go-live"].clone().into_string().unwrap(), "2026-03-01");
        assert!(f["Severity"].is_unit());
        let none = IssueView { priority: None, fields: &[], ..view };
        assert!(issue(&none)["priority"].is_unit());
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
