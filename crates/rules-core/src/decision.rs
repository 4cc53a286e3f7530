//! What the gate decides for one (rule, event) pair that matched: the one type the
//! worker's gate (Lua, in Redis), the backtest's simulation (Rust) and the live dry
//! run share, with the one mapping of each decision to its labels.

/// What the gate decided for one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run the actions.
    Execute,
    /// Matched, but inside the cooldown; `remaining_ms` of it is left.
    Suppressed { remaining_ms: i64 },
    /// The threshold has not been reached yet (`count` of its events so far).
    BelowThreshold { count: i64 },
    /// The same event was already decided for this rule (another entry carries it).
    Duplicate,
}

impl Decision {
    /// The backtest's name of this outcome (`outcome` of a sample; the counters
    /// `would_execute`, `suppressed_by_cooldown`, `below_threshold`, `duplicates`).
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Execute => "would_execute",
            Self::Suppressed { .. } => "suppressed_by_cooldown",
            Self::BelowThreshold { .. } => "below_threshold",
            Self::Duplicate => "duplicate",
        }
    }

    /// The worker's counter of this decision; executions are counted once they ran
    /// (`executions_total`).
    pub fn counter(&self) -> Option<&'static str> {
        match self {
            Self::Execute => None,
            Self::Suppressed { .. } => Some("suppressed_total"),
            Self::BelowThreshold { .. } => Some("below_threshold_total"),
            Self::Duplicate => Some("duplicates_total"),
        }
    }

    /// Why the live dry run says the rule would not execute now, if it would not.
    pub fn live_reason(&self) -> Option<&'static str> {
        match self {
            Self::Execute => None,
            Self::Suppressed { .. } => Some("cooldown_active"),
            Self::BelowThreshold { .. } => Some("threshold_not_reached"),
            Self::Duplicate => Some("already_processed"),
        }
    }

    /// Whether the pair counts as matched in analytics (`matched = executed +
    /// suppressed_by_cooldown`).
    pub fn is_match(&self) -> bool {
        matches!(self, Self::Execute | Self::Suppressed { .. })
    }
}
