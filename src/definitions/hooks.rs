//! The nine hooks a definition set defines: each one's name and what it is
//! called with, in the order every per-hook table of the set follows.
//!
//! Must not depend on anything else of the service.

/// What a hook is called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Issue,
    IssueAndTransition,
    Version,
}

/// One of the nine hooks.
#[derive(Debug)]
pub struct HookSpec {
    pub name: &'static str,
    pub input: Input,
}

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

pub const HOOKS: [HookSpec; 9] = [
    HookSpec { name: "is_excluded", input: Input::Issue },
    HookSpec { name: "is_deployment", input: Input::Version },
    HookSpec { name: "is_deployment_transition", input: Input::IssueAndTransition },
    HookSpec { name: "is_failure", input: Input::Issue },
    HookSpec { name: "is_failure_transition", input: Input::IssueAndTransition },
    HookSpec { name: "is_incident", input: Input::Issue },
    HookSpec { name: "is_restore", input: Input::IssueAndTransition },
    HookSpec { name: "is_work_start", input: Input::IssueAndTransition },
    HookSpec { name: "is_ai_involved", input: Input::Issue },
];
