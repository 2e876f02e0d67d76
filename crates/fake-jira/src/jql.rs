//! The sliver of JQL the fake understands: `project = KEY`, optional
//! `AND updated >= "yyyy-MM-dd HH:mm"` and `AND created >= "..."`, an
//! optional `ORDER BY updated ASC|DESC` or `ORDER BY created ASC[, key
//! ASC]`. Anything else is an error, as Jira would answer 400.

use chrono::{NaiveDate, NaiveDateTime};

/// A parsed query. The date is the site's local wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jql {
    pub project: String,
    pub updated_since: Option<NaiveDateTime>,
    /// Also the site's local wall-clock time.
    pub created_since: Option<NaiveDateTime>,
    /// `Some(true)` for `ORDER BY updated DESC`, `Some(false)` for ASC.
    pub updated_desc: Option<bool>,
    /// `ORDER BY created ASC` (with or without `, key ASC`).
    pub created_asc: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(String),
}

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let q = c;
            let mut v = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err("The quoted string is not terminated.".into()),
                    Some('\\') => {
                        if let Some(n) = cs.get(i + 1) {
                            v.push(*n);
                        }
                        i += 2;
                    }
                    Some(ch) if *ch == q => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        v.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Quoted(v));
        } else if c == ',' {
            out.push(Tok::Op(",".into()));
            i += 1;
        } else if "=<>!~".contains(c) {
            let mut v = String::new();
            while i < cs.len() && "=<>!~".contains(cs[i]) {
                v.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Op(v));
        } else {
            let mut v = String::new();
            while i < cs.len() && !cs[i].is_whitespace() && !"=<>!~\"',".contains(cs[i]) {
                v.push(cs[i]);
                i += 1;
            }
            out.push(Tok::Word(v));
        }
    }
    Ok(out)
}

fn word_is(t: Option<&Tok>, w: &str) -> bool {
    matches!(t, Some(Tok::Word(v)) if v.eq_ignore_ascii_case(w))
}

fn value(t: Option<&Tok>) -> Option<String> {
    match t {
        Some(Tok::Word(v)) | Some(Tok::Quoted(v)) => Some(v.clone()),
        _ => None,
    }
}

fn date(s: &str) -> Option<NaiveDateTime> {
    for f in ["%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

/// Parses the supported JQL, or returns Jira-style error text.
pub fn parse(s: &str) -> Result<Jql, String> {
    if s.trim().is_empty() {
        return Err("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.".into());
    }
    let t = tokens(s)?;
    let mut i = 0;
    if !word_is(t.get(i), "project") || t.get(i + 1) != Some(&Tok::Op("=".into())) {
        return Err(format!("Error in the JQL Query: this fake only understands `project = KEY` first (query: {s})."));
    }
    let project = value(t.get(i + 2)).ok_or("Error in the JQL Query: expecting a project key.")?;
    i += 3;
    let (mut updated_since, mut created_since) = (None, None);
    while word_is(t.get(i), "and") {
        let slot = if word_is(t.get(i + 1), "updated") {
            &mut updated_since
        } else if word_is(t.get(i + 1), "created") {
            &mut created_since
        } else {
            return Err(
                "Error in the JQL Query: only `AND updated >= \"date\"` and `AND created >= \"date\"` are supported."
                    .into(),
            );
        };
        let field = value(t.get(i + 1)).unwrap_or_default().to_lowercase();
        if t.get(i + 2) != Some(&Tok::Op(">=".into())) || slot.is_some() {
            return Err(format!("Error in the JQL Query: only one `{field} >= \"date\"` is supported."));
        }
        let v = value(t.get(i + 3)).ok_or("Error in the JQL Query: expecting a date.")?;
        *slot = Some(date(&v).ok_or_else(|| {
            format!("Date value '{v}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.")
        })?);
        i += 4;
    }
    let mut updated_desc = None;
    let mut created_asc = false;
    if word_is(t.get(i), "order") {
        if !word_is(t.get(i + 1), "by") {
            return Err("Error in the JQL Query: expecting `BY` after `ORDER`.".into());
        }
        if word_is(t.get(i + 2), "updated") {
            i += 3;
            if word_is(t.get(i), "desc") {
                updated_desc = Some(true);
                i += 1;
            } else {
                if word_is(t.get(i), "asc") {
                    i += 1;
                }
                updated_desc = Some(false);
            }
        } else if word_is(t.get(i + 2), "created") && !word_is(t.get(i + 3), "desc") {
            created_asc = true;
            i += 3;
            if word_is(t.get(i), "asc") {
                i += 1;
            }
            if t.get(i) == Some(&Tok::Op(",".into())) {
                if !word_is(t.get(i + 1), "key") {
                    return Err("Error in the JQL Query: only `ORDER BY created ASC, key ASC` is supported.".into());
                }
                i += 2;
                if word_is(t.get(i), "asc") {
                    i += 1;
                }
            }
        } else {
            return Err(
                "Error in the JQL Query: only `ORDER BY updated` and `ORDER BY created ASC` are supported.".into()
            );
        }
    }
    if i != t.len() {
        return Err("Error in the JQL Query: unexpected text after the query.".into());
    }
    Ok(Jql { project, updated_since, created_since, updated_desc, created_asc })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, Option<&str>, Option<bool>), ()>) {
        let got = parse(input);
        match expected {
            Ok((p, since, desc)) => {
                let q = got.unwrap_or_else(|e| panic!("{input}: {e}"));
                assert_eq!(q.project, p, "{input}");
                assert_eq!(q.updated_since, since.map(|d| date(d).unwrap()), "{input}");
                assert_eq!(q.updated_desc, desc, "{input}");
            }
            Err(()) => assert!(got.is_err(), "{input} should be rejected"),
        }
    }

    #[test]
    fn supported_and_rejected_queries() {
        check("project = \"OPS\"", Ok(("OPS", None, None)));
        check(
            "project = \"OPS\" AND updated >= \"2025-06-01 10:05\" AND created >= \"2025-01-01 00:00\" ORDER BY created ASC, key ASC",
            Ok(("OPS", Some("2025-06-01 10:05"), None)),
        );
        let q = parse("project = OPS AND created >= \"2025-01-01 09:30\" ORDER BY created ASC").unwrap();
        assert_eq!((q.created_since, q.created_asc), (Some(date("2025-01-01 09:30").unwrap()), true));
        check("project = OPS ORDER BY created DESC", Err(()));
        check("project = OPS AND created >= \"2025-01-01\" AND created >= \"2025-01-02\"", Err(()));
        check("project = OPS ORDER BY created ASC, summary ASC", Err(()));
        check("project=OPS ORDER BY updated ASC", Ok(("OPS", None, Some(false))));
        check(
            "project = \"OPS\" AND updated >= \"2025-06-01 10:05\" ORDER BY updated DESC",
            Ok(("OPS", Some("2025-06-01 10:05"), Some(true))),
        );
        check("", Err(()));
        check("   ", Err(()));
        check("summary ~ \"x\"", Err(()));
        check("project = OPS OR project = PAY", Err(()));
        check("project = OPS AND updated >= \"yesterday\"", Err(()));
        check("project = \"OPS", Err(()));
    }
}
