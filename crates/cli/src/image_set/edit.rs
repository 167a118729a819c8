//! The byte edits that change one [`Site`] to a new image: a replaced scalar in its own quoting
//! style (re-quoted only where the new text would read as something other than a string), a key
//! inserted into or removed from a kustomize entry; and applying edits and showing them as a
//! diff. Pure: text in, text out.

use std::{ops::Range, sync::LazyLock};

use regex::Regex;

use super::{
    locate::{Holder, Part, Scalar, Site},
    reference::{ImageRef, NewImage},
    yaml::{Node, Style, Value},
};

/// Replace `range` of the source with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// Bytes replaced (empty for an insertion).
    pub range: Range<usize>,
    /// What goes there.
    pub text: String,
}

/// Why a site cannot be changed in place.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    /// `|` and `>` scalars are not rewritten.
    #[error("{0}: the image is a block scalar (| or >); write it as a plain or quoted scalar")]
    BlockScalar(String),
    /// The new image lacks the part a Helm value holds.
    #[error("{0} holds a {1}, and the new image has none")]
    MissingPart(String, &'static str),
    /// A kustomize key that would have to go cannot be cut out cleanly.
    #[error(
        "{0}: cannot remove `{1}` in place (it starts the entry or shares a line); edit it by hand"
    )]
    CannotRemove(String, &'static str),
    /// Two sites edit overlapping bytes.
    #[error("two edits overlap at byte {0}")]
    Overlap(usize),
}

/// The image `site` will hold, and the edits that put it there (none if it already does).
pub fn plan(site: &Site, new: &NewImage, source: &str) -> Result<(ImageRef, Vec<Edit>), EditError> {
    let current = &site.current;
    match &site.holder {
        Holder::Container { scalar, .. } => {
            let target = new.resolve(current);
            let edits = replace(scalar, &target.to_string(), &site.description, source)?;
            Ok((target, edits))
        }
        Holder::Helm {
            scalar, part, path, ..
        } => {
            let mut target = current.clone();
            let text = match part {
                Part::Whole => {
                    target = new.resolve(current);
                    target.to_string()
                }
                Part::Tag => {
                    target.tag = Some(
                        new.tag
                            .clone()
                            .ok_or(EditError::MissingPart(path.clone(), "tag"))?,
                    );
                    target.digest = None;
                    target.tag.clone().unwrap()
                }
                Part::Digest => {
                    target.digest = Some(
                        new.digest
                            .clone()
                            .ok_or(EditError::MissingPart(path.clone(), "digest"))?,
                    );
                    target.tag = None;
                    target.digest.clone().unwrap()
                }
                Part::Repository => {
                    if let Some(repository) = &new.repository {
                        target.repository = repository.clone();
                    }
                    target.repository.clone()
                }
            };
            Ok((target, replace(scalar, &text, &site.description, source)?))
        }
        Holder::Kustomize { entry, .. } => {
            let target = new.resolve(current);
            let what = &site.description;
            let mut edits = Vec::new();
            if target.repository != current.repository {
                edits.extend(set_key(entry, "newName", &target.repository, source, what)?);
            }
            // The new image has a tag, a digest or both: set those, drop the other.
            for (key, value) in [("newTag", &target.tag), ("digest", &target.digest)] {
                match value {
                    Some(value) => edits.extend(set_key(entry, key, value, source, what)?),
                    None if entry.entry(key).is_some() => {
                        edits.push(remove_key(entry, key, source, what)?);
                    }
                    None => {}
                }
            }
            Ok((target, edits))
        }
    }
}

