//! `sluice app history`: `status.history` as `argocd app history` prints it — a `SOURCE`
//! line, then `ID  DATE  REVISION` rows, the revision as `targetRevision (sha7)`.

use serde_json::Value;

use super::{table, text};

/// The history table of an Application (as JSON).
pub fn history(app: &Value) -> String {
    let entries: Vec<&Value> = app["status"]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let mut out = String::new();
    let mut current_source: Option<String> = None;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let flush = |out: &mut String, source: &Option<String>, rows: &mut Vec<Vec<String>>| {
        if let Some(source) = source {
            out.push_str(&format!("SOURCE  {source}\n"));
            let mut all = vec![vec!["ID".into(), "DATE".into(), "REVISION".into()]];
            all.append(rows);
            out.push_str(&table(&all));
        }
    };
    for entry in entries {
        let source = &entry["source"];
        let url = text(&source["repoURL"]).to_owned();
        if current_source.as_deref() != Some(url.as_str()) {
            flush(&mut out, &current_source, &mut rows);
            if current_source.is_some() {
                out.push('\n');
            }
            current_source = Some(url);
        }
        let target = match text(&source["targetRevision"]) {
            "" => "HEAD",
            t => t,
        };
        let sha: String = text(&entry["revision"]).chars().take(7).collect();
        rows.push(vec![
            entry["id"].as_i64().unwrap_or_default().to_string(),
            text(&entry["deployedAt"]).to_owned(),
            format!("{target} ({sha})"),
        ]);
    }
    flush(&mut out, &current_source, &mut rows);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_block_per_source_revision_with_its_sha() {
        let app = json!({"status": {"history": [
            {"id": 0, "revision": "0123456789abcdef", "deployedAt": "2026-12-01T10:00:00Z",
                "source": {"repoURL": "https://git.example.com/cd.git", "targetRevision": "main"}},
            {"id": 1, "revision": "fedcba9876543210", "deployedAt": "2026-12-02T10:00:00Z",
                "source": {"repoURL": "https://git.example.com/cd.git"}},
        ]}});
        assert_eq!(
            history(&app),
            "SOURCE  https://git.example.com/cd.git\nID  DATE                  REVISION\n0   2026-12-01T10:00:00Z  main (0123456)\n1   2026-12-02T10:00:00Z  HEAD (fedcba9)\n"
        );
        assert_eq!(history(&json!({})), "");
    }
}
