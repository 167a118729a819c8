//! Container image references as CI writes them: `[registry[:port]/]path[:tag][@digest]`, and
//! the two sides of `sluice image set`'s `CONTAINER_OR_IMAGE=NEW_IMAGE` argument.

use std::fmt;

/// An image reference split into repository, tag and digest, each as written (no defaulting of
/// `docker.io/library/` or `:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Everything before the tag and digest: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/app`.
    pub repository: String,
    /// The tag without its colon.
    pub tag: Option<String>,
    /// The digest without its `@` (`sha256:…`).
    pub digest: Option<String>,
}

impl ImageRef {
    /// Splits a reference; the tag is the part after the last `:` that follows the last `/`, so a
    /// registry port (`localhost:5000/app`) is part of the repository.
    pub fn parse(text: &str) -> ImageRef {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (text, None),
        };
        let name_start = rest.rfind('/').map_or(0, |slash| slash + 1);
        let (repository, tag) = match rest[name_start..].rfind(':') {
            Some(colon) => {
                let colon = name_start + colon;
                (&rest[..colon], Some(rest[colon + 1..].to_owned()))
            }
            None => (rest, None),
        };
        ImageRef {
            repository: repository.to_owned(),
            tag,
            digest,
        }
    }

    /// The tag or digest part, as a short name for messages (`1.2.3`, `sha256:ab…`).
    pub fn version(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("")
    }

    /// Whether `name` names this image's repository, ignoring Docker Hub's implied
    /// `docker.io/` and `library/` and any tag or digest on `name`.
    pub fn same_repository(&self, name: &str) -> bool {
        normalize(&ImageRef::parse(name).repository) == normalize(&self.repository)
    }
}

fn normalize(repository: &str) -> &str {
    let repository = repository
        .strip_prefix("docker.io/")
        .or_else(|| repository.strip_prefix("index.docker.io/"))
        .unwrap_or(repository);
    repository.strip_prefix("library/").unwrap_or(repository)
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The new image of an assignment: a whole reference, or only a tag or digest that keeps the
/// repository each match already has (`app=:1.2.3`, `app=@sha256:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    /// `None` keeps each match's repository.
    pub repository: Option<String>,
    /// The new tag (`None` with a digest: the tag is dropped).
    pub tag: Option<String>,
    /// The new digest.
    pub digest: Option<String>,
}

impl NewImage {
    /// Reads the right-hand side of `CONTAINER_OR_IMAGE=NEW_IMAGE`.
    pub fn parse(text: &str) -> Result<NewImage, AssignmentError> {
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AssignmentError::BadImage(text.to_owned()));
        }
        let parsed = ImageRef::parse(text);
        if parsed.tag.is_none() && parsed.digest.is_none() {
            return Err(AssignmentError::NoVersion(text.to_owned()));
        }
        let empty = |part: &Option<String>| part.as_deref() == Some("");
        if empty(&parsed.tag) || empty(&parsed.digest) {
            return Err(AssignmentError::BadImage(text.to_owned()));
        }
        Ok(NewImage {
            repository: (!parsed.repository.is_empty()).then_some(parsed.repository),
            tag: parsed.tag,
            digest: parsed.digest,
        })
    }

    /// This image applied to a match whose current image is `current`.
    pub fn resolve(&self, current: &ImageRef) -> ImageRef {
        ImageRef {
            repository: self
                .repository
                .clone()
                .unwrap_or_else(|| current.repository.clone()),
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        }
    }
}

/// `CONTAINER_OR_IMAGE=NEW_IMAGE`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// A container name or an image repository.
    pub selector: String,
    /// What to set.
    pub image: NewImage,
}

impl Assignment {
    /// Splits at the first `=`.
    pub fn parse(text: &str) -> Result<Assignment, AssignmentError> {
        let (selector, image) = text
            .split_once('=')
            .ok_or_else(|| AssignmentError::NoEquals(text.to_owned()))?;
        if selector.is_empty() {
            return Err(AssignmentError::NoEquals(text.to_owned()));
        }
        Ok(Assignment {
            selector: selector.to_owned(),
            image: NewImage::parse(image)?,
        })
    }
}

/// A malformed `CONTAINER_OR_IMAGE=NEW_IMAGE` argument.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssignmentError {
    /// No `=`, or nothing before it.
    #[error("{0:?} is not CONTAINER_OR_IMAGE=NEW_IMAGE")]
    NoEquals(String),
    /// Whitespace, an empty tag or an empty digest.
    #[error("{0:?} is not an image reference")]
    BadImage(String),
    /// Neither a tag nor a digest: `latest` is never implied.
    #[error("{0:?} has no tag or digest (write IMAGE:TAG, IMAGE@DIGEST, :TAG or @DIGEST)")]
    NoVersion(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_last_colon_after_the_last_slash() {
        let cases = [
            ("nginx", "nginx", None, None),
            ("nginx:1.25", "nginx", Some("1.25"), None),
            ("localhost:5000/app", "localhost:5000/app", None, None),
            (
                "localhost:5000/app:v2",
                "localhost:5000/app",
                Some("v2"),
                None,
            ),
            (
                "1.dkr.ecr.eu-west-1.amazonaws.com/team/app:abc123",
                "1.dkr.ecr.eu-west-1.amazonaws.com/team/app",
                Some("abc123"),
                None,
            ),
            (
                "app:1.0@sha256:00ff",
                "app",
                Some("1.0"),
                Some("sha256:00ff"),
            ),
        ];
        for (text, repository, tag, digest) in cases {
            let parsed = ImageRef::parse(text);
            assert_eq!(parsed.repository, repository, "{text}");
            assert_eq!(parsed.tag.as_deref(), tag, "{text}");
            assert_eq!(parsed.digest.as_deref(), digest, "{text}");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn docker_hub_names_compare_without_their_implied_prefixes() {
        let image = ImageRef::parse("docker.io/library/nginx:1.25");
        assert!(image.same_repository("nginx"));
        assert!(image.same_repository("nginx:1.19"));
        assert!(!image.same_repository("ngin"));
        assert!(
            ImageRef::parse("argoproj/rollouts-demo:blue")
                .same_repository("argoproj/rollouts-demo")
        );
    }

    #[test]
    fn assignments_take_whole_images_or_only_a_version() {
        let full = Assignment::parse("app=registry/app:1.2.3").unwrap();
        assert_eq!(full.selector, "app");
        assert_eq!(full.image.repository.as_deref(), Some("registry/app"));
        let tag_only = Assignment::parse("registry/app=:1.2.3").unwrap();
        assert_eq!(tag_only.selector, "registry/app");
        assert_eq!(tag_only.image.repository, None);
        let current = ImageRef::parse("registry/app:1.0.0");
        assert_eq!(
            tag_only.image.resolve(&current).to_string(),
            "registry/app:1.2.3"
        );
        let digest = Assignment::parse("app=@sha256:abcd").unwrap();
        assert_eq!(
            digest.image.resolve(&current).to_string(),
            "registry/app@sha256:abcd"
        );
        assert!(matches!(
            Assignment::parse("app=registry/app"),
            Err(AssignmentError::NoVersion(_))
        ));
        assert!(matches!(
            Assignment::parse("registry/app:1.0"),
            Err(AssignmentError::NoEquals(_))
        ));
        assert!(matches!(
            Assignment::parse("app=a b:1"),
            Err(AssignmentError::BadImage(_))
        ));
    }
}