fn replace(scalar: &Scalar, value: &str, what: &str, source: &str) -> Result<Vec<Edit>, EditError> {
    if scalar.value == value {
        return Ok(Vec::new());
    }
    let text =
        render(value, scalar.style).ok_or_else(|| EditError::BlockScalar(what.to_owned()))?;
    if scalar.span.is_empty() {
        // `key:` with no value: the empty scalar sits at the key's end; the value goes after
        // the colon.
        let colon = source[scalar.span.start..]
            .find(':')
            .map_or(scalar.span.start, |i| scalar.span.start + i + 1);
        return Ok(vec![Edit {
            range: colon..colon,
            text: format!(" {text}"),
        }]);
    }
    Ok(vec![Edit {
        range: scalar.span.clone(),
        text,
    }])
}

/// `value` written in `style`; a plain scalar is double-quoted when plain text would not read
/// back as this string (a number, a boolean, a date, a leading indicator). `None` for block
/// scalars.
pub fn render(value: &str, style: Style) -> Option<String> {
    match style {
        Style::Plain if plain_is_string(value) => Some(value.to_owned()),
        Style::Plain | Style::DoubleQuoted => Some(format!(
            "\"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        )),
        Style::SingleQuoted => Some(format!("'{}'", value.replace('\'', "''"))),
        Style::Block => None,
    }
}

/// Whether `value` written plain reads back as the same string under YAML 1.2's core schema and
/// YAML 1.1 (which Kubernetes' and Helm's readers still follow for booleans, numbers and dates).
pub fn plain_is_string(value: &str) -> bool {
    static NOT_A_STRING: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"^(?:~|null|Null|NULL",
            r"|[yY]|[nN]|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
            r"|[-+]?(?:0|[1-9][0-9_]*)",
            r"|[-+]?0[0-7_]+|0o[0-7]+|[-+]?0x[0-9a-fA-F_]+|[-+]?0b[01_]+",
            r"|[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?",
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?",
            r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+).*)?",
            r"|<<|=)$"
        ))
        .expect("a valid pattern")
    });
    let Some(first) = value.chars().next() else {
        return false;
    };
    !("-?:,[]{}#&*!|>'\"%@`".contains(first)
        || value.ends_with(':')
        || value.contains(": ")
        || value.contains(" #")
        || value.contains(['\t', '\n', '\r', ',', '[', ']', '{', '}'])
        || value.chars().any(char::is_control)
        || value.trim() != value
        || NOT_A_STRING.is_match(value))
}

/// Replaces the value under `key` in a kustomize entry, or adds the key after the entry's last.
fn set_key(
    entry: &Node,
    key: &str,
    value: &str,
    source: &str,
    what: &str,
) -> Result<Vec<Edit>, EditError> {
    if let Some((_, node)) = entry.entry(key) {
        let Value::Scalar(old, style) = &node.value else {
            return Err(EditError::BlockScalar(what.to_owned()));
        };
        let scalar = Scalar {
            span: node.span.clone(),
            style: *style,
            value: old.clone(),
        };
        return replace(&scalar, value, what, source);
    }
    let Value::Mapping { entries, flow } = &entry.value else {
        return Ok(Vec::new());
    };
    let (first_key, _) = entries.first().expect("an entry has a name");
    let (_, last_value) = entries.last().expect("an entry has a name");
    // New keys take the quoting of the entry's `name` when it is quoted.
    let style = match entry.entry("name").map(|(_, v)| &v.value) {
        Some(Value::Scalar(_, style @ (Style::SingleQuoted | Style::DoubleQuoted))) => *style,
        _ => Style::Plain,
    };
    let text = render(value, style).unwrap_or_default();
    if *flow {
        return Ok(vec![Edit {
            range: last_value.span.end..last_value.span.end,
            text: format!(", {key}: {text}"),
        }]);
    }
    let line_start = source[..first_key.span.start]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let indent = " ".repeat(source[line_start..first_key.span.start].chars().count());
    let eol = line_ending(source, last_value.span.end);
    Ok(vec![match source[last_value.span.end..].find('\n') {
        Some(newline) => {
            let at = last_value.span.end + newline + 1;
            Edit {
                range: at..at,
                text: format!("{indent}{key}: {text}{eol}"),
            }
        }
        None => Edit {
            range: source.len()..source.len(),
            text: format!("{eol}{indent}{key}: {text}"),
        },
    }])
}

