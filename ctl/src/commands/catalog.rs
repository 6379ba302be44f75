//! `btyctl catalog`: import a catalog.toml (file, URL or oras ref), fetch
//! the release catalog, export the catalog others can fetch.

use crate::client::Ctx;
use crate::exit::CtlError;
use bty_proto::v1::import_catalog_request::Source;
use bty_proto::v1::{
    DescribeStoreRequest, ExportCatalogRequest, FetchLatestCatalogRequest, ImportCatalogRequest,
    ImportReport,
};
use clap::Subcommand;
use serde::Serialize;
use std::path::Path;

/// `btyctl catalog …`
#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// Import entries from a catalog.toml: a local FILE (sent by btyctl), an
    /// http(s):// URL or an oras:// reference (fetched by the daemon).
    Import {
        /// Local file, http(s):// URL or oras:// reference.
        #[arg(value_name = "FILE|URL")]
        source: String,
    },
    /// Print the catalog.toml that another bty can fetch from this one.
    Export {
        /// Origin used in the src of cached images.
        #[arg(long, default_value = "http://localhost:8080")]
        base_url: String,
    },
    /// Import the configured release catalog.
    FetchLatest,
}

/// Run a `catalog` subcommand.
pub(crate) async fn run(ctx: &Ctx, command: CatalogCommand) -> Result<(), CtlError> {
    match command {
        CatalogCommand::Import { source } => import(ctx, &source).await,
        CatalogCommand::Export { base_url } => export(ctx, base_url).await,
        CatalogCommand::FetchLatest => {
            let report = ctx
                .daemon
                .catalog()
                .fetch_latest_catalog(FetchLatestCatalogRequest {})
                .await?;
            print_report(ctx, &report.into_inner())
        }
    }
}

async fn import(ctx: &Ctx, source: &str) -> Result<(), CtlError> {
    let request = import_request(ctx, source).await?;
    let report = ctx
        .daemon
        .catalog()
        .import_catalog(request)
        .await?
        .into_inner();
    print_report(ctx, &report)
}

/// URLs go to the daemon as they are; anything else is a local file whose
/// bytes btyctl sends, since the daemon may not see the caller's files. A
/// file over btyd's catalog limit is refused here, with the limit named,
/// rather than by the message size cap of the call.
async fn import_request(ctx: &Ctx, source: &str) -> Result<ImportCatalogRequest, CtlError> {
    if is_remote(source) {
        return Ok(ImportCatalogRequest {
            source: Some(Source::Url(source.to_owned())),
            label: source.to_owned(),
        });
    }
    let path = Path::new(source);
    let read_error = |err| CtlError::ReadFile {
        path: path.to_owned(),
        source: err,
    };
    let size = tokio::fs::metadata(path).await.map_err(read_error)?.len();
    let max = ctx
        .daemon
        .catalog()
        .describe_store(DescribeStoreRequest {})
        .await?
        .into_inner()
        .max_catalog_bytes;
    if max > 0 && size > max {
        return Err(CtlError::CatalogTooLarge {
            path: path.to_owned(),
            size,
            max,
        });
    }
    let content = tokio::fs::read(path).await.map_err(read_error)?;
    let label = path.file_name().map_or_else(
        || source.to_owned(),
        |name| name.to_string_lossy().into_owned(),
    );
    Ok(ImportCatalogRequest {
        source: Some(Source::Content(content)),
        label,
    })
}

fn is_remote(source: &str) -> bool {
    ["http://", "https://", "oras://"]
        .iter()
        .any(|scheme| source.starts_with(scheme))
}

async fn export(ctx: &Ctx, base_url: String) -> Result<(), CtlError> {
    let toml = ctx
        .daemon
        .catalog()
        .export_catalog(ExportCatalogRequest { base_url })
        .await?
        .into_inner()
        .toml;
    ctx.out
        .emit(&serde_json::json!({ "toml": toml }), || toml.clone())
}

/// An import report as JSON.
#[derive(Debug, Serialize)]
struct ReportView<'a> {
    source: &'a str,
    imported: u32,
    updated: u32,
    skipped: u32,
    errors: Vec<EntryErrorView<'a>>,
}

#[derive(Debug, Serialize)]
struct EntryErrorView<'a> {
    name: &'a str,
    error: &'a str,
}

fn print_report(ctx: &Ctx, report: &ImportReport) -> Result<(), CtlError> {
    let view = ReportView {
        source: &report.source,
        imported: report.imported,
        updated: report.updated,
        skipped: report.skipped,
        errors: report
            .errors
            .iter()
            .map(|e| EntryErrorView {
                name: &e.name,
                error: &e.error,
            })
            .collect(),
    };
    ctx.out.emit(&view, || report_text(report))
}

fn report_text(report: &ImportReport) -> String {
    let mut text = format!(
        "{}: {} imported, {} updated, {} skipped, {} errors",
        report.source,
        report.imported,
        report.updated,
        report.skipped,
        report.errors.len()
    );
    for error in &report.errors {
        text.push_str(&format!("\n  {}: {}", error.name, error.error));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_oras_refs_go_to_the_daemon() {
        assert!(is_remote("https://example.com/catalog.toml"));
        assert!(is_remote("http://example.com/catalog.toml"));
        assert!(is_remote("oras://ghcr.io/acme/catalog:latest"));
        assert!(!is_remote("./catalog.toml"));
        assert!(!is_remote("/srv/http-catalog.toml"));
    }

    #[test]
    fn report_lists_entry_errors() {
        let report = ImportReport {
            source: "catalog.toml".into(),
            imported: 2,
            updated: 1,
            skipped: 0,
            errors: vec![bty_proto::v1::EntryError {
                name: "bad".into(),
                error: "no src".into(),
            }],
        };
        assert_eq!(
            report_text(&report),
            "catalog.toml: 2 imported, 1 updated, 0 skipped, 1 errors\n  bad: no src"
        );
    }
}
