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
    /// Matched outside any cooldown, but every action would be skipped as stale
    /// (`max_age_seconds`): recorded `skipped`, takes no cooldown.
    Skip,
}

impl Decision {
    /// The backtest's name of this outcome (`outcome` of a sample; the counters
    /// `would_execute`, `suppressed_by_cooldown`, `below_threshold`, `duplicates`).
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Execute => Outcome::WouldExecute,
            Self::Suppressed { .. } => Outcome::SuppressedByCooldown,
            Self::BelowThreshold { .. } => Outcome::BelowThreshold,
            Self::Duplicate => Outcome::Duplicate,
            Self::Skip => Outcome::Skipped,
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
            Self::Skip => Some("skipped_stale_total"),
        }
    }

    /// Why the live dry run says the rule would not execute now, if it would not.
    pub fn live_reason(&self) -> Option<NotNow> {
        match self {
            Self::Execute => None,
            Self::Suppressed { .. } => Some(NotNow::CooldownActive),
            Self::BelowThreshold { .. } => Some(NotNow::ThresholdNotReached),
            Self::Duplicate => Some(NotNow::AlreadyProcessed),
            Self::Skip => Some(NotNow::Stale),
        }
    }

    /// Whether the pair counts as matched in analytics (`matched = executed +
    /// suppressed_by_cooldown + skipped`).
    pub fn is_match(&self) -> bool {
        matches!(self, Self::Execute | Self::Suppressed { .. } | Self::Skip)
    }

    /// Whether the pair's actions are to be run (a `Skip` runs them too: each is
    /// skipped as stale and the execution recorded `skipped`).
    pub fn runs(&self) -> bool {
        matches!(self, Self::Execute | Self::Skip)
    }

    /// The code the gate script and the decision memory use for this decision, with
    /// its detail: the one encoding shared by Lua and Rust.
    pub fn code(&self) -> (i64, i64) {
        match self {
            Self::Execute => (0, 0),
            Self::Suppressed { remaining_ms } => (1, *remaining_ms),
            Self::BelowThreshold { count } => (2, *count),
            Self::Duplicate => (3, 0),
            Self::Skip => (4, 0),
        }
    }

    /// The decision a code names (see [`Self::code`]).
    pub fn from_code(code: i64, detail: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Execute,
            1 => Self::Suppressed {
                remaining_ms: detail,
            },
            2 => Self::BelowThreshold { count: detail },
            3 => Self::Duplicate,
            4 => Self::Skip,
            _ => return None,
        })
    }
}

/// Why a rule would not execute for an event now (the live dry run's `reasons`), in
/// the order they are checked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotNow {
    /// The event is of another livestream than the rule's.
    LivestreamNotMatched,
    EventTypeNotMatched,
    ConditionNotMet,
    RuleDisabled,
    /// Not stored, disabled in the database, or stored at another version.
    RuleNotLoaded,
    ThresholdNotReached,
    CooldownActive,
    /// Every action would be skipped as stale (`max_age_seconds`).
    Stale,
    AlreadyProcessed,
}

/// A decision as a backtest reports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    WouldExecute,
    SuppressedByCooldown,
    BelowThreshold,
    Duplicate,
    /// Every action would have been skipped as stale.
    Skipped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for d in [
            Decision::Execute,
            Decision::Suppressed { remaining_ms: 7 },
            Decision::BelowThreshold { count: 2 },
            Decision::Duplicate,
            Decision::Skip,
        ] {
            let (code, detail) = d.code();
            assert_eq!(Decision::from_code(code, detail), Some(d));
        }
        assert_eq!(Decision::from_code(9, 0), None);
    }
}