/// Cuts the whole line of `key: value` out of a block kustomize entry.
fn remove_key(
    entry: &Node,
    key: &'static str,
    source: &str,
    what: &str,
) -> Result<Edit, EditError> {
    let cannot = || EditError::CannotRemove(what.to_owned(), key);
    let Value::Mapping {
        entries,
        flow: false,
    } = &entry.value
    else {
        return Err(cannot());
    };
    let index = entries
        .iter()
        .position(|(k, _)| k.as_str() == Some(key))
        .ok_or_else(cannot)?;
    let (key_node, value) = &entries[index];
    let line_start = source[..key_node.span.start]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let starts_line = source[line_start..key_node.span.start].trim().is_empty();
    let line_end = source[value.span.end..]
        .find('\n')
        .map_or(source.len(), |i| value.span.end + i + 1);
    let next_on_line = entries
        .get(index + 1)
        .is_some_and(|(next, _)| next.span.start < line_end);
    if index == 0 || !starts_line || next_on_line {
        return Err(cannot());
    }
    Ok(Edit {
        range: line_start..line_end,
        text: String::new(),
    })
}

fn line_ending(source: &str, offset: usize) -> &'static str {
    match source[offset..].find('\n') {
        Some(i) if i > 0 && source.as_bytes()[offset + i - 1] == b'\r' => "\r\n",
        Some(_) => "\n",
        None if source.contains("\r\n") => "\r\n",
        None => "\n",
    }
}

