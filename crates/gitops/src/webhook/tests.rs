use super::*;
use serde_json::json;

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect()
}

fn github_push(reference: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": reference,
        "repository": {"html_url": "https://github.com/Org/CD", "default_branch": "main"},
    }))
    .unwrap()
}

#[test]
fn github_pushes_are_verified_when_a_secret_is_configured() {
    let body = github_push("refs/heads/main");
    let secrets = Secrets {
        github: Some("s3cret".into()),
        ..Default::default()
    };
    let right = format!("sha256={}", sign("s3cret", &body));
    let push = parse(
        &headers(&[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &right)]),
        &body,
        &secrets,
    )
    .unwrap()
    .unwrap();
    assert_eq!(push.revision, "main");
    assert!(push.touched_head);
    let wrong = format!("sha256={}", sign("other", &body));
    assert_eq!(
        parse(
            &headers(&[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &wrong)]),
            &body,
            &secrets
        ),
        Err(WebhookError::VerificationFailed("HMAC"))
    );
    assert_eq!(
        parse(&headers(&[("X-GitHub-Event", "push")]), &body, &secrets),
        Err(WebhookError::MissingSignature("X-Hub-Signature-256"))
    );
    // Without a secret, unsigned pushes are taken (Argo CD's default).
    assert!(
        parse(
            &headers(&[("X-GitHub-Event", "push")]),
            &body,
            &Secrets::default()
        )
        .unwrap()
        .is_some()
    );
    assert_eq!(
        parse(
            &headers(&[("X-GitHub-Event", "ping")]),
            b"{}",
            &Secrets::default()
        ),
        Ok(None)
    );
    assert_eq!(
        parse(
            &headers(&[("X-GitHub-Event", "issues")]),
            b"{}",
            &Secrets::default()
        ),
        Err(WebhookError::EventNotParsed)
    );
    assert_eq!(
        parse(
            &headers(&[("X-GitHub-Event", "push")]),
            b"{not json",
            &Secrets::default()
        ),
        Err(WebhookError::Payload)
    );
    assert_eq!(
        parse(
            &headers(&[("Content-Type", "application/json")]),
            &body,
            &Secrets::default()
        ),
        Err(WebhookError::UnknownEvent)
    );
}

