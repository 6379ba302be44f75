//! `GET /ui/downloads`: active download, push and upload jobs with progress and
//! Cancel, the "Add image from URL" form, the upload widget and the recent
//! history. `POST /ui/downloads/add` adds a catalog entry, then the page
//! offers to fetch it.

use super::Chrome;
use super::activity::{Activity, Scope};
use super::jobs::{JobView, of_kinds, split};
use crate::auth::Viewer;
use crate::body_limit::FormBody;
use crate::error::{BadRequest, PageError, WebError};
use crate::fmt::percent_encode;
use crate::redact::{self, Audience};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::Redirect;
use bty_proto::v1::{AddEntryRequest, JobKind};
use serde::Deserialize;

/// Uploads sit beside downloads: both bring bytes into the image root.
const KINDS: [JobKind; 3] = [JobKind::Download, JobKind::Push, JobKind::Upload];

/// The add form's fields a message can be shown beside.
const FIELDS: [&str; 4] = ["url", "name", "sha256", "sha_url"];

/// The page the add form returns to.
const PAGE: &str = "/ui/downloads";

#[derive(Template, WebTemplate)]
#[template(path = "downloads.html")]
pub(crate) struct DownloadsPage {
    chrome: Chrome,
    error: Option<String>,
    added: Option<Added>,
    /// What the add form held when it was refused, and which field the
    /// message is about.
    typed: Typed,
    image_root: String,
    max_parallel: Option<u32>,
    active: Vec<JobView>,
    finished: Vec<JobView>,
    activity: Activity,
}

/// The entry just added, offered for fetching.
pub(crate) struct Added {
    id: String,
    name: String,
}

/// The jobs cards alone, re-fetched by `bty.js` when a job changes state.
#[derive(Template, WebTemplate)]
#[template(path = "download_jobs.html")]
pub(crate) struct DownloadJobs {
    active: Vec<JobView>,
    finished: Vec<JobView>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DownloadsQuery {
    error: Option<String>,
    added: Option<String>,
    name: Option<String>,
    /// The add form's fields, handed back with a refusal.
    #[serde(flatten)]
    typed: Typed,
}

/// The add form's fields as typed, sent back with `?error=` so a refused
/// form is not emptied; URLs lose their userinfo and credential-looking
/// query values first (a query string lands in logs and history).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Typed {
    /// Which field the error is about: `url`, `name`, `sha256` or
    /// `sha_url`; empty when it is not known.
    #[serde(default)]
    field: String,
    #[serde(default)]
    url: String,
    #[serde(default, rename = "form_name")]
    name: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    sha_url: String,
}

impl Typed {
    fn of(form: &AddForm, field: &'static str) -> Self {
        Self {
            field: field.to_owned(),
            url: redact::url(form.url.trim(), Audience::Authenticated),
            name: form.name.trim().to_owned(),
            sha256: form.sha256.trim().to_owned(),
            sha_url: redact::url(form.sha_url.trim(), Audience::Authenticated),
        }
    }

    /// With `field` cleared unless it names one of the form's fields (the
    /// message then shows in the page's banner).
    fn known(mut self) -> Self {
        if !FIELDS.contains(&self.field.as_str()) {
            self.field.clear();
        }
        self
    }

    /// `&field=…&url=…` for the redirect, empty values left out.
    fn query(&self) -> String {
        [
            ("field", &self.field),
            ("url", &self.url),
            ("form_name", &self.name),
            ("sha256", &self.sha256),
            ("sha_url", &self.sha_url),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("&{key}={}", percent_encode(value)))
        .collect()
    }
}

/// The form field a refusal from btyd is about, from its message (btyd
/// names the field it refused); the URL when it names none.
fn field_of(message: &str) -> &'static str {
    let message = message.to_ascii_lowercase();
    if message.contains("sha_url") || message.contains("checksum") || message.contains("sha256sums")
    {
        "sha_url"
    } else if message.contains("sha256") {
        "sha256"
    } else if message.contains("name") && !message.contains("url") {
        "name"
    } else {
        "url"
    }
}

/// Back to the page with the message and what was typed.
fn refused(error: &WebError, form: &AddForm, field: &'static str) -> Redirect {
    error.redirect_to_with(PAGE, &Typed::of(form, field).query())
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<DownloadsQuery>,
) -> Result<DownloadsPage, PageError> {
    let (jobs, store, activity) = tokio::join!(
        of_kinds(&state, &KINDS),
        state.store(),
        Activity::load(&state, Scope::Downloads)
    );
    let (active, finished) = split(jobs?);
    let store = store.ok();
    let added = query.added.filter(|id| !id.is_empty()).map(|id| Added {
        name: query.name.unwrap_or_else(|| id.clone()),
        id,
    });
    Ok(DownloadsPage {
        chrome: Chrome::new("downloads", viewer),
        error: query.error.filter(|e| !e.is_empty()),
        added,
        typed: query.typed.known(),
        image_root: state.image_root_or_hint(store.as_ref()),
        max_parallel: store.map(|s| s.download_max_parallel).filter(|n| *n > 0),
        active,
        finished,
        activity,
    })
}

pub(crate) async fn jobs_fragment(
    State(state): State<AppState>,
) -> Result<DownloadJobs, PageError> {
    let (active, finished) = split(of_kinds(&state, &KINDS).await?);
    Ok(DownloadJobs { active, finished })
}

/// The "Add image from URL" form.
#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    url: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    sha256: String,
    /// A checksum file URL; empty means none.
    #[serde(default)]
    sha_url: String,
}

fn given(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

pub(crate) async fn add(
    State(state): State<AppState>,
    FormBody(form): FormBody<AddForm>,
) -> Redirect {
    let url = form.url.trim().to_owned();
    let remote = ["http://", "https://", "oras://"]
        .iter()
        .any(|p| url.to_ascii_lowercase().starts_with(p));
    if !remote {
        let url = redact::url(&url, Audience::Authenticated);
        return refused(&BadRequest::ImageUrl { url }.into(), &form, "url");
    }
    let request = AddEntryRequest {
        url,
        name: given(&form.name),
        sha256: given(&form.sha256),
        r#ref: None,
        sha_url: given(&form.sha_url),
    };
    match state.catalog().add_entry(request).await {
        Ok(entry) => {
            let entry = entry.into_inner();
            tracing::info!(
                name = entry.name,
                src = entry.src,
                "entry added from the web"
            );
            Redirect::to(&format!(
                "{PAGE}?added={}&name={}",
                percent_encode(&entry.r#ref),
                percent_encode(&entry.name)
            ))
        }
        Err(status) => {
            let field = field_of(status.message());
            refused(&WebError::from(status), &form, field)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_land_beside_the_field_they_name() {
        assert_eq!(field_of("sha256 must be 64 hex digits"), "sha256");
        assert_eq!(field_of("the checksum file lists no x.img"), "sha_url");
        assert_eq!(field_of("sha_url must be http(s)"), "sha_url");
        assert_eq!(field_of("an entry named x.img exists"), "name");
        assert_eq!(field_of("url has credentials"), "url");
        assert_eq!(field_of("btyd is unavailable"), "url");
        let unknown = Typed {
            field: "csrf".to_owned(),
            ..Typed::default()
        };
        assert_eq!(unknown.known().field, "");
    }
}
