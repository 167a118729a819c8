//! Watches: HTTP 200, then one JSON event per line, as long as the client stays and the timeout
//! has not passed. Starts from a resourceVersion (resuming from history) or from now (with the
//! current objects as `ADDED`); an expired resourceVersion answers with an `ERROR` event carrying
//! a 410 `Status`, never a plain 410, so kube-rs re-lists.

use std::{sync::Arc, time::Duration};

use axum::{body::Body, response::Response};
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use serde_json::json;
use tokio::sync::{broadcast::error::RecvError, mpsc};

use super::{ApiError, ApiResult, ApiServer, ResourceRequest, json_bytes, read::Filter, view};
use crate::{
    registry::ResourceType,
    store::{EventType, StoredObject, WatchEvent},
};

/// How often an idle watch with bookmarks enabled gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);
/// Watch length when the client sets no `timeoutSeconds` (Kubernetes picks 30–60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Starts a watch.
pub fn serve(server: &Arc<ApiServer>, request: ResourceRequest) -> ApiResult<Response> {
    let filter = Filter::from_request(&request)?;
    if let Some(name) = &request.path.name {
        // `GET /…/pods/x?watch=true` is a watch with `metadata.name=x`.
        let pinned = crate::selector::FieldSelector::parse(&format!("metadata.name={name}"), &[])
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        return start(
            server,
            request,
            Filter {
                fields: pinned,
                ..filter
            },
        );
    }
    start(server, request, filter)
}

fn start(server: &Arc<ApiServer>, request: ResourceRequest, filter: Filter) -> ApiResult<Response> {
    let rt = request.rt.clone();
    let version = request.path.version.clone();
    let bookmarks = request.query.flag("allowWatchBookmarks");
    let timeout = request
        .query
        .int("timeoutSeconds")
        .filter(|t| *t > 0)
        .map_or(DEFAULT_TIMEOUT, |t| Duration::from_secs(t as u64));
    let since = match request.query.get("resourceVersion") {
        None | Some("0") => None,
        Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {rv:?}: must be an unsigned integer"
            ))
        })?),
    };
    let send_initial = request.query.flag("sendInitialEvents");
    let mut writer = EventWriter {
        rt: rt.clone(),
        version,
        table: super::kubectl::table::wanted(&request.headers),
        metadata_only: view::metadata_wanted(&request.headers),
        include: super::kubectl::table::Include::from_query(&request.query)?,
        definitions_sent: false,
    };
    let (initial, subscription) = match since {
        None => {
            let (objects, subscription) = server
                .store
                .subscribe_with_snapshot(&rt.storage, filter.namespace.as_deref());
            let initial: Vec<Bytes> = objects
                .iter()
                .filter(|o| filter.matches(o))
                .map(|o| writer.object_line("ADDED", o))
                .collect();
            (initial, subscription)
        }
        Some(since) => match server.store.subscribe(Some(since)) {
            Ok(subscription) => (Vec::new(), subscription),
            Err(expired) => {
                let status = ApiError::expired(since, expired.oldest).to_status();
                let line = writer.line("ERROR", &Bytes::from(status.to_string()));
                return Ok(json_bytes(StatusCode::OK, line));
            }
        },
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut last_rv = subscription.rv;
    tokio::spawn(async move {
        let mut receiver = subscription.receiver;
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if send_initial && bookmarks {
            let end = writer.bookmark(last_rv, true);
            if tx.send(end).await.is_err() {
                return;
            }
        }
        for event in subscription.backlog {
            last_rv = event.rv();
            if let Some(line) = writer.event(&event, &filter)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(writer.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                received = receiver.recv() => match received {
                    Ok(event) => {
                        last_rv = event.rv();
                        if let Some(line) = writer.event(&event, &filter)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let status = ApiError::expired(last_rv, last_rv + 1).to_status();
                        let _ = tx.send(writer.line("ERROR", &Bytes::from(status.to_string()))).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::convert::Infallible>(line), rx))
    });
    Ok(json_bytes(StatusCode::OK, Body::from_stream(stream)))
}

/// Renders events for one watch.
struct EventWriter {
    rt: Arc<ResourceType>,
    version: String,
    /// Objects as one-row Tables (`kubectl get -w`).
    table: bool,
    /// Objects as their `PartialObjectMetadata` (metadata watches).
    metadata_only: bool,
    /// What each Table row carries of its object.
    include: super::kubectl::table::Include,
    /// Tables carry column definitions in their first event only.
    definitions_sent: bool,
}

impl EventWriter {
    fn object_line(&mut self, kind: &str, object: &StoredObject) -> Bytes {
        if self.metadata_only {
            let output = view::output(&self.rt, &self.version, object);
            return self.line(kind, &view::metadata_only(&output));
        }
        if !self.table {
            return self.line(kind, &view::output(&self.rt, &self.version, object));
        }
        let value = view::output_value(&self.rt, &self.version, &object.value());
        let rendered = super::kubectl::table::render(
            &self.rt,
            &[value],
            Some(object.rv.to_string()),
            !self.definitions_sent,
            self.include,
            jiff::Timestamp::now(),
        );
        self.definitions_sent = true;
        self.line(kind, &Bytes::from(rendered.to_string()))
    }

    fn line(&self, kind: &str, object: &Bytes) -> Bytes {
        let mut line = BytesMut::with_capacity(object.len() + 32);
        line.put_slice(b"{\"type\":\"");
        line.put_slice(kind.as_bytes());
        line.put_slice(b"\",\"object\":");
        line.put_slice(object);
        line.put_slice(b"}\n");
        line.freeze()
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(&self.version), "metadata": metadata});
        self.line("BOOKMARK", &Bytes::from(object.to_string()))
    }

    /// The line for a store event, if this watch sees it. An object that stops matching the
    /// selectors is `DELETED` for this watch; one that starts matching is `ADDED`.
    fn event(&mut self, event: &WatchEvent, filter: &Filter) -> Option<Bytes> {
        if event.resource != self.rt.storage {
            return None;
        }
        let now = filter.matches(&event.object);
        let before = event
            .prev
            .as_deref()
            .is_some_and(|p: &StoredObject| filter.matches(p));
        let kind = match (event.kind, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Deleted, _, true) => "DELETED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some(self.object_line(kind, &event.object))
    }
}
