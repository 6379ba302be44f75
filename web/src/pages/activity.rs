//! The "Recent activity" card each page ends with: the newest logged
//! events of the page's kinds, coloured by outcome, re-fetched by `bty.js`
//! as events arrive, with a link to the full timeline.

use super::events::EventRow;
use crate::error::{NotFound, PageError, WebError};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use bty_proto::v1::ListEventsRequest;

/// How many events a card shows.
const SHOWN: u32 = 15;

/// Which page a card belongs to: what it shows and where "full timeline"
/// leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Images,
    Downloads,
    Hashing,
    Flash,
}

impl Scope {
    fn parse(name: &str) -> Option<Self> {
        [Self::Images, Self::Downloads, Self::Hashing, Self::Flash]
            .into_iter()
            .find(|s| s.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Images => "images",
            Self::Downloads => "downloads",
            Self::Hashing => "hashing",
            Self::Flash => "flash",
        }
    }

    /// The kind prefixes the card shows (none: every kind but requests,
    /// which the timeline shows).
    pub(crate) fn kinds(self) -> &'static [&'static str] {
        match self {
            Self::Images => &[
                "entry.",
                "catalog.",
                "image.",
                "cache.",
                "download.",
                "hash.",
                "flash.",
                "push.",
                "upload.",
            ],
            Self::Downloads => &[
                "download.",
                "push.",
                "upload.",
                "entry.",
                "catalog.",
                "image.upload",
            ],
            Self::Hashing => &["hash.", "image.hash"],
            Self::Flash => &["flash.", "disks."],
        }
    }
}

/// One card.
pub(crate) struct Activity {
    /// `/ui/activity/<scope>`: where `bty.js` re-fetches it.
    pub(crate) fragment: String,
    /// The timeline, filtered to the card's kinds.
    pub(crate) timeline: String,
    /// `None` when btyd did not answer: the page still renders.
    pub(crate) rows: Option<Vec<EventRow>>,
}

impl Activity {
    /// The card of `scope`'s page.
    pub(crate) async fn load(state: &AppState, scope: Scope) -> Self {
        let kinds: Vec<String> = scope.kinds().iter().map(|k| (*k).to_owned()).collect();
        let timeline = format!(
            "/ui/events?kinds={}",
            crate::fmt::percent_encode(&kinds.join(","))
        );
        let request = ListEventsRequest {
            limit: SHOWN,
            kinds,
            ..ListEventsRequest::default()
        };
        let rows = match state.events().list_events(request).await {
            Ok(response) => Some(
                response
                    .into_inner()
                    .events
                    .into_iter()
                    .map(EventRow::from)
                    .collect(),
            ),
            Err(status) => {
                tracing::warn!(code = ?status.code(), detail = status.message(), "recent events unavailable");
                None
            }
        };
        Self {
            fragment: format!("/ui/activity/{}", scope.name()),
            timeline,
            rows,
        }
    }
}

/// The card alone.
#[derive(Template, WebTemplate)]
#[template(path = "activity_fragment.html")]
pub(crate) struct ActivityFragment {
    activity: Activity,
}

/// `GET /ui/activity/{scope}`.
pub(crate) async fn fragment(
    State(state): State<AppState>,
    Path(scope): Path<String>,
) -> Result<ActivityFragment, PageError> {
    let scope = Scope::parse(&scope)
        .ok_or_else(|| WebError::from(NotFound::ActivityCard { name: scope }))?;
    Ok(ActivityFragment {
        activity: Activity::load(&state, scope).await,
    })
}