#[test]
fn gitlab_bitbucket_and_gogs_payloads() {
    let gitlab = serde_json::to_vec(&json!({"ref": "refs/tags/v1.2",
        "project": {"web_url": "https://gitlab.example.com/team/cd", "default_branch": "main"}}))
    .unwrap();
    let secrets = Secrets {
        gitlab: Some("tok".into()),
        bitbucket_uuid: Some("{uuid-1}".into()),
        bitbucket_server: Some("bbs".into()),
        gogs: Some("gg".into()),
        ..Default::default()
    };
    let push = parse(
        &headers(&[
            ("X-Gitlab-Event", "Tag Push Hook"),
            ("X-Gitlab-Token", "tok"),
        ]),
        &gitlab,
        &secrets,
    )
    .unwrap()
    .unwrap();
    assert_eq!((push.revision.as_str(), push.touched_head), ("v1.2", false));
    assert_eq!(
        parse(
            &headers(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "nope")]),
            &gitlab,
            &secrets
        ),
        Err(WebhookError::VerificationFailed("token"))
    );

    let bitbucket = serde_json::to_vec(&json!({
        "repository": {"links": {"html": {"href": "https://bitbucket.org/team/cd"}}},
        "push": {"changes": [{"new": {"name": "main", "type": "branch"}}]}}))
    .unwrap();
    let cloud = |uuid: &str| headers(&[("X-Hook-UUID", uuid), ("X-Event-Key", "repo:push")]);
    let push = parse(&cloud("{uuid-1}"), &bitbucket, &secrets)
        .unwrap()
        .unwrap();
    assert_eq!(push.web_urls, ["https://bitbucket.org/team/cd"]);
    assert!(push.refreshes("git@bitbucket.org:team/cd.git", "main"));
    assert_eq!(
        parse(&cloud("{other}"), &bitbucket, &secrets),
        Err(WebhookError::VerificationFailed("UUID"))
    );

    let server = serde_json::to_vec(&json!({
        "repository": {"links": {"clone": [
            {"name": "http", "href": "https://bb.example.com/scm/team/cd.git"},
            {"name": "ssh", "href": "ssh://git@bb.example.com:7999/team/cd.git"}]}},
        "changes": [{"ref": {"id": "refs/heads/release"}}]}))
    .unwrap();
    let signed = format!("sha256={}", sign("bbs", &server));
    let push = parse(
        &headers(&[
            ("X-Event-Key", "repo:refs_changed"),
            ("X-Hub-Signature", &signed),
        ]),
        &server,
        &secrets,
    )
    .unwrap()
    .unwrap();
    assert_eq!(push.revision, "release");
    assert!(push.refreshes("ssh://git@bb.example.com:7999/team/cd.git", "release"));
    assert!(!push.refreshes("ssh://git@bb.example.com:7999/team/cd.git", "main"));
    assert_eq!(
        parse(
            &headers(&[("X-Event-Key", "repo:refs_changed")]),
            &server,
            &secrets
        ),
        Err(WebhookError::MissingSignature("X-Hub-Signature"))
    );

    let gitea = serde_json::to_vec(&json!({"ref": "refs/heads/main",
        "repository": {"html_url": "http://gitea.local:3000/team/cd", "default_branch": "main"}}))
    .unwrap();
    let signature = sign("gg", &gitea);
    // Gitea sends both its own headers and GitHub's; the Gogs secret decides.
    let push = parse(
        &headers(&[
            ("X-Gitea-Event", "push"),
            ("X-Gogs-Event", "push"),
            ("X-GitHub-Event", "push"),
            ("X-Gogs-Signature", &signature),
        ]),
        &gitea,
        &secrets,
    )
    .unwrap()
    .unwrap();
    assert!(push.refreshes("http://gitea.local:3000/team/cd.git", "HEAD"));
    assert_eq!(
        parse(
            &headers(&[("X-Gogs-Event", "push"), ("X-Gogs-Signature", "00ff")]),
            &gitea,
            &secrets
        ),
        Err(WebhookError::VerificationFailed("HMAC"))
    );
}

#[test]
fn sources_match_by_repository_and_revision_as_argo_cd() {
    let push = Push {
        web_urls: vec!["https://github.com/Org/CD".into()],
        revision: "main".into(),
        touched_head: true,
    };
    for url in [
        "https://github.com/org/cd.git",
        "https://github.com/Org/CD",
        "git@github.com:org/cd.git",
        "ssh://git@ssh.github.com:443/org/cd.git",
        "http://github.com/org/cd",
    ] {
        assert!(push.refreshes(url, "main"), "{url}");
    }
    assert!(!push.refreshes("https://github.com/org/cd-other", "main"));
    assert!(!push.refreshes("https://gitlab.com/org/cd", "main"));
    // Revisions: HEAD follows the default branch; refs/heads/ and plain names compare.
    assert!(push.refreshes("https://github.com/org/cd", "HEAD"));
    assert!(push.refreshes("https://github.com/org/cd", ""));
    assert!(push.refreshes("https://github.com/org/cd", "refs/heads/main"));
    assert!(!push.refreshes("https://github.com/org/cd", "release"));
    let side = Push {
        revision: "feature".into(),
        touched_head: false,
        ..push
    };
    assert!(!side.refreshes("https://github.com/org/cd", "HEAD"));
    assert!(side.refreshes("https://github.com/org/cd", "feature"));
}

#[test]
fn secrets_never_print() {
    let secrets =
        Secrets::from_data(&[("webhook.github.secret".to_owned(), "hunter2".to_owned())].into());
    assert!(!format!("{secrets:?}").contains("hunter2"));
    assert_eq!(parse_revision("refs/heads/feature/x"), "feature/x");
}
