//! `/ui/flash`: the disks and their verdicts, choosing an image and
//! targets, a server-rendered confirmation naming each target's identity,
//! and the flash jobs with per-target progress.
//!
//! The confirmation carries what the operator saw (size, serial, model)
//! into `FlashRequest.targets`, so the daemon refuses a device that changed
//! in between (another stick plugged into the same path).

use super::Chrome;
use super::activity::{Activity, Scope};
use super::jobs::{JobView, of_kinds, split};
use crate::auth::Viewer;
use crate::error::{BadRequest, PageError, WebError};
use crate::fmt::{self, form_pairs};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use bty_proto::v1::{Disk, FlashMode, FlashRequest, FlashTarget, Image, JobKind, ListDisksRequest};
use serde::Deserialize;
use tonic::Code;

const PAGE: &str = "/ui/flash";

/// A disk, ready to print.
pub(crate) struct DiskView {
    path: String,
    size: String,
    size_bytes: u64,
    model: String,
    /// The daemon's `model` field as is, echoed back in the confirmation.
    model_raw: String,
    serial: String,
    /// The disk sequence number the confirmation pins ("" if none).
    diskseq: String,
    transport: String,
    removable: bool,
    writable: bool,
    refusals: Vec<String>,
}

impl From<Disk> for DiskView {
    fn from(disk: Disk) -> Self {
        let model_raw = disk.model.clone().unwrap_or_default();
        let model = [disk.vendor, disk.model]
            .into_iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            size: fmt::human_bytes(disk.size_bytes),
            size_bytes: disk.size_bytes,
            model: if model.is_empty() {
                "unknown model".to_owned()
            } else {
                model
            },
            model_raw,
            diskseq: disk.diskseq.map(|n| n.to_string()).unwrap_or_default(),
            serial: disk.serial.unwrap_or_default(),
            transport: disk.transport.unwrap_or_default(),
            removable: disk.removable,
            writable: disk.writable,
            refusals: disk.refusals,
            path: disk.path,
        }
    }
}

/// An image the operator may pick: a cached row (bytes are local), or a
/// remote entry btyd streams onto the disks without storing it (a qcow2 is
/// fetched into the store first).
pub(crate) struct ImageOption {
    id: String,
    label: String,
}

impl ImageOption {
    fn new(image: &Image) -> Self {
        let name = image
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| image.id.clone());
        let size = image.size_bytes.map(fmt::human_bytes).unwrap_or_default();
        let detail = match image.flash() {
            FlashMode::FetchedFirst => format!("fetched first from {}", remote_host(image)),
            FlashMode::Streamed => format!("streamed from {}", remote_host(image)),
            _ => image
                .sha256
                .as_deref()
                .unwrap_or("unhashed")
                .chars()
                .take(12)
                .collect(),
        };
        let label = if size.is_empty() {
            format!("{name} ({detail})")
        } else {
            format!("{name} ({size}, {detail})")
        };
        Self {
            id: image.id.clone(),
            label,
        }
    }
}

/// The host of a row's first remote source (`example.com`, `registry:5000`).
fn remote_host(image: &Image) -> String {
    image
        .sources
        .iter()
        .filter(|s| s.kind() != bty_proto::v1::SourceKind::Local)
        .find_map(|s| {
            let rest = s.location.split_once("://")?.1;
            rest.split('/').next().map(str::to_owned)
        })
        .unwrap_or_else(|| "the network".to_owned())
}

/// Whether btyd can flash a row (it says how with every row).
fn flashable(image: &Image) -> bool {
    !matches!(image.flash(), FlashMode::None | FlashMode::Unspecified)
}

#[derive(Template, WebTemplate)]
#[template(path = "flash.html")]
pub(crate) struct FlashPage {
    chrome: Chrome,
    error: Option<String>,
    /// `None` when btyd cannot list disks (not offered yet, or down).
    disks: Option<Vec<DiskView>>,
    disks_note: String,
    images: Vec<ImageOption>,
    active: Vec<JobView>,
    finished: Vec<JobView>,
    activity: Activity,
}

/// The disk rows alone: re-read by the page when btyd reports disks
/// plugged in, pulled or changed.
#[derive(Template, WebTemplate)]
#[template(path = "flash_disks.html")]
pub(crate) struct FlashDisks {
    disks: Vec<DiskView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "flash_jobs.html")]
pub(crate) struct FlashJobs {
    active: Vec<JobView>,
    finished: Vec<JobView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "flash_confirm.html")]
