//! Counting a controller's API requests by verb from the API server's audit log (JSON lines, one
//! identity per controller), read incrementally from where the last read stopped.
//!
//! A request counts once: at its `ResponseComplete` event, or at `ResponseStarted` for a watch (a
//! watch completes only when it ends, possibly in a later phase or never).

use crate::error::Error;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Requests by verb (`create`, `list`, `watch`, ...).
pub type VerbCounts = BTreeMap<String, u64>;

#[derive(Debug, Deserialize)]
struct Event {
    stage: String,
    verb: String,
    user: User,
    #[serde(rename = "objectRef")]
    object_ref: Option<ObjectRef>,
    #[serde(rename = "responseStatus")]
    response_status: Option<ResponseStatus>,
}

#[derive(Debug, Deserialize)]
struct ResponseStatus {
    code: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct User {
    username: String,
}

#[derive(Debug, Deserialize)]
struct ObjectRef {
    resource: Option<String>,
    subresource: Option<String>,
}

/// What one read of the log found for one user.
#[derive(Debug, Default, Clone)]
pub struct Slice {
    pub verbs: VerbCounts,
    /// Requests by `verb resource[/subresource]` (`create pods`, `patch daemonsets/status`, ...);
    /// requests the API server refused count under the key with the status code appended
    /// (`delete pods 404`, `update daemonsets/status 409`): wasted work.
    pub by_resource: VerbCounts,
    /// Resources the user started a watch on.
    pub watched: BTreeSet<String>,
}

/// Reads the audit log from a remembered offset.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl AuditLog {
    /// Starts at the current end of the log: earlier requests are not counted.
    pub fn open_at_end(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Self {
            path: path.to_path_buf(),
            offset,
            partial: String::new(),
        }
    }

    /// The requests of `user` logged since the last call (lines of other users are skipped, lines
    /// that do not parse are ignored).
    pub fn read_new(&mut self, user: &str) -> Result<Slice, Error> {
        let mut f = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        f.seek(SeekFrom::Start(self.offset))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut buf = String::new();
        let n = f
            .read_to_string(&mut buf)
            .map_err(|e| Error::io(&self.path, e))?;
        self.offset += n as u64;
        let mut text = std::mem::take(&mut self.partial);
        text.push_str(&buf);
        let complete = match text.rfind('\n') {
            Some(i) => {
                self.partial = text[i + 1..].to_string();
                &text[..i]
            }
            None => {
                self.partial = text;
                return Ok(Slice::default());
            }
        };
        Ok(count(complete, user))
    }
}

fn count(lines: &str, user: &str) -> Slice {
    let mut out = Slice::default();
    for line in lines.lines() {
        // Cheap filter before parsing: most lines are of the other controller or none.
        if !line.contains(user) {
            continue;
        }
        let Ok(e) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        if e.user.username != user {
            continue;
        }
        let resource = e.object_ref.as_ref().map(|o| {
            let r = o.resource.clone().unwrap_or_default();
            match &o.subresource {
                Some(sub) => format!("{r}/{sub}"),
                None => r,
            }
        });
        let counts = match (e.stage.as_str(), e.verb.as_str()) {
            ("ResponseStarted", "watch") => {
                if let Some(r) = e.object_ref.and_then(|o| o.resource) {
                    out.watched.insert(r);
                }
                true
            }
            ("ResponseComplete", "watch") => false,
            ("ResponseComplete", _) => true,
            _ => false,
        };
        if counts {
            let refused = e
                .response_status
                .as_ref()
                .and_then(|s| s.code)
                .filter(|c| *c >= 400)
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            let key = format!("{} {}{refused}", e.verb, resource.unwrap_or_default());
            *out.by_resource.entry(key.trim().to_string()).or_default() += 1;
            *out.verbs.entry(e.verb).or_default() += 1;
        }
    }
    out
}

/// Adds `b` into `a`.
pub fn add(a: &mut VerbCounts, b: &VerbCounts) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stage: &str, verb: &str, user: &str, resource: &str) -> String {
        line_with_code(stage, verb, user, resource, 200)
    }

    fn line_with_code(stage: &str, verb: &str, user: &str, resource: &str, code: u16) -> String {
        format!(
            r#"{{"kind":"Event","level":"Metadata","auditID":"x","stage":"{stage}","verb":"{verb}","user":{{"username":"{user}"}},"objectRef":{{"resource":"{resource}"}},"responseStatus":{{"metadata":{{}},"code":{code}}}}}"#
        )
    }

    #[test]
    fn refused_requests_count_under_their_status_code() {
        let text = [
            line_with_code("ResponseComplete", "delete", "a", "pods", 200),
            line_with_code("ResponseComplete", "delete", "a", "pods", 404),
            line_with_code("ResponseComplete", "delete", "a", "pods", 404),
        ]
        .join("\n");
        let s = count(&text, "a");
        assert_eq!(s.verbs.get("delete"), Some(&3));
        assert_eq!(s.by_resource.get("delete pods"), Some(&1));
        assert_eq!(s.by_resource.get("delete pods 404"), Some(&2));
    }

    #[test]
    fn counts_each_request_once_and_only_the_users() {
        let text = [
            line("ResponseComplete", "create", "a", "pods"),
            line("ResponseComplete", "create", "b", "pods"),
            line("ResponseStarted", "watch", "a", "nodes"),
            line("ResponseComplete", "watch", "a", "nodes"),
            line("ResponseComplete", "list", "a", "nodes"),
            "not json a".to_string(),
        ]
        .join("\n");
        let s = count(&text, "a");
        assert_eq!(s.verbs.get("create"), Some(&1));
        assert_eq!(s.verbs.get("watch"), Some(&1));
        assert_eq!(s.verbs.get("list"), Some(&1));
        assert_eq!(s.verbs.values().sum::<u64>(), 3);
        assert!(s.watched.contains("nodes"));
        assert_eq!(s.by_resource.get("create pods"), Some(&1));
        assert_eq!(s.by_resource.get("watch nodes"), Some(&1));
    }

    #[test]
    fn incremental_reads_keep_a_partial_line() {
        let dir = std::env::temp_dir().join(format!("bench-audit-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("audit.log");
        let l = line("ResponseComplete", "create", "a", "pods");
        std::fs::write(&path, format!("{l}\n")).unwrap_or_default();
        let mut log = AuditLog::open_at_end(&path);
        let (head, tail) = l.split_at(10);
        let append = |s: &str| {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) {
                let _ = f.write_all(s.as_bytes());
            }
        };
        append(head);
        assert!(
            log.read_new("a")
                .map(|s| s.verbs.is_empty())
                .unwrap_or(false)
        );
        append(&format!("{tail}\n"));
        let s = log.read_new("a").map(|s| s.verbs).unwrap_or_default();
        assert_eq!(s.get("create"), Some(&1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
