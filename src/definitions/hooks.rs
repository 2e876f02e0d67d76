//! The ten hooks a definition set defines: each one's name, what it is
//! called with and what it answers, in the order every per-hook table of the
//! set follows; and the optional `teams` hook, which answers with names.
//!
//! Must not depend on anything else of the service.

/// What a hook is called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Issue,
    IssueAndTransition,
    Version,
}

/// What a hook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    Bool,
    /// An integer from 0 to `MAX_FAILURE_WINDOW_DAYS`.
    Days,
    /// An array of team names (`checked_teams`).
    Teams,
}

/// One of the ten hooks.
#[derive(Debug)]
pub struct HookSpec {
    pub name: &'static str,
    pub input: Input,
    pub returns: Returns,
}

/// The number of hooks.
pub const HOOK_COUNT: usize = 10;

impl HookSpec {
    pub fn arity(&self) -> usize {
        match self.input {
            Input::Issue | Input::Version => 1,
            Input::IssueAndTransition => 2,
        }
    }
    pub fn signature(&self) -> String {
        let params = match self.input {
            Input::Issue => "issue",
            Input::IssueAndTransition => "issue, t",
            Input::Version => "version",
        };
        format!("fn {}({params})", self.name)
    }
}

pub const HOOKS: [HookSpec; HOOK_COUNT] = [
    HookSpec { name: "is_excluded", input: Input::Issue, returns: Returns::Bool },
    HookSpec { name: "is_deployment", input: Input::Version, returns: Returns::Bool },
    HookSpec { name: "is_deployment_transition", input: Input::IssueAndTransition, returns: Returns::Bool },
    HookSpec { name: "is_failure", input: Input::Issue, returns: Returns::Bool },
    HookSpec { name: "is_failure_transition", input: Input::IssueAndTransition, returns: Returns::Bool },
    HookSpec { name: "is_incident", input: Input::Issue, returns: Returns::Bool },
    HookSpec { name: "is_restore", input: Input::IssueAndTransition, returns: Returns::Bool },
    HookSpec { name: "is_work_start", input: Input::IssueAndTransition, returns: Returns::Bool },
    HookSpec { name: "is_ai_involved", input: Input::Issue, returns: Returns::Bool },
    HookSpec { name: "failure_window_days", input: Input::Issue, returns: Returns::Days },
];

/// The optional hook: the teams of an issue, `[]` when not defined.
pub const TEAMS: HookSpec = HookSpec { name: "teams", input: Input::Issue, returns: Returns::Teams };