pub(crate) struct ConfirmPage {
    chrome: Chrome,
    image: String,
    image_label: String,
    verify: bool,
    incremental: bool,
    targets: Vec<DiskView>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FlashQuery {
    error: Option<String>,
}

async fn disks(state: &AppState) -> Result<Vec<Disk>, tonic::Status> {
    Ok(state
        .flash()
        .list_disks(ListDisksRequest {})
        .await?
        .into_inner()
        .disks)
}

async fn flashable_images(state: &AppState) -> Result<Vec<Image>, tonic::Status> {
    let images = state.all_images("", "").await?;
    Ok(images.into_iter().filter(flashable).collect())
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<FlashQuery>,
) -> Result<FlashPage, PageError> {
    let (disks, images, jobs, activity) = tokio::join!(
        disks(&state),
        flashable_images(&state),
        of_kinds(&state, &[JobKind::Flash]),
        Activity::load(&state, Scope::Flash)
    );
    let (disks, disks_note) = match disks {
        Ok(disks) => (
            Some(disks.into_iter().map(DiskView::from).collect()),
            String::new(),
        ),
        Err(status) if status.code() == Code::Unimplemented => {
            (None, "This btyd does not offer flashing yet.".to_owned())
        }
        Err(status) => (None, WebError::from(status).to_string()),
    };
    let (active, finished) = split(jobs.unwrap_or_default());
    Ok(FlashPage {
        chrome: Chrome::new("flash", viewer),
        error: query.error.filter(|e| !e.is_empty()),
        disks,
        disks_note,
        images: images?.iter().map(ImageOption::new).collect(),
        active,
        finished,
        activity,
    })
}

/// `GET /ui/flash/disks`: the disk rows as they are now.
pub(crate) async fn disks_fragment(State(state): State<AppState>) -> Result<FlashDisks, PageError> {
    let disks = disks(&state).await.map_err(WebError::from)?;
    Ok(FlashDisks {
        disks: disks.into_iter().map(DiskView::from).collect(),
    })
}

pub(crate) async fn jobs_fragment(State(state): State<AppState>) -> Result<FlashJobs, PageError> {
    let (active, finished) = split(of_kinds(&state, &[JobKind::Flash]).await?);
    Ok(FlashJobs { active, finished })
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `POST /ui/flash/confirm`: the chosen targets as the daemon sees them
/// right now, for the operator to check before anything is written.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    viewer: Viewer,
    body: String,
) -> Response {
    match confirm_page(&state, viewer, &body).await {
        Ok(page) => page.into_response(),
        Err(error) => error.redirect_to(PAGE).into_response(),
    }
}

async fn confirm_page(
    state: &AppState,
    viewer: Viewer,
    body: &str,
) -> Result<ConfirmPage, WebError> {
    let pairs = form_pairs(body);
    let image = value(&pairs, "image").unwrap_or_default().trim().to_owned();
    if image.is_empty() {
        return Err(BadRequest::NoImage.into());
    }
    let wanted: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "target")
        .map(|(_, v)| v.as_str())
        .collect();
    if wanted.is_empty() {
        return Err(BadRequest::NoTarget.into());
    }
    let (disks, images) = tokio::join!(disks(state), flashable_images(state));
    let disks = disks?;
    let mut targets = Vec::new();
    for path in wanted {
        let disk = disks
            .iter()
            .find(|d| d.path == path)
            .ok_or_else(|| BadRequest::TargetGone {
                path: path.to_string(),
            })?;
        if !disk.writable {
            return Err(BadRequest::TargetRefused {
                path: path.to_string(),
                refusals: disk.refusals.clone(),
            }
            .into());
        }
        targets.push(DiskView::from(disk.clone()));
    }
    let image_label = images?
        .iter()
        .find(|i| i.id == image)
        .map(|i| ImageOption::new(i).label)
        .ok_or(BadRequest::NotFlashable)?;
    Ok(ConfirmPage {
        chrome: Chrome::new("flash", viewer),
        image,
        image_label,
        verify: value(&pairs, "verify").is_some(),
        incremental: value(&pairs, "incremental").is_some(),
        targets,
    })
}

