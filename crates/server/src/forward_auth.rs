//! Forward-auth's view of a proxied request: the path normalised as RFC 3986 section
//! 6.2.2 does, and the configured rules that turn method and path into a question.
//!
//! Matching the raw path would let `/%72esources/7`, `/x/../resources/7` or
//! `//resources/7` slip past a `/resources/*` rule while the upstream, which normalises,
//! acts on `/resources/7`. So the path is normalised first (unreserved percent-encodings
//! decoded, the others upper-cased, duplicate slashes merged, dot segments removed), and
//! an encoding that would change the path's structure for some upstream (`%2F`, `%5C`,
//! `%00`, or a raw `\`) is refused rather than guessed at.

use crate::config::ForwardRoute;
use crate::decisions::Question;

/// Why a path cannot be decided on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub &'static str);

/// The normal form of an absolute request path (no query).
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError("the original path must start with /"));
    }
    let bytes = raw.as_bytes();
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(PathError("the path has a malformed percent-encoding"))?;
                match hex {
                    b'/' | b'\\' | 0 => {
                        return Err(PathError(
                            "the path encodes /, \\ or NUL (%2F, %5C, %00), which upstreams read differently",
                        ));
                    }
                    c if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => {
                        decoded.push(char::from(c));
                    }
                    c => decoded.push_str(&format!("%{c:02X}")),
                }
                i += 3;
            }
            b'\\' => {
                return Err(PathError(
                    "the path holds a \\, which some upstreams read as /",
                ));
            }
            c if c.is_ascii_control() || c == b' ' => {
                return Err(PathError("the path holds a control character or space"));
            }
            _ => {
                // Copy a whole UTF-8 character (the path came from a &str).
                let len = raw[i..].chars().next().map_or(1, char::len_utf8);
                decoded.push_str(&raw[i..i + len]);
                i += len;
                continue;
            }
        }
    }
    Ok(remove_dot_segments(&decoded))
}

/// Merges duplicate slashes and removes `.` and `..` segments (RFC 3986 section 5.2.4;
/// `..` above the root stays at the root). A trailing `.`/`..` or slash leaves a
/// trailing slash, as the RFC's algorithm does.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "" | "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut normal = String::with_capacity(path.len());
    for s in &out {
        normal.push('/');
        normal.push_str(s);
    }
    if trailing_slash || normal.is_empty() {
        normal.push('/');
    }
    normal
}

/// A rule's path: a prefix (written with a trailing `*`) that matches on segment
/// boundaries, or an exact path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// `/resources/*` and `/resources*` both match `/resources`, `/resources/` and
    /// everything below, never `/resourcesX`.
    Prefix(String),
    Exact(String),
}

impl PathPattern {
    /// A pattern from the config. It must already be in normal form, so what the
    /// operator wrote is what is compared.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let (body, prefix) = match pattern.strip_suffix('*') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        if !body.starts_with('/') {
            return Err(format!(
                "{pattern:?} must start with / (a prefix ending in \"*\", or an exact path)"
            ));
        }
        if body.contains('*') {
            return Err(format!("{pattern:?}: \"*\" may only end a prefix"));
        }
        match normalize(body) {
            Ok(normal) if normal == body => {}
            Ok(normal) => {
                return Err(format!(
                    "{pattern:?} is not in normal form; write {normal:?} instead"
                ));
            }
            Err(e) => return Err(format!("{pattern:?}: {e}")),
        }
        Ok(if prefix {
            Self::Prefix(body.trim_end_matches('/').to_owned())
        } else {
            Self::Exact(body.to_owned())
        })
    }

    /// Whether a normalised path matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == p,
            Self::Prefix(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }
}

/// The configured rules, parsed once.
#[derive(Debug, Clone, Default)]
pub struct Rules(Vec<(PathPattern, ForwardRoute)>);

