//! Paging and search of long tables (the images page at 10 000 rows): the
//! `?q=&page=&per_page=` query, the slice to show and the page links.

use crate::fmt::percent_encode;
use serde::Deserialize;
use std::ops::Range;

/// Rows per page unless the query says otherwise.
pub(crate) const PER_PAGE: usize = 100;
/// The most rows one page may show.
pub(crate) const MAX_PER_PAGE: usize = 1000;

/// `?q=&page=&per_page=`. Numbers arrive as text: a mistyped page number
/// shows page 1 rather than an error page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PagingQuery {
    q: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

impl PagingQuery {
    /// The search text, trimmed ("" = everything).
    pub(crate) fn search(&self) -> &str {
        self.q.as_deref().map_or("", str::trim)
    }

    fn number(value: Option<&String>) -> Option<usize> {
        value.and_then(|v| v.trim().parse().ok())
    }

    /// The rows the query asks for (page numbers not yet clamped to the
    /// total, which the first answer tells) and the page size.
    pub(crate) fn wanted_range(&self) -> (Range<usize>, usize) {
        let per_page = self.per_page();
        let page = Self::number(self.page.as_ref()).map_or(1, |p| p.max(1));
        let start = (page - 1).saturating_mul(per_page);
        (start..start.saturating_add(per_page), per_page)
    }

    fn per_page(&self) -> usize {
        Self::number(self.per_page.as_ref())
            .filter(|n| *n > 0)
            .map_or(PER_PAGE, |n| n.min(MAX_PER_PAGE))
    }
}

/// One link of the pager; `None` number = a gap ("…").
pub(crate) struct PageLink {
    pub(crate) number: Option<usize>,
    pub(crate) href: String,
    pub(crate) current: bool,
}

/// What the template prints around a paged table.
pub(crate) struct Pager {
    pub(crate) search: String,
    pub(crate) per_page: usize,
    pub(crate) total: usize,
    /// 1-based first and last row shown (0, 0 when empty).
    pub(crate) first: usize,
    pub(crate) last: usize,
    pub(crate) prev: Option<String>,
    pub(crate) next: Option<String>,
    pub(crate) links: Vec<PageLink>,
}

impl Pager {
    /// The pager for `total` rows and the range of rows to show.
    pub(crate) fn new(query: &PagingQuery, total: usize) -> (Self, Range<usize>) {
        let per_page = query.per_page();
        let pages = total.div_ceil(per_page).max(1);
        let page = PagingQuery::number(query.page.as_ref()).map_or(1, |p| p.clamp(1, pages));
        let start = (page - 1) * per_page;
        let end = (start + per_page).min(total);
        let search = query.search().to_owned();
        let href = |p: usize| {
            let mut href = format!("/ui/images?page={p}");
            if !search.is_empty() {
                href.push_str("&q=");
                href.push_str(&percent_encode(&search));
            }
            if per_page != PER_PAGE {
                href.push_str(&format!("&per_page={per_page}"));
            }
            href
        };
        let mut links = Vec::new();
        let mut last_shown = 0;
        for p in 1..=pages {
            // First, last and two either side of the current page.
            let shown = p == 1 || p == pages || p.abs_diff(page) <= 2;
            if !shown {
                continue;
            }
            if p > last_shown + 1 {
                links.push(PageLink {
                    number: None,
                    href: String::new(),
                    current: false,
                });
            }
            links.push(PageLink {
                number: Some(p),
                href: href(p),
                current: p == page,
            });
            last_shown = p;
        }
        let pager = Self {
            per_page,
            total,
            first: if total == 0 { 0 } else { start + 1 },
            last: end,
            prev: (page > 1).then(|| href(page - 1)),
            next: (page < pages).then(|| href(page + 1)),
            links: if pages > 1 { links } else { Vec::new() },
            search,
        };
        (pager, start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str, page: &str, per_page: &str) -> PagingQuery {
        let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        PagingQuery {
            q: given(q),
            page: given(page),
            per_page: given(per_page),
        }
    }

    #[test]
    fn pages_ten_thousand_rows() {
        let (pager, range) = Pager::new(&query("deb ian", "50", ""), 10_000);
        assert_eq!(range, 4900..5000);
        assert_eq!((pager.first, pager.last), (4901, 5000));
        assert_eq!(
            pager.prev.as_deref(),
            Some("/ui/images?page=49&q=deb%20ian")
        );
        let numbers: Vec<Option<usize>> = pager.links.iter().map(|l| l.number).collect();
        assert_eq!(
            numbers,
            [
                Some(1),
                None,
                Some(48),
                Some(49),
                Some(50),
                Some(51),
                Some(52),
                None,
                Some(100)
            ]
        );
    }

    #[test]
    fn clamps_odd_pages_and_sizes() {
        let (pager, range) = Pager::new(&query("", "999", "5000"), 1500);
        assert_eq!(pager.per_page, MAX_PER_PAGE);
        assert_eq!(range, 1000..1500);
        assert!(pager.next.is_none());
        let (pager, range) = Pager::new(&query("", "x", "0"), 0);
        assert_eq!(range, 0..0);
        assert_eq!((pager.first, pager.last), (0, 0));
        assert!(pager.links.is_empty());
    }
}
