//! The AI impact section of `GetMetrics`: the domain comparison as protobuf.
//!
//! Pure conversions: must not depend on the store or do any I/O.

use chrono::NaiveDate;

use crate::domain::aggregate::ProjectAggregates;
use crate::domain::impact::{self, Comparison, Window};
use crate::domain::period::Period;
use crate::domain::stats::StatTest;
use crate::domain::verdict::{Trend, Verdict};
use crate::proto;

fn window(w: Option<&Window>) -> proto::Window {
    match w {
        Some(w) => proto::Window { from_week: w.first.to_string(), to_week: w.last.to_string(), weeks: w.weeks },
        None => proto::Window::default(),
    }
}

fn test(t: StatTest) -> i32 {
    (match t {
        StatTest::None => proto::StatTest::None,
        StatTest::MannWhitneyU => proto::StatTest::MannWhitneyU,
        StatTest::TwoProportionZ => proto::StatTest::TwoProportionZ,
        StatTest::FisherExact => proto::StatTest::FisherExact,
    }) as i32
}

fn verdict(v: Verdict) -> i32 {
    (match v {
        Verdict::NotEnoughData => proto::Verdict::NotEnoughData,
        Verdict::HeldSteady => proto::Verdict::HeldSteady,
        Verdict::Improved => proto::Verdict::Improved,
        Verdict::Worsened => proto::Verdict::Worsened,
    }) as i32
}

fn direction(t: Trend) -> i32 {
    (match t {
        Trend::Better => proto::Direction::Better,
        Trend::Worse => proto::Direction::Worse,
        Trend::Mixed => proto::Direction::Mixed,
        Trend::Unchanged => proto::Direction::Unchanged,
        Trend::NotEnoughData => proto::Direction::NotEnoughData,
    }) as i32
}

fn comparison(c: &Comparison) -> proto::Comparison {
    proto::Comparison {
        metric: c.metric.to_owned(),
        label: c.label.to_owned(),
        before: c.before,
        after: c.after,
        relative_change: c.relative_change,
        before_n: c.before_n,
        after_n: c.after_n,
        test: test(c.test),
        p_value: c.p_value,
        verdict: verdict(c.verdict),
        sentence: c.sentence.clone(),
    }
}

/// The comparison around `rollout`, or an explanation of why there is none.
pub fn ai_impact(projects: &[&ProjectAggregates], period: &Period, rollout: Option<NaiveDate>) -> proto::AiImpact {
    let Some(rollout) = rollout else {
        return proto::AiImpact {
            available: false,
            note: "no AI rollout date: set ai_rollout_date in the request or in the configuration".into(),
            ..proto::AiImpact::default()
        };
    };
    let i = impact::ai_impact(projects, period, rollout);
    proto::AiImpact {
        available: true,
        rollout_date: i.rollout.to_string(),
        before: Some(window(i.before.as_ref())),
        after: Some(window(i.after.as_ref())),
        comparisons: i.before_after.iter().map(comparison).collect(),
        ai_vs_other: i.ai_vs_other.iter().map(comparison).collect(),
        overall: Some(proto::Overall {
            speed: direction(i.overall.speed),
            stability: direction(i.overall.stability),
            sentence: i.overall.sentence.clone(),
        }),
        note: if i.after.is_none() {
            "the rollout week ends after the period: no weeks after the rollout to compare".into()
        } else {
            String::new()
        },
    }
}