impl Rules {
    /// The rules of a checked config (`Config::check` refuses a bad pattern).
    pub fn new(routes: &[ForwardRoute]) -> Self {
        Self(
            routes
                .iter()
                .filter_map(|r| {
                    PathPattern::parse(&r.pattern())
                        .ok()
                        .map(|p| (p, r.clone()))
                })
                .collect(),
        )
    }

    /// The question for a method and a normalised path: the first matching rule's, else
    /// action `http:<METHOD>` on resource `<path>`.
    pub fn question_for(&self, method: &str, path: &str) -> Question {
        let matched = self
            .0
            .iter()
            .find(|(pattern, r)| r.applies_to(method) && pattern.matches(path))
            .map(|(_, r)| r);
        match matched {
            Some(ForwardRoute {
                purpose: Some(p), ..
            }) => Question::Purpose(p.clone()),
            Some(r) => Question::Action {
                action: r.action.clone().unwrap_or_default(),
                resource: r
                    .resource
                    .clone()
                    .unwrap_or_default()
                    .replace("{path}", path),
                attributes: None,
            },
            None => Question::Action {
                action: format!("http:{method}"),
                resource: path.to_owned(),
                attributes: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_as_rfc_3986_says() {
        for (raw, normal) in [
            ("/resources/7", "/resources/7"),
            ("/%72esources/7", "/resources/7"),
            ("/x/../resources/7", "/resources/7"),
            ("/./resources/7", "/resources/7"),
            ("//resources//7", "/resources/7"),
            ("/resources/%2e%2E/resources/7", "/resources/7"),
            ("/../../resources/7", "/resources/7"),
            ("/resources/7/.", "/resources/7/"),
            ("/resources/", "/resources/"),
            ("/", "/"),
            ("/a%3fb", "/a%3Fb"),
            ("/caf\u{e9}", "/caf\u{e9}"),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(normal), "{raw}");
        }
        for raw in [
            "/resources%2F7",
            "/resources%2f7",
            "/resources%5C7",
            "/resources%007",
            "/resources\\7",
            "/resources/%zz",
            "/resources/%4",
            "resources/7",
        ] {
            assert!(normalize(raw).is_err(), "{raw}");
        }
    }

    fn route(path: &str, methods: &[&str], purpose: Option<&str>) -> ForwardRoute {
        ForwardRoute {
            method: methods.iter().map(|m| m.to_string()).collect(),
            path: Some(path.into()),
            path_prefix: None,
            action: purpose.is_none().then(|| "delete".into()),
            resource: purpose.is_none().then(|| "res:{path}".into()),
            purpose: purpose.map(str::to_owned),
        }
    }

    #[test]
    fn routes_map_in_order_and_fall_back_to_method_and_path() {
        let rules = Rules::new(&[
            route("/admin/*", &["DELETE"], Some("admin:resources:delete")),
            route("/resources/*", &[], None),
        ]);
        assert!(matches!(
            rules.question_for("DELETE", "/admin/x"),
            Question::Purpose(p) if p == "admin:resources:delete"
        ));
        assert!(matches!(
            rules.question_for("GET", "/resources/7"),
            Question::Action { action, resource, .. } if action == "delete" && resource == "res:/resources/7"
        ));
        assert!(matches!(
            rules.question_for("GET", "/admin/x"),
            Question::Action { action, resource, .. } if action == "http:GET" && resource == "/admin/x"
        ));
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let p = PathPattern::parse("/resources/*").unwrap();
        assert!(p.matches("/resources/7"));
        assert!(p.matches("/resources"));
        assert!(p.matches("/resources/"));
        assert!(!p.matches("/resourcesX/7"));
        let exact = PathPattern::parse("/admin").unwrap();
        assert!(exact.matches("/admin"));
        assert!(!exact.matches("/admin/x"));
        assert!(PathPattern::parse("/*").unwrap().matches("/anything"));
        assert!(PathPattern::parse("/a/../b*").is_err());
        assert!(PathPattern::parse("/a*/b").is_err());
        assert!(PathPattern::parse("a/*").is_err());
    }
}
