//! The catalog: the one owner of the image index — `catalog.toml` entries
//! merged with the files in the image root and their sidecars. Lists rows,
//! imports/exports catalogs, adds and removes entries, persists every change
//! atomically and publishes catalog events.

mod actor;
mod cache;
mod changes;
mod entries;
mod error;
mod handle;
mod import;
mod index;
mod messages;
mod scanning;

pub use actor::{CatalogActor, CatalogArgs};
pub use error::CatalogError;
pub use handle::CatalogHandle;
pub use import::ImportReport;
pub use messages::{
    AddEntry, CacheDeleted, CatalogMessage, Change, ListedEntry, ParsedImport, RemoteMetadata,
    RemovedEntry,
};
