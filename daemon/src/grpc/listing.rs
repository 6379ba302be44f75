//! Listing rows for `ListImages` and `StreamImages`: select the rows a
//! request matches in one snapshot of the merged listing, then cut them
//! into messages that stay far below any message size cap, whatever the
//! catalog's size.

use super::convert;
use bty_proto::prost::Message;
use bty_proto::v1;
use bty_store::digest::Sha256Digest;
use bty_store::merge::Row;
use std::sync::Arc;

/// Rows in a `ListImages` page when the request names no limit.
pub(crate) const DEFAULT_PAGE_ROWS: usize = 1000;
/// Most rows in one message.
pub(crate) const MAX_PAGE_ROWS: usize = 5000;
/// A message ends before its rows would pass this many bytes (tonic's
/// default decoding cap is 4 MiB).
pub(crate) const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The rows of one snapshot that a request matches.
#[derive(Debug)]
pub(crate) struct Selection {
    rows: Arc<Vec<Row>>,
    /// Indexes of the matching rows; `None` = every row.
    matches: Option<Vec<usize>>,
}

impl Selection {
    /// The rows matching `query` (case-insensitive substring of a name or
    /// source location, or prefix of the sha256) and `id` (exact id, ref or
    /// sha256); empty strings match everything. O(rows).
    pub(crate) fn new(rows: Arc<Vec<Row>>, query: &str, id: &str) -> Self {
        let query = query.trim().to_lowercase();
        let id = id.trim();
        // A key that is no digest names no row.
        let id_digest = Sha256Digest::from_hex(id);
        if query.is_empty() && id.is_empty() {
            return Self {
                rows,
                matches: None,
            };
        }
        let matches = rows
            .iter()
            .enumerate()
            .filter(|(_, row)| id.is_empty() || id_digest.is_some_and(|d| row.answers_to(d)))
            .filter(|(_, row)| query.is_empty() || matches_query(row, &query))
            .map(|(i, _)| i)
            .collect();
        Self {
            rows,
            matches: Some(matches),
        }
    }

    /// How many rows match.
    pub(crate) fn total(&self) -> usize {
        self.matches.as_ref().map_or(self.rows.len(), Vec::len)
    }

    fn row(&self, nth: usize) -> Option<&Row> {
        match &self.matches {
            None => self.rows.get(nth),
            Some(m) => m.get(nth).and_then(|&i| self.rows.get(i)),
        }
    }

    /// The matching rows from `offset`: at most `limit`, fewer if the
    /// message would pass [`MAX_MESSAGE_BYTES`] (never none while rows are
    /// left, so a reader always advances).
    pub(crate) fn page(&self, offset: usize, limit: usize) -> v1::ListImagesResponse {
        let total = self.total();
        let mut images = Vec::new();
        let mut bytes = 0;
        let mut next = offset;
        while next < total && images.len() < limit {
            let Some(row) = self.row(next) else { break };
            let image = convert::image(row);
            // Tag + length prefix of a repeated field: a few bytes.
            let size = image.encoded_len() + 8;
            if !images.is_empty() && bytes + size > MAX_MESSAGE_BYTES {
                break;
            }
            bytes += size;
            images.push(image);
            next += 1;
        }
        v1::ListImagesResponse {
            images,
            total: total as u64,
            next_offset: (next < total).then_some(next as u64),
        }
    }
}

/// `query` is already lower-case.
fn matches_query(row: &Row, query: &str) -> bool {
    row.names.iter().any(|n| n.to_lowercase().contains(query))
        || row.sha256.is_some_and(|s| s.hex_starts_with(query))
        || row
            .sources
            .iter()
            .any(|s| s.location.to_lowercase().contains(query))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bty_store::merge::{Actions, RowSource, SourceKind};

    fn row(i: usize, location_len: usize) -> Row {
        Row {
            image_ref: Sha256Digest::from_hex(&format!("{i:064x}")).expect("hex"),
            names: Box::new([format!("image-{i}.img").into()]),
            sha256: None,
            format: Some("img".into()),
            size_bytes: Some(1),
            sources: Box::new([RowSource {
                kind: SourceKind::Manifest,
                location: format!("https://h.example/{}", "x".repeat(location_len)).into(),
            }]),
            cached: false,
            actions: Actions::default(),
            file_name: None,
            signed_by: None,
            merged_refs: Box::new([]),
        }
    }

    fn rows(n: usize, location_len: usize) -> Arc<Vec<Row>> {
        Arc::new((0..n).map(|i| row(i, location_len)).collect())
    }

    #[test]
    fn pages_cover_every_row_once_in_order() {
        let selection = Selection::new(rows(2500, 10), "", "");
        let mut seen = Vec::new();
        let mut offset = Some(0);
        while let Some(at) = offset {
            let page = selection.page(at as usize, DEFAULT_PAGE_ROWS);
            assert_eq!(page.total, 2500);
            seen.extend(page.images.into_iter().map(|i| i.names[0].clone()));
            offset = page.next_offset;
        }
        let expected: Vec<String> = (0..2500).map(|i| format!("image-{i}.img")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_message_stays_under_the_byte_budget_and_always_advances() {
        // Rows of ~64 KiB each: 1000 of them would be 64 MiB.
        let selection = Selection::new(rows(100, 64 << 10), "", "");
        let page = selection.page(0, MAX_PAGE_ROWS);
        assert!(
            page.encoded_len() <= MAX_MESSAGE_BYTES,
            "{}",
            page.encoded_len()
        );
        assert!(!page.images.is_empty() && page.images.len() < 100);
        assert_eq!(page.next_offset, Some(page.images.len() as u64));
        // A single row larger than the budget still goes out alone.
        let huge = Selection::new(rows(2, 2 << 20), "", "");
        assert_eq!(huge.page(0, MAX_PAGE_ROWS).images.len(), 1);
    }

    #[test]
    fn query_and_id_select_rows() {
        let all = rows(30, 5);
        let by_query = Selection::new(Arc::clone(&all), "IMAGE-2", "");
        // image-2, image-20 … image-29
        assert_eq!(by_query.total(), 11);
        let id = format!("{:064x}", 7);
        let by_id = Selection::new(all, "", &id);
        let page = by_id.page(0, 10);
        assert_eq!(page.total, 1);
        assert_eq!(page.images[0].names, ["image-7.img"]);
        assert_eq!(page.next_offset, None);
    }
}