/// `source` with `edits` applied (identical edits count once).
pub fn apply(source: &str, edits: &[Edit]) -> Result<String, EditError> {
    let mut edits = edits.to_vec();
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    edits.dedup();
    let mut out = String::with_capacity(source.len() + 64);
    let mut at = 0;
    for edit in &edits {
        if edit.range.start < at {
            return Err(EditError::Overlap(edit.range.start));
        }
        out.push_str(&source[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&source[at..]);
    Ok(out)
}

/// A unified diff (no context lines) of `edits` on `source`, headed by `path`.
pub fn diff(path: &str, source: &str, edits: &[Edit]) -> String {
    let mut edits = edits.to_vec();
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    edits.dedup();
    let mut out = if path.starts_with('/') {
        format!("--- {path}\n+++ {path}\n")
    } else {
        format!("--- a/{path}\n+++ b/{path}\n")
    };
    let mut shift: isize = 0;
    let mut index = 0;
    while index < edits.len() {
        // Edits on the same lines form one hunk.
        let start = source[..edits[index].range.start]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let mut end = line_end(
            source,
            edits[index].range.end,
            edits[index].range.is_empty(),
        );
        let mut last = index;
        while last + 1 < edits.len() && edits[last + 1].range.start < end {
            last += 1;
            end = end.max(line_end(
                source,
                edits[last].range.end,
                edits[last].range.is_empty(),
            ));
        }
        let hunk: Vec<Edit> = edits[index..=last]
            .iter()
            .map(|e| Edit {
                range: e.range.start - start..e.range.end - start,
                text: e.text.clone(),
            })
            .collect();
        let old = &source[start..end];
        let new = apply(old, &hunk).unwrap_or_default();
        let old_lines: Vec<&str> = old.lines().collect();
        let new_lines: Vec<&str> = new.lines().collect();
        let line = source[..start].matches('\n').count() + 1;
        out.push_str(&format!(
            "@@ -{line},{} +{},{} @@\n",
            old_lines.len(),
            line as isize + shift,
            new_lines.len()
        ));
        for text in old_lines {
            out.push_str(&format!("-{}\n", text.trim_end_matches('\r')));
        }
        for text in &new_lines {
            out.push_str(&format!("+{}\n", text.trim_end_matches('\r')));
        }
        shift += new_lines.len() as isize - old.lines().count() as isize;
        index = last + 1;
    }
    out
}

/// End of the line holding `offset` (after its newline); an insertion at a line start ends there.
fn line_end(source: &str, offset: usize, insertion: bool) -> usize {
    if insertion && (offset == 0 || source.as_bytes()[offset - 1] == b'\n') {
        return offset;
    }
    source[offset..]
        .find('\n')
        .map_or(source.len(), |i| offset + i + 1)
}

#[cfg(test)]
mod tests {
    use super::super::{locate, reference::NewImage, yaml::parse_stream};
    use super::*;

    #[test]
    fn plain_scalars_stay_plain_unless_the_new_text_would_not_be_a_string() {
        for string in [
            "1.2.3",
            "v1.2",
            "abc1234",
            "registry:5000/app:1.2.3",
            "app@sha256:ab",
            "1.2.3-rc.1",
        ] {
            assert!(plain_is_string(string), "{string}");
        }
        for not in [
            "1.2",
            "0123456",
            "1234567",
            "1e10",
            "yes",
            "off",
            "null",
            "2024-01-02",
            ".5",
            "0x1f",
            "",
            "-x",
            "a: b",
        ] {
            assert!(!plain_is_string(not), "{not}");
        }
        assert_eq!(render("1.10", Style::Plain).unwrap(), "\"1.10\"");
        assert_eq!(render("it's", Style::SingleQuoted).unwrap(), "'it''s'");
        assert_eq!(render("a\"b", Style::DoubleQuoted).unwrap(), "\"a\\\"b\"");
    }

    fn kustomize(source: &str, new: &str) -> Result<String, EditError> {
        let docs = parse_stream(source).unwrap();
        let site = &locate::kustomize_images(&docs[0], true)[0];
        let (_, edits) = plan(site, &NewImage::parse(new).unwrap(), source)?;
        apply(source, &edits)
    }

    #[test]
    fn kustomize_entries_gain_and_lose_keys_in_their_own_layout() {
        let source = "images:\n  - name: app # the app\n    newTag: v1\n\nresources: [a.yaml]\n";
        assert_eq!(
            kustomize(source, "r.io/app:v2").unwrap(),
            "images:\n  - name: app # the app\n    newTag: v2\n    newName: r.io/app\n\nresources: [a.yaml]\n"
        );
        assert_eq!(
            kustomize(source, "@sha256:ff").unwrap(),
            "images:\n  - name: app # the app\n    digest: sha256:ff\n\nresources: [a.yaml]\n"
        );
        let crlf = "images:\r\n- name: 'app'\r\n";
        assert_eq!(
            kustomize(crlf, ":1.0").unwrap(),
            "images:\r\n- name: 'app'\r\n  newTag: '1.0'\r\n"
        );
        let flow = "images: [{name: app, newTag: v1}]\n";
        assert_eq!(
            kustomize(flow, "app@sha256:aa").unwrap_err(),
            EditError::CannotRemove("kustomization images: app".into(), "newTag")
        );
        assert_eq!(
            kustomize("images: [{name: app}]", ":v3").unwrap(),
            "images: [{name: app, newTag: v3}]"
        );
        assert_eq!(
            kustomize(
                "images:\n- name: app\n  newTag:\n  newName: r/app\n",
                ":2.0.0"
            )
            .unwrap(),
            "images:\n- name: app\n  newTag: 2.0.0\n  newName: r/app\n"
        );
    }

    #[test]
    fn diffs_show_whole_old_and_new_lines() {
        let source = "a: 1\nimage: app:1 # keep\nb: 2\n";
        let at = source.find("app:1").unwrap();
        let edits = [Edit {
            range: at..at + 5,
            text: "app:2".into(),
        }];
        assert_eq!(
            diff("x.yaml", source, &edits),
            "--- a/x.yaml\n+++ b/x.yaml\n@@ -2,1 +2,1 @@\n-image: app:1 # keep\n+image: app:2 # keep\n"
        );
    }
}