/// The confirmed targets of the confirmation form: `t<i>_path`,
/// `t<i>_size`, `t<i>_serial`, `t<i>_model`, `t<i>_diskseq` for i = 0, 1, …
fn confirmed_targets(pairs: &[(String, String)]) -> Result<Vec<FlashTarget>, WebError> {
    let mut targets = Vec::new();
    for i in 0.. {
        let Some(path) = value(pairs, &format!("t{i}_path")) else {
            break;
        };
        let size = value(pairs, &format!("t{i}_size"))
            .and_then(|s| s.parse().ok())
            .ok_or(BadRequest::ConfirmationIncomplete)?;
        let optional = |name: String| {
            value(pairs, &name)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        targets.push(FlashTarget {
            path: path.to_owned(),
            confirmed_size_bytes: size,
            confirmed_serial: optional(format!("t{i}_serial")),
            confirmed_model: optional(format!("t{i}_model")),
            confirmed_diskseq: optional(format!("t{i}_diskseq")).and_then(|s| s.parse().ok()),
        });
    }
    if targets.is_empty() {
        return Err(BadRequest::NoConfirmedTarget.into());
    }
    Ok(targets)
}

/// `POST /ui/flash/start`: flash what was confirmed.
pub(crate) async fn start(State(state): State<AppState>, body: String) -> Redirect {
    let pairs = form_pairs(&body);
    if value(&pairs, "confirm") != Some("yes") {
        return WebError::from(BadRequest::NotConfirmed).redirect_to(PAGE);
    }
    let targets = match confirmed_targets(&pairs) {
        Ok(targets) => targets,
        Err(error) => return error.redirect_to(PAGE),
    };
    let request = FlashRequest {
        image: value(&pairs, "image").unwrap_or_default().to_owned(),
        targets,
        no_verify: value(&pairs, "verify").is_none(),
        incremental: value(&pairs, "incremental").is_some(),
    };
    match state.flash().flash(request).await {
        Ok(job) => {
            let job = job.into_inner();
            tracing::info!(
                job = job.id,
                subject = job.subject,
                "flash started from the web"
            );
            Redirect::to(PAGE)
        }
        Err(status) => WebError::from(status).redirect_to(PAGE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_confirmed_identities_in_order() {
        let pairs = form_pairs(
            "t0_path=%2Fdev%2Fsdb&t0_size=1024&t0_serial=S1&t0_model=Stick&t1_path=%2Fdev%2Fsdc&t1_size=2048&t1_serial=&t1_model=",
        );
        let targets = confirmed_targets(&pairs).unwrap_or_default();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].path, "/dev/sdb");
        assert_eq!(targets[0].confirmed_size_bytes, 1024);
        assert_eq!(targets[0].confirmed_serial.as_deref(), Some("S1"));
        assert_eq!(targets[1].confirmed_serial, None);
        assert!(confirmed_targets(&form_pairs("t0_path=%2Fdev%2Fsdb")).is_err());
        assert!(confirmed_targets(&[]).is_err());
    }

    fn row(cached: bool, flash: FlashMode, format: &str, location: &str) -> Image {
        let fetch = !cached && flash != FlashMode::None;
        Image {
            flash: flash.into(),
            id: "r1".into(),
            names: vec!["lab.img.xz".into()],
            sha256: cached.then(|| "ab".repeat(32)),
            format: Some(format.into()),
            size_bytes: Some(3 << 20),
            sources: vec![bty_proto::v1::Source {
                kind: bty_proto::v1::SourceKind::Url.into(),
                location: location.into(),
            }],
            cached,
            actions: Some(bty_proto::v1::Actions {
                fetch,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn offers_cached_rows_and_remote_entries_that_stream() {
        let cached = row(
            true,
            FlashMode::Local,
            "img.xz",
            "https://h.example/lab.img.xz",
        );
        let remote = row(
            false,
            FlashMode::Streamed,
            "img.xz",
            "https://h.example:8443/os/lab.img.xz",
        );
        let remote_qcow2 = row(
            false,
            FlashMode::FetchedFirst,
            "qcow2",
            "oras://reg:5000/lab/vm:v1",
        );
        assert!(flashable(&cached) && flashable(&remote) && flashable(&remote_qcow2));
        assert!(!flashable(&row(
            false,
            FlashMode::None,
            "img.xz",
            "https://h/x.img.xz"
        )));
        assert_eq!(
            ImageOption::new(&cached).label,
            "lab.img.xz (3.0 MiB, abababababab)"
        );
        assert_eq!(
            ImageOption::new(&remote).label,
            "lab.img.xz (3.0 MiB, streamed from h.example:8443)"
        );
        assert_eq!(
            ImageOption::new(&remote_qcow2).label,
            "lab.img.xz (3.0 MiB, fetched first from reg:5000)"
        );
    }
}
