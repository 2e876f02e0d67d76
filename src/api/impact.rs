//! The AI impact section of `GetMetrics`.

use chrono::NaiveDate;

use crate::domain::aggregate::ProjectAggregates;
use crate::domain::period::Period;
use crate::proto::AiImpact;

pub fn ai_impact(_projects: &[&ProjectAggregates], _period: &Period, rollout: Option<NaiveDate>) -> AiImpact {
    match rollout {
        None => AiImpact {
            available: false,
            note: "no AI rollout date: set ai_rollout_date in the request or in the configuration".into(),
            ..AiImpact::default()
        },
        Some(date) => AiImpact {
            available: false,
            rollout_date: date.to_string(),
            note: "the AI impact comparison is not available yet".into(),
            ..AiImpact::default()
        },
    }
}
