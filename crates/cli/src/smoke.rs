//! `sluice smoke URL…` (hidden): what the built-in smoke image (`sluice/smoke`) runs. Sends
//! `--requests` GETs to each URL, counts an answer as an error when its status differs from
//! `--expect-status` or its body does not match `--expect-body`, prints a line per URL and
//! exits 1 when the error rate passes `--max-error-rate` — so a Job metric fails a bad
//! version on `sluice up` without running anything on the host.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

/// Flags of `sluice smoke`.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// URLs to check (http).
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
    /// The status every answer must have.
    #[arg(long, value_name = "CODE", default_value_t = 200)]
    expect_status: u16,
    /// A regex every answer's body must match.
    #[arg(long, value_name = "REGEX")]
    expect_body: Option<regex::Regex>,
    /// Requests per URL.
    #[arg(long, value_name = "N", default_value_t = 1)]
    requests: u32,
    /// The share of requests that may fail (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    max_error_rate: f64,
    /// Seconds each request may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    timeout: f64,
}

/// Checks the URLs; `Ok(true)` when the error rate is within the limit.
pub async fn run(args: SmokeArgs) -> anyhow::Result<bool> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let timeout = Duration::try_from_secs_f64(args.timeout).context("--timeout")?;
    let (mut total, mut errors) = (0u32, 0u32);
    for url in &args.urls {
        let uri: http::Uri = url.parse().with_context(|| format!("URL {url:?}"))?;
        let (mut failed, mut last) = (0u32, String::new());
        for _ in 0..args.requests.max(1) {
            total += 1;
            let answer = tokio::time::timeout(timeout, async {
                let response = client.get(uri.clone()).await?;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body))
            })
            .await;
            let problem = match answer {
                Err(_) => Some(format!("no answer within {}s", args.timeout)),
                Ok(Err(e)) => Some(e.to_string()),
                Ok(Ok((status, _))) if status != args.expect_status => {
                    Some(format!("status {status}, expected {}", args.expect_status))
                }
                Ok(Ok((_, body))) => match &args.expect_body {
                    Some(regex) if !regex.is_match(&String::from_utf8_lossy(&body)) => {
                        Some(format!("body does not match {regex}"))
                    }
                    _ => None,
                },
            };
            if let Some(problem) = problem {
                failed += 1;
                last = problem;
            }
        }
        errors += failed;
        if failed == 0 {
            println!(
                "ok   {url}: {} of {} requests passed",
                args.requests.max(1),
                args.requests.max(1)
            );
        } else {
            println!(
                "FAIL {url}: {failed} of {} requests failed (last: {last})",
                args.requests.max(1)
            );
        }
    }
    let rate = f64::from(errors) / f64::from(total.max(1));
    println!(
        "error rate {rate:.3} (max {}): {}",
        args.max_error_rate,
        if rate <= args.max_error_rate {
            "pass"
        } else {
            "fail"
        }
    );
    Ok(rate <= args.max_error_rate)
}
