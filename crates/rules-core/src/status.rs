//! How an execution, or one of its actions, ended: the one type behind the
//! `status` strings of execution records, action results and metrics labels.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Succeeded,
    Failed,
    /// Every action (or this action) was skipped as stale (`max_age_seconds`).
    Skipped,
}

impl Status {
    /// The text stored and shown: `succeeded`, `failed`, `skipped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// The status a stored or requested text names.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Succeeded, Self::Failed, Self::Skipped]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A text that names no [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown execution status {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for Status {
    type Error = UnknownStatus;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or(UnknownStatus(text))
    }
}

impl From<Status> for String {
    fn from(status: Status) -> Self {
        status.as_str().to_owned()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_agree() {
        for s in [Status::Succeeded, Status::Failed, Status::Skipped] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
        }
        assert_eq!(Status::parse("ok"), None);
    }
}
