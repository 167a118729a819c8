//! A YAML stream read into nodes that remember where their bytes are, so an edit can replace one
//! scalar and leave every other byte of the file alone. An alias reads as a copy of its anchored
//! node, spans included: editing through `*name` edits the `&name` definition.

use std::{collections::HashMap, ops::Range};

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

/// One node of a document.
#[derive(Debug, Clone)]
pub struct Node {
    /// Bytes of the node's content in the source (for a quoted scalar, quotes included).
    pub span: Range<usize>,
    /// What the node is.
    pub value: Value,
}

/// A node's content.
#[derive(Debug, Clone)]
pub enum Value {
    /// A scalar after escape processing, and how it was written.
    Scalar(String, Style),
    /// Key–value pairs in source order; `flow` for `{…}`.
    Mapping {
        entries: Vec<(Node, Node)>,
        flow: bool,
    },
    /// Items in source order.
    Sequence { items: Vec<Node> },
}

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `value`
    Plain,
    /// `'value'`
    SingleQuoted,
    /// `"value"`
    DoubleQuoted,
    /// `|` or `>`.
    Block,
}

impl Node {
    /// The scalar's text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(text, _) => Some(text),
            _ => None,
        }
    }

    /// The value under `key` in a mapping, following `<<` merge keys as Kubernetes' YAML
    /// reader does (own keys win over merged ones).
    pub fn get(&self, key: &str) -> Option<&Node> {
        let Value::Mapping { entries, .. } = &self.value else {
            return None;
        };
        if let Some((_, value)) = entries.iter().find(|(k, _)| k.as_str() == Some(key)) {
            return Some(value);
        }
        entries
            .iter()
            .filter(|(k, _)| k.as_str() == Some("<<"))
            .flat_map(|(_, merged)| match &merged.value {
                Value::Sequence { items, .. } => items.iter().collect::<Vec<_>>(),
                _ => vec![merged],
            })
            .find_map(|merged| merged.get(key))
    }

    /// The key node of `key` itself (not merged), with its value.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Mapping { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// A sequence's items (empty for anything else).
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Sequence { items, .. } => items,
            _ => &[],
        }
    }
}

/// The source is not YAML this reader accepts.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// The parser's words.
    pub message: String,
}

/// Reads every document of a stream (empty documents are left out).
pub fn parse_stream(text: &str) -> Result<Vec<Node>, ParseError> {
    let mut documents = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|err| ParseError {
            line: err.marker().line(),
            message: err.info(),
        })?;
        let range = span.byte_range().ok_or_else(|| ParseError {
            line: span.start.line(),
            message: "no byte offsets".into(),
        })?;
        let (node, anchor) = match event {
            Event::DocumentStart(..) => {
                anchors.clear();
                continue;
            }
            Event::Scalar(text, style, anchor, _) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    _ => Style::Block,
                };
                let node = Node {
                    span: range,
                    value: Value::Scalar(text.into_owned(), style),
                };
                (node, anchor)
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => (node.clone(), 0),
                None => {
                    return Err(ParseError {
                        line: span.start.line(),
                        message: "alias of an unknown anchor".into(),
                    });
                }
            },
            Event::MappingStart(style, anchor, _) => {
                stack.push(Frame::Mapping {
                    start: range.start,
                    flow: style == StructureStyle::Flow,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
                continue;
            }
            Event::SequenceStart(style, anchor, _) => {
                stack.push(Frame::Sequence {
                    start: range.start,
                    flow: style == StructureStyle::Flow,
                    anchor,
                    items: Vec::new(),
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let frame = stack.pop().expect("an end matches a start");
                frame.finish(range.end)
            }
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(frame) => frame.push(node),
            None => documents.push(node),
        }
    }
    Ok(documents)
}

enum Frame {
    Mapping {
        start: usize,
        flow: bool,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
    Sequence {
        start: usize,
        flow: bool,
        anchor: usize,
        items: Vec<Node>,
    },
}

impl Frame {
    fn push(&mut self, node: Node) {
        match self {
            Frame::Mapping { entries, key, .. } => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            Frame::Sequence { items, .. } => items.push(node),
        }
    }

    fn finish(self, end: usize) -> (Node, usize) {
        match self {
            Frame::Mapping {
                start,
                flow,
                anchor,
                entries,
                ..
            } => {
                // A block mapping ends where its last value does (its end event sits at the
                // next token); a flow mapping after its `}`.
                let end = match entries.last() {
                    Some((_, last)) if !flow => last.span.end,
                    _ => end,
                };
                (
                    Node {
                        span: start..end,
                        value: Value::Mapping { entries, flow },
                    },
                    anchor,
                )
            }
            Frame::Sequence {
                start,
                flow,
                anchor,
                items,
            } => {
                let end = match items.last() {
                    Some(last) if !flow => last.span.end,
                    _ => end,
                };
                (
                    Node {
                        span: start..end,
                        value: Value::Sequence { items },
                    },
                    anchor,
                )
            }
        }
    }
}

/// 1-based line of byte `offset`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].bytes().filter(|&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_spans_cover_exactly_their_source_bytes() {
        let text = "a: plain # note\nb: 'single'\nc: \"double\"\nd: {e: flow, f: [x, 'y']}\n";
        let docs = parse_stream(text).unwrap();
        let doc = &docs[0];
        let slice = |node: &Node| &text[node.span.clone()];
        assert_eq!(slice(doc.get("a").unwrap()), "plain");
        assert_eq!(slice(doc.get("b").unwrap()), "'single'");
        assert_eq!(slice(doc.get("c").unwrap()), "\"double\"");
        let d = doc.get("d").unwrap();
        assert_eq!(slice(d.get("e").unwrap()), "flow");
        assert_eq!(slice(&d.get("f").unwrap().items()[1]), "'y'");
    }

    #[test]
    fn aliases_carry_their_anchors_span_and_merge_keys_are_followed() {
        let text =
            "x: &img registry/app:1.0\nbase: &base {name: app}\nc:\n  <<: *base\n  image: *img\n";
        let docs = parse_stream(text).unwrap();
        let c = docs[0].get("c").unwrap();
        assert_eq!(c.get("name").unwrap().as_str(), Some("app"));
        let image = c.get("image").unwrap();
        assert_eq!(&text[image.span.clone()], "registry/app:1.0");
        assert_eq!(image.span.start, 8);
    }

    #[test]
    fn multibyte_text_and_crlf_keep_byte_offsets() {
        let text = "# é ü\r\na: \"ö\"\r\nb: v1\r\n---\r\nc: 'x'\r\n";
        let docs = parse_stream(text).unwrap();
        assert_eq!(&text[docs[0].get("b").unwrap().span.clone()], "v1");
        assert_eq!(&text[docs[1].get("c").unwrap().span.clone()], "'x'");
    }
}
