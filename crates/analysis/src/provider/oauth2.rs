//! OAuth2 client credentials (RFC 6749 §4.4), as Go's `clientcredentials` fetches them for
//! Argo's Prometheus provider: a token is asked for with the client's id and secret (in a
//! Basic `Authorization` header first, then in the form if the server refused that, Go's
//! auto-detection), kept until ten seconds before it expires, and sent as
//! `Authorization: <type> <token>`.
//!
//! Time is a parameter: callers pass `now`.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;

use super::transport::{HttpClient, chain};

/// A token is renewed this long before it expires (Go's `expiryDelta`).
const EXPIRY_DELTA: Duration = Duration::from_secs(10);

/// The largest token answer read.
const MAX_BODY: usize = 1 << 20;

/// Why no token was had; the messages are Go's `oauth2` package's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint could not be reached.
    #[error("oauth2: cannot fetch token: {0}")]
    Unreachable(String),
    /// The token endpoint refused.
    #[error("oauth2: cannot fetch token: {status}\nResponse: {body}")]
    Refused {
        /// The HTTP status line's code and reason.
        status: String,
        /// The answer's body.
        body: String,
    },
    /// The answer carried no token.
    #[error("oauth2: server response missing access_token")]
    MissingToken,
}

/// Who asks for a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// The token endpoint.
    pub token_url: String,
    /// The client's id.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct Token {
    /// `Authorization` header value.
    header: String,
    /// When it stops being used; never when the server gave no lifetime.
    renew_at: Option<Instant>,
}

/// Tokens by the credentials that fetched them.
#[derive(Debug, Default)]
pub struct Tokens {
    cached: Mutex<HashMap<Credentials, Token>>,
}

#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
}

impl Tokens {
    /// The `Authorization` header for `credentials`: the cached token while it is valid at
    /// `now`, else a new one fetched through `client`.
    ///
    /// # Errors
    /// [`TokenError`] when no token could be had.
    pub async fn authorization(
        &self,
        client: &HttpClient,
        credentials: &Credentials,
        now: Instant,
    ) -> Result<String, TokenError> {
        if let Some(token) = self.cached(credentials, now) {
            return Ok(token);
        }
        let token = match fetch(client, credentials, true, now).await {
            Ok(token) => token,
            Err(_) => fetch(client, credentials, false, now).await?,
        };
        let header = token.header.clone();
        self.cached
            .lock()
            .expect("token cache lock")
            .insert(credentials.clone(), token);
        Ok(header)
    }

    fn cached(&self, credentials: &Credentials, now: Instant) -> Option<String> {
        let cached = self.cached.lock().expect("token cache lock");
        let token = cached.get(credentials)?;
        token
            .renew_at
            .is_none_or(|at| now < at)
            .then(|| token.header.clone())
    }
}

/// Component encoding as Go's `url.QueryEscape`, which `clientcredentials` applies to the id
/// and secret before Basic encoding them.
fn query_escape(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn fetch(
    client: &HttpClient,
    credentials: &Credentials,
    in_header: bool,
    now: Instant,
) -> Result<Token, TokenError> {
    let form = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if !credentials.scopes.is_empty() {
            form.append_pair("scope", &credentials.scopes.join(" "));
        }
        if !in_header {
            form.append_pair("client_id", &credentials.client_id);
            form.append_pair("client_secret", &credentials.client_secret);
        }
        form.finish()
    };
    let mut request = http::Request::post(&credentials.token_url).header(
        http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    );
    if in_header {
        let pair = format!(
            "{}:{}",
            query_escape(&credentials.client_id),
            query_escape(&credentials.client_secret)
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        request = request.header(http::header::AUTHORIZATION, format!("Basic {encoded}"));
    }
    let request = request
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| TokenError::Unreachable(e.to_string()))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| TokenError::Unreachable(chain(&e)))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| TokenError::Unreachable(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(TokenError::Refused {
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default()
            ),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    let answer = parse(&content_type, &body)?;
    let access_token = answer
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::MissingToken)?;
    let kind = match answer.token_type.as_deref().unwrap_or_default() {
        "" => "Bearer".to_owned(),
        t if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        t if t.eq_ignore_ascii_case("mac") => "MAC".to_owned(),
        t if t.eq_ignore_ascii_case("basic") => "Basic".to_owned(),
        t => t.to_owned(),
    };
    let lifetime = answer.expires_in.and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    });
    Ok(Token {
        header: format!("{kind} {access_token}"),
        renew_at: lifetime
            .filter(|s| *s > 0)
            .map(|s| now + Duration::from_secs(s).saturating_sub(EXPIRY_DELTA)),
    })
}

/// A token answer: JSON, or a form (GitHub's older endpoints) as Go accepts.
fn parse(content_type: &str, body: &[u8]) -> Result<Answer, TokenError> {
    let form = content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.starts_with("text/plain");
    if form {
        let mut answer = Answer {
            access_token: None,
            token_type: None,
            expires_in: None,
        };
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "access_token" => answer.access_token = Some(value.into_owned()),
                "token_type" => answer.token_type = Some(value.into_owned()),
                "expires_in" => answer.expires_in = Some(value.into_owned().into()),
                _ => {}
            }
        }
        return Ok(answer);
    }
    serde_json::from_slice(body).map_err(|e| TokenError::Unreachable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials {
            token_url: "http://127.0.0.1:1/token".into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            scopes: vec![],
        }
    }

    #[test]
    fn a_token_is_used_until_ten_seconds_before_it_expires() {
        let tokens = Tokens::default();
        let now = Instant::now();
        tokens.cached.lock().unwrap().insert(
            credentials(),
            Token {
                header: "Bearer t".into(),
                renew_at: Some(now + Duration::from_secs(50)),
            },
        );
        assert_eq!(
            tokens.cached(&credentials(), now + Duration::from_secs(49)),
            Some("Bearer t".into())
        );
        assert_eq!(
            tokens.cached(&credentials(), now + Duration::from_secs(50)),
            None
        );
    }

    #[test]
    fn answers_parse_as_json_or_form() {
        let json = parse(
            "application/json",
            br#"{"access_token":"a","token_type":"bearer","expires_in":60}"#,
        )
        .unwrap();
        assert_eq!(json.access_token.as_deref(), Some("a"));
        let form = parse(
            "application/x-www-form-urlencoded",
            b"access_token=b&expires_in=30",
        )
        .unwrap();
        assert_eq!(form.access_token.as_deref(), Some("b"));
        assert_eq!(form.expires_in, Some("30".into()));
    }
}
